/**
 * Where the native probe comes from, and how to get it when it is missing: the fix differs
 * between a checkout (`npm run build`) and an installed package (node_modules/@netfault/harness,
 * where npm's install script builds it: scripts/install-probe.mjs). An installed package also
 * carries a prebuilt static probe for the CPU it was packed on: used when the install script
 * did not run (`--ignore-scripts`, or npm 12, which runs a dependency's scripts only once the
 * project allows them) or could not build.
 */
import { basename, dirname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = '@netfault/harness';

/** What building the probe needs, as Debian packages (scripts/install-probe.mjs names the same). */
export const PROBE_DEBIAN_PACKAGES = ['gcc', 'make', 'libc6-dev', 'linux-libc-dev'] as const;
export const PROBE_APT = `apt-get install -y ${PROBE_DEBIAN_PACKAGES.join(' ')}`;

/** The package root: harness/core/ sits two levels below it in a checkout, dist/harness/core/ three. */
export function packageRoot(moduleUrl: string = import.meta.url): string {
  const up2 = resolve(dirname(fileURLToPath(moduleUrl)), '../..');
  return basename(up2) === 'dist' ? dirname(up2) : up2;
}

/** Installed by npm (a dependency in some project's node_modules), rather than a checkout. */
export function isInstalled(root: string): boolean {
  return root.split(sep).includes('node_modules');
}

/** Where the probe may be, best first. A checkout uses only its own build: a prebuilt one there could be stale. */
export function probeCandidates(root: string, arch: string = process.arch): string[] {
  const built = resolve(root, 'probe/build/harness-probe');
  return isInstalled(root) ? [built, resolve(root, 'probe/prebuilt', `linux-${arch}`, 'harness-probe')] : [built];
}

/** The fix for a missing probe, as the user should type it where the package is. */
export function probeBuildHint(root: string): string {
  return isInstalled(root)
    ? `install a C compiler (${PROBE_APT}), then: make -C ${resolve(root, 'probe')} — or npm rebuild ${PACKAGE_NAME}, which runs the package's install script (npm 12 runs it only when your package.json's allowScripts lists ${PACKAGE_NAME})`
    : `install a C compiler (${PROBE_APT}), then: npm run build (in ${root})`;
}
