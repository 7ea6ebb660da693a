/**
 * Builds the catalogue's images (images.ts) that are missing or stale, in dependency order, one
 * builder at a time (`.cache/images.lock`). Returns a report, one entry per image, and never
 * throws for a failed build: the caller (`harness images build`, a suite's setup) decides.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBaseImage } from './base-image.js';
import { BuildError, buildStep, repoRelative, type BuildCtx } from './build-step.js';
import { dockerAvailable, DOCKER_SETUP_FIX, imageId, imageInfo, pruneDangling } from './engine.js';
import { hashDir } from './hash-dir.js';
import { IMAGE_LABEL, imageOrder, images, INPUTS_LABEL, resolveImageKey, withDependencies, type ImageKey, type ImageSpec } from './images.js';
import { acquireLock } from './lock.js';
import { fileNotStaticElf } from './static-elf.js';

export interface BuildOptions {
  /** Keys ('nginx') or names ('harness/nginx:local'). Missing dependencies are built too. */
  only?: string[];
  /** Rebuild the selected images even when an up-to-date one exists (dependencies: only if missing/stale). */
  force?: boolean;
  /** Progress messages. */
  log?: (msg: string) => void;
  /** Also pass every output line of docker/debootstrap to `log`. */
  verbose?: boolean;
  /** debootstrap again even when .cache/debian-bookworm-rootfs.tar exists. */
  refreshRootfs?: boolean;
  /** Static probe binary to put in harness/probe (default: $HARNESS_PROBE_STATIC, else probe/build/harness-probe-static, made with `make -C probe static`). */
  probeBinary?: string;
  /** Repository root (default: found from this module's location). */
  repoRoot?: string;
}

export type ImageStatus = 'built' | 'cached' | 'failed' | 'skipped';

export interface ImageBuildResult {
  key: ImageKey;
  name: string;
  status: ImageStatus;
  durationMs: number;
  /** Image id after the build (built/cached). */
  id?: string;
  /** What went wrong (failed), or why it was not attempted (skipped). */
  error?: string;
  /** How to fix it, when known. */
  fix?: string;
}

export interface BuildReport {
  ok: boolean;
  totalMs: number;
  images: ImageBuildResult[];
}

export async function buildImages(opts: BuildOptions = {}): Promise<BuildReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const root = opts.repoRoot ?? findRepoRoot();
  const only: readonly string[] = opts.only?.length ? opts.only : imageOrder;
  const requested = new Set<ImageKey>(only.map((s) => resolveImageKey(s)));
  const wanted = withDependencies(requested);
  const results: ImageBuildResult[] = [];

  const avail = await dockerAvailable();
  if (!avail.ok) {
    for (const key of imageOrder.filter((k) => wanted.has(k))) {
      results.push({ key, name: images[key].name, status: 'failed', durationMs: 0, error: avail.reason ?? 'Docker unavailable', fix: avail.fix ?? DOCKER_SETUP_FIX });
    }
    return { ok: false, totalMs: performance.now() - t0, images: results };
  }

  const unlock = await acquireLock(join(root, '.cache', 'images.lock'), log);
  try {
    const failed = new Set<ImageKey>();
    for (const key of imageOrder) {
      if (!wanted.has(key)) continue;
      const spec: ImageSpec = images[key];
      const start = performance.now();
      const blocked = spec.dependsOn.filter((d) => failed.has(d));
      if (blocked.length) {
        failed.add(key);
        results.push({ key, name: spec.name, status: 'skipped', durationMs: 0, error: `depends on ${blocked.map((b) => images[b].name).join(', ')}, which failed` });
        continue;
      }
      const ctx: BuildCtx = {
        root,
        force: Boolean(opts.force) && requested.has(key),
        refreshRootfs: Boolean(opts.refreshRootfs),
        probeBinary: opts.probeBinary,
        verbose: Boolean(opts.verbose),
        log,
      };
      try {
        const r = spec.build === 'rootfs' ? await buildBaseImage(spec, ctx) : await buildFromDockerfile(spec, ctx);
        const durationMs = performance.now() - start;
        log(`${spec.name}: ${r.status} in ${(durationMs / 1000).toFixed(1)} s`);
        results.push({ key, name: spec.name, status: r.status, durationMs, id: r.id });
      } catch (e) {
        failed.add(key);
        const err = e instanceof BuildError ? e : new BuildError((e as Error).message);
        log(`${spec.name}: FAILED: ${err.message}`);
        results.push({ key, name: spec.name, status: 'failed', durationMs: performance.now() - start, error: err.message, ...(err.fix ? { fix: err.fix } : {}) });
      }
    }
    // Replaced images (and their layers) become dangling; remove only harness ones.
    if (results.some((r) => r.status === 'built')) await pruneDangling(`${IMAGE_LABEL}=1`);
  } finally {
    await unlock();
  }
  return { ok: results.every((r) => r.status === 'built' || r.status === 'cached'), totalMs: performance.now() - t0, images: results };
}

async function buildFromDockerfile(spec: ImageSpec, ctx: BuildCtx): Promise<{ status: 'built' | 'cached'; id: string }> {
  const dir = join(ctx.root, 'docker', spec.key);
  const hash = createHash('sha256');
  hash.update(`dockerfile\0${spec.name}\0`);
  await hashDir(hash, dir);
  for (const dep of spec.dependsOn) {
    const id = await imageId(images[dep].name);
    if (!id) throw new BuildError(`parent image ${images[dep].name} is missing`);
    hash.update(`parent\0${id}\0`);
  }

  let context = dir;
  let tmp: string | undefined;
  if (spec.key === 'probe') {
    const bin = await staticProbe(ctx);
    hash.update('probe\0');
    hash.update(await readFile(bin));
    tmp = await mkdtemp(join(ctx.root, '.cache', 'probe-ctx-'));
    await copyFile(join(dir, 'Dockerfile'), join(tmp, 'Dockerfile'));
    await copyFile(bin, join(tmp, 'harness-probe-static'));
    await chmod(join(tmp, 'harness-probe-static'), 0o755);
    context = tmp;
  }
  const inputs = hash.digest('hex');

  try {
    const existing = await imageInfo(spec.name);
    if (existing && !ctx.force && existing.labels[INPUTS_LABEL] === inputs) return { status: 'cached', id: existing.id };
    if (existing && !ctx.force) ctx.log(`${spec.name}: inputs changed, rebuilding`);
    ctx.log(`${spec.name}: docker build ${repoRelative(ctx.root, dir)}`);
    await buildStep(
      ['docker', 'build', '--force-rm', ...(ctx.force ? ['--no-cache'] : []), '--label', `${IMAGE_LABEL}=1`, '--label', `${INPUTS_LABEL}=${inputs}`, '--tag', spec.name, '--file', join(context, 'Dockerfile'), context],
      ctx,
      // The classic builder: present in every docker.io version, builds FROM local images without
      // looking at a registry, and needs no buildx plugin.
      { DOCKER_BUILDKIT: '0' },
    );
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
  const id = await imageId(spec.name);
  if (!id) throw new BuildError(`docker build succeeded but ${spec.name} does not exist`);
  return { status: 'built', id };
}

/**
 * The static probe for harness/probe: the one given (option or $HARNESS_PROBE_STATIC), checked,
 * or this tree's, brought up to date with make (a no-op when it is), so an image never gets a
 * binary older than the probe's sources.
 */
async function staticProbe(ctx: BuildCtx): Promise<string> {
  const explicit = ctx.probeBinary ?? process.env['HARNESS_PROBE_STATIC'];
  if (explicit) {
    const why = await fileNotStaticElf(explicit);
    if (why) throw new BuildError(`probe binary ${explicit}: ${why}`, 'pass a binary built with `make -C probe static`');
    return resolve(explicit);
  }
  const bin = join(ctx.root, 'probe', 'build', 'harness-probe-static');
  if (existsSync(join(ctx.root, 'probe', 'Makefile'))) {
    try {
      await buildStep(['make', '-C', join(ctx.root, 'probe'), 'static'], ctx);
    } catch (e) {
      throw new BuildError(`could not build the static probe: ${(e as Error).message}`, 'run `make -C probe static` (needs gcc and the static libc: apt-get install build-essential)');
    }
  }
  if (!existsSync(bin)) throw new BuildError(`${repoRelative(ctx.root, bin)} does not exist`, 'run `make -C probe static`');
  return bin;
}

/** The repository root: the nearest ancestor of this module with package.json named "@netfault/harness". */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name;
        if (name === '@netfault/harness') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the harness repository root above ${from}`);
    dir = up;
  }
}
