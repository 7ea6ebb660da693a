#!/usr/bin/env node
/**
 * npm's `prepack` step (after `npm run build`): puts a static probe for this machine's CPU in
 * probe/prebuilt/linux-<arch>/, so that an install on the same architecture works without a C
 * compiler (scripts/install-probe.mjs builds from source first and falls back to it). Static,
 * libc only: it runs on any Linux of that architecture. Only the packing machine's architecture
 * is shipped — a tarball packed on x64 carries linux-x64; other CPUs build from source.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const make = spawnSync('make', ['-C', join(root, 'probe'), 'static'], { stdio: ['ignore', 2, 2] });
if (make.status !== 0) {
  process.stderr.write('prebuild-probe: `make -C probe static` failed (needs gcc, make, libc6-dev, linux-libc-dev)\n');
  process.exit(1);
}
// A prebuilt probe of an older pack (or another CPU, from another machine) must not ship by accident.
rmSync(join(root, 'probe/prebuilt'), { recursive: true, force: true });
const out = join(root, 'probe/prebuilt', `linux-${process.arch}`, 'harness-probe');
mkdirSync(dirname(out), { recursive: true });
copyFileSync(join(root, 'probe/build/harness-probe-static'), out);
// Symbols are a third of the binary; strip is optional (binutils comes with gcc on Debian).
spawnSync('strip', [out], { stdio: 'ignore' });
const ver = spawnSync(out, ['--version'], { encoding: 'utf8' });
if (ver.status !== 0) {
  process.stderr.write(`prebuild-probe: ${out} does not run\n`);
  process.exit(1);
}
process.stderr.write(`prebuild-probe: ${out} (${ver.stdout.trim()})\n`);
