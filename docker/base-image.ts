/**
 * harness/debian-base:local, the parent of the images of real third-party servers. No registry is
 * reachable, so it is not pulled: `debootstrap --variant=minbase bookworm` makes a rootfs from
 * the host's Debian mirror, cached as a tarball in `.cache/` (debootstrap takes about a minute),
 * and `docker import` loads it with the harness labels.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../harness/core/exec.js';
import { BuildError, buildStep, onPath, repoRelative as relative, type BuildCtx } from './build-step.js';
import { debianMirrors, DEBIAN_SUITE, type DebianMirrors } from './debian-mirrors.js';
import { DOCKER_SETUP_FIX, imageId, imageInfo } from './engine.js';
import { IMAGE_LABEL, INPUTS_LABEL, type ImageSpec } from './images.js';

const ROOTFS_RECIPE_VERSION = '2'; // bump when postprocessRootfs below changes

export function rootfsTarball(root: string): string {
  return join(root, '.cache', `debian-${DEBIAN_SUITE}-rootfs.tar`);
}

export async function buildBaseImage(spec: ImageSpec, ctx: BuildCtx): Promise<{ status: 'built' | 'cached'; id: string }> {
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
  await buildStep(
    [
      'docker', 'import',
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
  if (!(await onPath('debootstrap'))) throw new BuildError('debootstrap is not installed', DOCKER_SETUP_FIX);
  const mirrors = await debianMirrors();
  ctx.log(`debootstrap --variant=minbase ${DEBIAN_SUITE} from ${mirrors.archive}`);
  await mkdir(dirname(tarball), { recursive: true });
  const work = await mkdtemp(join(dirname(tarball), 'rootfs-'));
  const dir = join(work, 'rootfs');
  try {
    await buildStep(['debootstrap', '--variant=minbase', '--components=main', DEBIAN_SUITE, dir, mirrors.archive], ctx);
    await postprocessRootfs(dir, mirrors);
    const part = join(work, 'rootfs.tar');
    ctx.log(`packing ${relative(ctx.root, tarball)}`);
    await buildStep(['tar', '--numeric-owner', '--xattrs', '-C', dir, '-cf', part, '.'], ctx);
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

/** debootstrap mounts proc and sys inside the rootfs; a failed run can leave them mounted. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const p of mounts) await run(['umount', '-l', p], { reject: false });
}
