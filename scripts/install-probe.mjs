#!/usr/bin/env node
/**
 * npm's `install` script (it runs for tarball, registry and git installs alike, and for `npm ci`
 * in a checkout): makes probe/build/harness-probe, the native probe every run needs.
 *
 *   1. builds it from the shipped sources (`make -C probe`: a C compiler, make and the libc and
 *      Linux headers), the binary this machine's toolchain makes from exactly these sources;
 *   2. if that is impossible, and the package carries a prebuilt static probe for this CPU
 *      (probe/prebuilt/linux-<arch>/, made by `npm pack`) that runs here, the harness will use
 *      that one (harness/core/probe-install.ts looks for it at run time);
 *   3. otherwise fails the install, naming the Debian packages to install.
 *
 * Why fail rather than install without a probe: nothing in the package works without it, and the
 * install is where the user is looking; a package that installs "fine" would only say so at the
 * first run. `harness doctor` and the first run still say it when the script did not run
 * (`--ignore-scripts`; npm 12 runs a dependency's install script only when the project's
 * allowScripts lists it) and there is no prebuilt probe for the CPU. Only argv arrays, no shell.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What building the probe needs, as Debian packages (kept equal to harness/core/probe-install.ts). */
export const DEBIAN_PACKAGES = ['gcc', 'make', 'libc6-dev', 'linux-libc-dev'];
const APT = `apt-get install -y ${DEBIAN_PACKAGES.join(' ')}`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const binary = join(root, 'probe/build/harness-probe');
const prebuilt = join(root, 'probe/prebuilt', `linux-${process.arch}`, 'harness-probe');

function onPath(cmd) {
  if (cmd.includes('/')) return existsSync(cmd);
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** What this machine lacks to build the probe, as Debian packages ([] when nothing obvious). */
export function missingPackages() {
  const missing = [];
  // The Makefile uses make's default $(CC), `cc` (gcc provides it), unless CC is set.
  if (!onPath((process.env.CC || 'cc').trim().split(/\s+/)[0])) missing.push('gcc');
  if (!onPath('make')) missing.push('make');
  if (!existsSync('/usr/include/stdio.h')) missing.push('libc6-dev');
  if (!existsSync('/usr/include/linux/inet_diag.h')) missing.push('linux-libc-dev');
  return missing;
}

/** The probe answers `--version` with its JSON header: the binary runs on this machine. */
function runs(path) {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout.includes('"harness-probe"');
}

function build() {
  const r = spawnSync('make', ['-C', join(root, 'probe')], { encoding: 'utf8', timeout: 300_000 });
  if (r.error) return { ok: false, why: `make: ${r.error.code === 'ENOENT' ? 'not found' : r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `make -C probe failed:\n${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-8).join('\n')}` };
  if (!runs(binary)) return { ok: false, why: `${binary} was built but does not run` };
  return { ok: true };
}

function main() {
  const say = (s) => process.stderr.write(`@netfault/harness: ${s}\n`);
  if (process.env.HARNESS_PROBE) {
    say(`HARNESS_PROBE=${process.env.HARNESS_PROBE}: using that probe, not building one`);
    return 0;
  }
  // Always try: a guess about what is missing must never stop a build that would work.
  const built = build();
  if (built.ok) {
    say(`built the native probe: ${binary}`);
    return 0;
  }
  const missing = missingPackages();
  if (missing.length) built.why = `this machine lacks ${missing.join(', ')}`;
  // Only an installed package falls back (a checkout's prebuilt one may be stale: probe-install.ts).
  if (root.split(sep).includes('node_modules') && existsSync(prebuilt) && runs(prebuilt)) {
    say(`could not build the native probe (${built.why}); the harness will use the prebuilt static one: ${prebuilt}`);
    return 0;
  }
  process.stderr.write(
    [
      `@netfault/harness: cannot build the native probe (probe/build/harness-probe): ${built.why}`,
      `  and there is no prebuilt probe for linux-${process.arch} in this package.`,
      `  fix (Debian/Ubuntu, as root): ${APT}`,
      `  then install again, or: npm rebuild @netfault/harness`,
      '',
    ].join('\n'),
  );
  return 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
