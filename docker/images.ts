/**
 * The container images the harness builds for its container targets, and their builder.
 *
 * No registry is reachable, so nothing is ever pulled:
 *  - `harness/probe:local`       FROM scratch with the static probe binary;
 *  - `harness/debian-base:local` a `debootstrap --variant=minbase bookworm` rootfs, cached as a
 *                                tarball in `.cache/`, loaded with `docker import`;
 *  - `harness/nginx:local`, `harness/redis:local` FROM the base, Debian packages installed with
 *                                apt-get during the build (the build container reaches the Debian
 *                                mirror through the default bridge).
 *
 * Every image carries `harness.image=1` (a cache, never removed by `harness gc`) and
 * `harness.image.inputs=<sha256>` — a hash of what it was built from (Dockerfile directory, parent
 * image id, probe binary, rootfs recipe). An existing image whose hash differs is rebuilt, so an
 * edited Dockerfile never leaves a stale image behind.
 *
 * Every command is an argv array run with execa; no shell is ever involved.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, existsSync, readFileSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options as ExecaOptions } from 'execa';

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

export type ImageKey = 'probe' | 'debian-base' | 'nginx' | 'redis';

export interface ImageSpec {
  /** Short name, also the directory under docker/. */
  readonly key: ImageKey;
  /** Full reference, always with the `:local` tag. */
  readonly name: string;
  readonly description: string;
  /** How it is made: a Dockerfile in docker/<key>/, or a debootstrap rootfs + docker import. */
  readonly build: 'dockerfile' | 'rootfs';
  /** Keys of images that must exist first. */
  readonly dependsOn: readonly ImageKey[];
  /** TCP ports the default command listens on (all interfaces). */
  readonly ports: readonly number[];
  /**
   * Readiness: a line the default command prints (stdout or stderr) once its listening socket is
   * open. Works with testcontainers' `Wait.forLogMessage`. Undefined: not a server by default.
   */
  readonly readyLog?: RegExp;
  /** argv of the default command (what CMD runs, after the ENTRYPOINT when there is one). */
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  /** Server modes the default entrypoint offers (probe: `server --mode MODE`). */
  readonly serverModes?: readonly string[];
  /** Client tool inside the image, for suites that drive a real client. */
  readonly client?: { readonly binary: string; readonly example: readonly string[] };
}

export const images = {
  probe: {
    key: 'probe',
    name: 'harness/probe:local',
    description: 'FROM scratch: the static epoll probe (client, server modes, state watcher)',
    build: 'dockerfile',
    dependsOn: [],
    ports: [9000],
    readyLog: /"event":"listening"/,
    entrypoint: ['/harness-probe'],
    serverModes: ['echo', 'no-accept', 'no-close', 'sink', 'close-on-accept', 'close-unread', 'linger0'],
    command: ['server', '--mode', 'echo', '--listen', '0.0.0.0:9000'],
  },
  'debian-base': {
    key: 'debian-base',
    name: 'harness/debian-base:local',
    description: 'debootstrap --variant=minbase bookworm rootfs, docker import',
    build: 'rootfs',
    dependsOn: [],
    ports: [],
    command: ['/bin/bash'],
  },
  nginx: {
    key: 'nginx',
    name: 'harness/nginx:local',
    description: "Debian's nginx on 0.0.0.0:80 in the foreground (daemon off), with curl",
    build: 'dockerfile',
    dependsOn: ['debian-base'],
    ports: [80],
    readyLog: /start worker process/,
    command: ['nginx', '-g', 'daemon off;'],
    client: { binary: 'curl', example: ['curl', '-sS', '-o', '/dev/null', 'http://ADDRESS:80/1m.bin'] },
  },
  redis: {
    key: 'redis',
    name: 'harness/redis:local',
    description: "Debian's redis-server on 0.0.0.0:6379, protected mode off, no persistence, with redis-cli",
    build: 'dockerfile',
    dependsOn: ['debian-base'],
    ports: [6379],
    readyLog: /Ready to accept connections/,
    command: ['redis-server', '--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
    client: { binary: 'redis-cli', example: ['redis-cli', '-h', 'ADDRESS', '-p', '6379', 'PING'] },
  },
} as const satisfies Record<ImageKey, ImageSpec>;

/** Build order: dependencies first. */
export const imageOrder: readonly ImageKey[] = ['debian-base', 'probe', 'nginx', 'redis'];

/** argv (after the entrypoint) for a probe server mode on a port, e.g. probeServerCommand('echo'). */
export function probeServerCommand(mode: string, port = 9000): string[] {
  if (!/^[a-z][a-z0-9-]*$/.test(mode)) throw new Error(`invalid probe server mode ${JSON.stringify(mode)}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}`);
  return ['server', '--mode', mode, '--listen', `0.0.0.0:${port}`];
}

/** Label every harness image carries. Images are a cache: `harness gc` must not delete them. */
export const IMAGE_LABEL = 'harness.image';
const INPUTS_LABEL = 'harness.image.inputs';

/** Debian suite and variant of the base. */
export const DEBIAN_SUITE = 'bookworm';
const ROOTFS_RECIPE_VERSION = '2'; // bump when the rootfs post-processing below changes

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

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
  /** Static probe binary to put in harness/probe (default: probe/build/harness-probe-static). */
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

export interface DockerAvailability {
  ok: boolean;
  reason?: string;
  fix?: string;
  serverVersion?: string;
}

const SETUP_FIX = 'run `sudo bash scripts/docker-setup.sh` (installs docker.io and debootstrap, starts dockerd)';

export async function dockerAvailable(): Promise<DockerAvailability> {
  try {
    const r = await execa('docker', ['version', '--format', '{{.Server.Version}}'], {
      reject: false,
      timeout: 15_000,
      stdin: 'ignore',
    });
    if (r.failed) {
      const short = r.shortMessage ?? '';
      const err = (r.stderr || r.stdout || short).trim();
      if ((r as { code?: string }).code === 'ENOENT' || /ENOENT/.test(short)) {
        return { ok: false, reason: 'docker CLI not found on PATH', fix: SETUP_FIX };
      }
      if (r.timedOut) return { ok: false, reason: 'docker did not answer within 15 s', fix: SETUP_FIX };
      if (/permission denied/i.test(err)) {
        return { ok: false, reason: `cannot talk to the Docker daemon: ${lastLine(err)}`, fix: 'run as root, or add the user to the docker group' };
      }
      return { ok: false, reason: `Docker daemon not reachable: ${lastLine(err)}`, fix: SETUP_FIX };
    }
    return { ok: true, serverVersion: r.stdout.trim() };
  } catch (e) {
    return { ok: false, reason: `docker CLI could not run: ${(e as Error).message}`, fix: SETUP_FIX };
  }
}

/** Resolve user input ('nginx', 'harness/nginx:local', 'harness/nginx') to a key. */
export function resolveImageKey(input: string): ImageKey {
  for (const key of imageOrder) {
    const spec = images[key];
    if (input === key || input === spec.name || input === spec.name.replace(/:local$/, '')) return key;
  }
  throw new Error(`unknown image ${JSON.stringify(input)}; known: ${imageOrder.map((k) => images[k].name).join(', ')}`);
}

export async function buildImages(opts: BuildOptions = {}): Promise<BuildReport> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const root = opts.repoRoot ?? findRepoRoot();
  const only: readonly string[] = opts.only?.length ? opts.only : imageOrder;
  const requested = new Set<ImageKey>(only.map((s) => resolveImageKey(s)));
  const wanted = closure(requested);
  const results: ImageBuildResult[] = [];

  const avail = await dockerAvailable();
  if (!avail.ok) {
    for (const key of imageOrder.filter((k) => wanted.has(k))) {
      results.push({ key, name: images[key].name, status: 'failed', durationMs: 0, error: avail.reason ?? 'Docker unavailable', fix: avail.fix ?? SETUP_FIX });
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
      try {
        const r = await buildOne(spec, {
          root,
          force: Boolean(opts.force) && requested.has(key),
          refreshRootfs: Boolean(opts.refreshRootfs),
          probeBinary: opts.probeBinary,
          verbose: Boolean(opts.verbose),
          log,
        });
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
    if (results.some((r) => r.status === 'built')) {
      // Replaced images (and their layers) become dangling; remove only harness ones.
      await execa('docker', ['image', 'prune', '--force', '--filter', `label=${IMAGE_LABEL}=1`], { reject: false, stdin: 'ignore' });
    }
  } finally {
    await unlock();
  }
  return { ok: results.every((r) => r.status === 'built' || r.status === 'cached'), totalMs: performance.now() - t0, images: results };
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

class BuildError extends Error {
  constructor(message: string, readonly fix?: string) {
    super(message);
    this.name = 'BuildError';
  }
}

interface BuildCtx {
  root: string;
  force: boolean;
  refreshRootfs: boolean;
  probeBinary: string | undefined;
  verbose: boolean;
  log: (msg: string) => void;
}

function closure(keys: Set<ImageKey>): Set<ImageKey> {
  const out = new Set<ImageKey>();
  const visit = (k: ImageKey): void => {
    if (out.has(k)) return;
    out.add(k);
    for (const d of images[k].dependsOn) visit(d);
  };
  for (const k of keys) visit(k);
  return out;
}

async function buildOne(spec: ImageSpec, ctx: BuildCtx): Promise<{ status: 'built' | 'cached'; id: string }> {
  if (spec.build === 'rootfs') return buildBase(spec, ctx);
  return buildFromDockerfile(spec, ctx);
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
    const bin = await probeBinary(ctx);
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
    ctx.log(`${spec.name}: docker build ${relative(ctx.root, dir)}`);
    await run(
      'docker',
      ['build', '--force-rm', ...(ctx.force ? ['--no-cache'] : []), '--label', `${IMAGE_LABEL}=1`, '--label', `${INPUTS_LABEL}=${inputs}`, '--tag', spec.name, '--file', join(context, 'Dockerfile'), context],
      ctx,
      // The classic builder: present in every docker.io version, builds FROM local images without
      // looking at a registry, and needs no buildx plugin.
      { env: { DOCKER_BUILDKIT: '0' } },
    );
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
  const id = await imageId(spec.name);
  if (!id) throw new BuildError(`docker build succeeded but ${spec.name} does not exist`);
  return { status: 'built', id };
}

async function probeBinary(ctx: BuildCtx): Promise<string> {
  const explicit = ctx.probeBinary ?? process.env['HARNESS_PROBE_STATIC'];
  if (explicit) {
    if (!existsSync(explicit)) throw new BuildError(`probe binary ${explicit} does not exist`);
    return resolve(explicit);
  }
  const bin = join(ctx.root, 'probe', 'build', 'harness-probe-static');
  if (!existsSync(bin) && existsSync(join(ctx.root, 'probe', 'Makefile'))) {
    ctx.log('probe/build/harness-probe-static missing: make -C probe static');
    try {
      await run('make', ['-C', join(ctx.root, 'probe'), 'static'], ctx);
    } catch (e) {
      throw new BuildError(`could not build the static probe: ${(e as Error).message}`, 'run `make -C probe static` (needs gcc and the static libc: apt-get install build-essential)');
    }
  }
  if (!existsSync(bin)) throw new BuildError(`${relative(ctx.root, bin)} does not exist`, 'run `make -C probe static`');
  return bin;
}

// --- the Debian base ---------------------------------------------------------------------------

export function rootfsTarball(root: string = findRepoRoot()): string {
  return join(root, '.cache', `debian-${DEBIAN_SUITE}-rootfs.tar`);
}

async function buildBase(spec: ImageSpec, ctx: BuildCtx): Promise<{ status: 'built' | 'cached'; id: string }> {
  const tarball = rootfsTarball(ctx.root);
  const inputs = createHash('sha256').update(`rootfs\0${ROOTFS_RECIPE_VERSION}\0${DEBIAN_SUITE}\0minbase`).digest('hex');
  const existing = await imageInfo(spec.name);
  if (existing && !ctx.force && !ctx.refreshRootfs && existing.labels[INPUTS_LABEL] === inputs) {
    return { status: 'cached', id: existing.id };
  }
  if (existing && !ctx.force && !ctx.refreshRootfs) ctx.log(`${spec.name}: rootfs recipe changed, rebuilding`);

  // The tarball is reused unless asked not to, or its sidecar says an older recipe made it.
  // (A tarball without sidecar — e.g. restored from a CI cache — is trusted.)
  const meta = await readTarballMeta(tarball);
  const reuse = existsSync(tarball) && !ctx.refreshRootfs && (meta === undefined || meta.recipe === ROOTFS_RECIPE_VERSION);
  if (reuse) ctx.log(`${spec.name}: reusing ${relative(ctx.root, tarball)}`);
  else await makeRootfsTarball(tarball, ctx);

  ctx.log(`${spec.name}: docker import`);
  await run(
    'docker',
    [
      'import',
      '--change', `LABEL ${IMAGE_LABEL}=1`,
      '--change', `LABEL ${INPUTS_LABEL}=${inputs}`,
      '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change', 'ENV LANG=C.UTF-8',
      '--change', 'CMD ["/bin/bash"]',
      '--message', `harness: debootstrap --variant=minbase ${DEBIAN_SUITE}`,
      tarball,
      spec.name,
    ],
    ctx,
  );
  const id = await imageId(spec.name);
  if (!id) throw new BuildError(`docker import succeeded but ${spec.name} does not exist`);
  return { status: 'built', id };
}

interface TarballMeta {
  recipe: string;
  suite: string;
  mirror: string;
  created: string;
}

async function readTarballMeta(tarball: string): Promise<TarballMeta | undefined> {
  try {
    return JSON.parse(await readFile(`${tarball}.json`, 'utf8')) as TarballMeta;
  } catch {
    return undefined;
  }
}

async function makeRootfsTarball(tarball: string, ctx: BuildCtx): Promise<void> {
  if (process.getuid?.() !== 0) throw new BuildError('debootstrap needs root', 'run as root');
  if (!(await which('debootstrap'))) throw new BuildError('debootstrap is not installed', SETUP_FIX);
  const mirrors = await debianMirrors();
  ctx.log(`debootstrap --variant=minbase ${DEBIAN_SUITE} from ${mirrors.archive}`);
  await mkdir(dirname(tarball), { recursive: true });
  const work = await mkdtemp(join(dirname(tarball), 'rootfs-'));
  const dir = join(work, 'rootfs');
  try {
    await run('debootstrap', ['--variant=minbase', '--components=main', DEBIAN_SUITE, dir, mirrors.archive], ctx);
    await postprocessRootfs(dir, mirrors);
    const part = join(work, 'rootfs.tar');
    ctx.log(`packing ${relative(ctx.root, tarball)}`);
    await run('tar', ['--numeric-owner', '--xattrs', '-C', dir, '-cf', part, '.'], ctx);
    await rename(part, tarball);
    const meta: TarballMeta = { recipe: ROOTFS_RECIPE_VERSION, suite: DEBIAN_SUITE, mirror: mirrors.archive, created: new Date().toISOString() };
    await writeFile(`${tarball}.json`, JSON.stringify(meta, null, 2) + '\n');
  } finally {
    await unmountUnder(work);
    await rm(work, { recursive: true, force: true });
  }
}

async function postprocessRootfs(dir: string, m: DebianMirrors): Promise<void> {
  const lines = [`deb ${m.archive} ${DEBIAN_SUITE} main`, `deb ${m.archive} ${DEBIAN_SUITE}-updates main`];
  if (m.security) lines.push(`deb ${m.security} ${DEBIAN_SUITE}-security main`);
  await writeFile(join(dir, 'etc/apt/sources.list'), lines.join('\n') + '\n');
  // Never start services while packages are installed in a build container.
  await writeFile(join(dir, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  await writeFile(
    join(dir, 'etc/apt/apt.conf.d/90harness'),
    'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n',
  );
  await writeFile(
    join(dir, 'etc/dpkg/dpkg.cfg.d/90harness-nodoc'),
    ['path-exclude /usr/share/doc/*', 'path-include /usr/share/doc/*/copyright', 'path-exclude /usr/share/man/*',
      'path-exclude /usr/share/info/*', 'path-exclude /usr/share/locale/*', ''].join('\n'),
  );
  // Caches the image does not need (apt-get update runs in every derived build anyway).
  for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
    const p = join(dir, sub);
    for (const name of await readdir(p).catch(() => [] as string[])) {
      if (name === 'partial' || name === 'lock') continue;
      await rm(join(p, name), { recursive: true, force: true });
    }
  }
  for (const name of await readdir(join(dir, 'var/cache/apt')).catch(() => [] as string[])) {
    if (name.endsWith('.bin')) await rm(join(dir, 'var/cache/apt', name), { force: true });
  }
  // What the dpkg excludes above keep out of later installs, remove from the base too.
  await emptyDir(join(dir, 'usr/share/man'));
  await emptyDir(join(dir, 'usr/share/info'));
  await emptyDir(join(dir, 'usr/share/locale'), (n) => n === 'locale.alias');
  for (const pkg of await readdir(join(dir, 'usr/share/doc')).catch(() => [] as string[])) {
    await emptyDir(join(dir, 'usr/share/doc', pkg), (n) => n === 'copyright');
  }
  await writeFile(join(dir, 'etc/hostname'), 'harness\n');
}

async function emptyDir(dir: string, keep: (name: string) => boolean = () => false): Promise<void> {
  let st;
  try {
    st = await lstat(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  for (const name of await readdir(dir)) {
    if (!keep(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

export interface DebianMirrors {
  archive: string;
  security?: string;
}

/**
 * The Debian mirror apt uses on this host, read from /etc/apt/sources.list and
 * /etc/apt/sources.list.d/*.{list,sources} (one-line and deb822 formats). HARNESS_DEBIAN_MIRROR
 * overrides. Never hard-coded: CI machines point at their own mirror.
 */
export async function debianMirrors(aptDir = '/etc/apt'): Promise<DebianMirrors> {
  const override = process.env['HARNESS_DEBIAN_MIRROR'];
  const entries: { uri: string; suites: string[] }[] = [];
  const files: string[] = [];
  if (existsSync(join(aptDir, 'sources.list'))) files.push(join(aptDir, 'sources.list'));
  const d = join(aptDir, 'sources.list.d');
  for (const f of (await readdir(d).catch(() => [] as string[])).sort()) {
    if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(d, f));
  }
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    if (f.endsWith('.sources')) entries.push(...parseDeb822(text));
    else entries.push(...parseOneLine(text));
  }
  const isSecurity = (e: { uri: string; suites: string[] }): boolean =>
    /debian-security/.test(e.uri) || e.suites.some((s) => s.endsWith('-security'));
  const archive =
    override ??
    entries.find((e) => !isSecurity(e) && e.suites.includes(DEBIAN_SUITE))?.uri ??
    entries.find((e) => !isSecurity(e) && /\/debian\/?$/.test(e.uri))?.uri;
  if (!archive) {
    throw new BuildError(
      `no Debian mirror found in ${aptDir}/sources.list*`,
      'set HARNESS_DEBIAN_MIRROR=http://<your-mirror>/debian',
    );
  }
  const security = entries.find((e) => isSecurity(e))?.uri;
  return { archive: archive.replace(/\/+$/, ''), ...(security ? { security: security.replace(/\/+$/, '') } : {}) };
}

function parseOneLine(text: string): { uri: string; suites: string[] }[] {
  const out: { uri: string; suites: string[] }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) continue;
    const rest = line.slice(3).trim().replace(/^\[[^\]]*\]\s*/, '');
    const [uri, suite] = rest.split(/\s+/);
    if (uri && suite && /^https?:\/\//.test(uri)) out.push({ uri, suites: [suite] });
  }
  return out;
}

function parseDeb822(text: string): { uri: string; suites: string[] }[] {
  const out: { uri: string; suites: string[] }[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m && m[1] && m[2] !== undefined) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if (/^(no|false)$/i.test(fields.get('enabled') ?? 'yes')) continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      if (/^https?:\/\//.test(uri)) out.push({ uri, suites });
    }
  }
  return out;
}

// --- docker helpers ----------------------------------------------------------------------------

async function imageInfo(name: string): Promise<{ id: string; labels: Record<string, string> } | undefined> {
  const r = await execa('docker', ['image', 'inspect', '--format', '{{json .Id}} {{json .Config.Labels}}', name], { reject: false, stdin: 'ignore' });
  if (r.failed) return undefined;
  const m = /^(\S+) (.*)$/s.exec(r.stdout.trim());
  if (!m || !m[1] || m[2] === undefined) return undefined;
  const id = JSON.parse(m[1]) as string;
  const labels = (JSON.parse(m[2]) ?? {}) as Record<string, string>;
  return { id, labels };
}

async function imageId(name: string): Promise<string | undefined> {
  return (await imageInfo(name))?.id;
}

/** Run argv; on failure throw with the tail of the output. */
async function run(file: string, args: string[], ctx: BuildCtx, extra: Pick<ExecaOptions, 'env'> = {}): Promise<void> {
  const sub = execa(file, args, { all: true, reject: false, stdin: 'ignore', ...extra });
  if (ctx.verbose && sub.all) {
    let buf = '';
    sub.all.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        ctx.log(`  ${buf.slice(0, i)}`);
        buf = buf.slice(i + 1);
      }
    });
  }
  const r = await sub;
  if (r.failed) {
    const all = typeof r.all === 'string' ? r.all : '';
    const tail = all.split('\n').slice(-15).join('\n');
    throw new BuildError(`${file} ${args.slice(0, 2).join(' ')} … failed (${(r.shortMessage ?? '').split('\n')[0]})\n${tail}`);
  }
}

async function which(bin: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      const st = await stat(join(dir, bin));
      if (st.isFile()) return true;
    } catch {
      /* next */
    }
  }
  return false;
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const p of mounts) await execa('umount', ['-l', p], { reject: false, stdin: 'ignore' });
}

/** Feeds a folder's names and contents, in a stable order, into `hash` (image inputs, build tags). */
export async function hashDir(hash: ReturnType<typeof createHash>, dir: string): Promise<void> {
  const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of names) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      hash.update(`d\0${e.name}\0`);
      await hashDir(hash, p);
    } else if (e.isFile()) {
      hash.update(`f\0${e.name}\0`);
      hash.update(await readFile(p));
    }
  }
}

/** Serialise builders (two vitest workers, two terminals) with an O_EXCL lock file. */
async function acquireLock(path: string, log: (msg: string) => void): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + 30 * 60_000;
  let announced = false;
  for (;;) {
    try {
      const fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
        await rm(path, { force: true }); // stale: its owner died
        continue;
      }
      if (Date.now() > deadline) throw new BuildError(`image build lock ${path} held by pid ${pid} for 30 min`);
      if (!announced) log(`waiting for another image build (pid ${pid}, lock ${path})`);
      announced = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop() ?? s;
}

function relative(root: string, p: string): string {
  return p.startsWith(root + '/') ? p.slice(root.length + 1) : p;
}

/** The repository root: the nearest ancestor of this module with package.json named "harness". */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name;
        if (name === 'harness') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the harness repository root above ${from}`);
    dir = up;
  }
}
