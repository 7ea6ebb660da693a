import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import { isInstalled, packageRoot, PROBE_APT, probeBuildHint, probeCandidates } from './probe-install.js';

describe('where the probe comes from', () => {
  test('the package root from a source module and from a compiled one', () => {
    expect(packageRoot(pathToFileURL('/work/h/harness/core/probe.ts').href)).toBe('/work/h');
    expect(packageRoot(pathToFileURL('/p/node_modules/@netfault/harness/dist/harness/core/probe.js').href)).toBe('/p/node_modules/@netfault/harness');
  });

  test('the fix for a missing probe: make or npm rebuild when installed, npm run build in a checkout', () => {
    expect(isInstalled('/p/node_modules/@netfault/harness')).toBe(true);
    expect(isInstalled('/work/h')).toBe(false);
    const installed = probeBuildHint('/p/node_modules/@netfault/harness');
    expect(installed).toContain('(apt-get install -y gcc make libc6-dev linux-libc-dev), then: make -C /p/node_modules/@netfault/harness/probe');
    expect(installed).toContain('npm rebuild @netfault/harness');
    expect(installed).not.toContain('npm run build');
    expect(probeBuildHint('/work/h')).toBe('install a C compiler (apt-get install -y gcc make libc6-dev linux-libc-dev), then: npm run build (in /work/h)');
  });

  test('an installed package falls back to its prebuilt probe; a checkout never does (it could be stale)', () => {
    expect(probeCandidates('/p/node_modules/@netfault/harness', 'arm64')).toEqual([
      '/p/node_modules/@netfault/harness/probe/build/harness-probe',
      '/p/node_modules/@netfault/harness/probe/prebuilt/linux-arm64/harness-probe',
    ]);
    expect(probeCandidates('/work/h')).toEqual(['/work/h/probe/build/harness-probe']);
  });

  test('the install script names the same Debian packages as doctor and the hint', () => {
    // scripts/install-probe.mjs runs before dist/ exists (npm ci in a checkout), so it cannot import this list.
    const script = readFileSync(resolve(import.meta.dirname, '../../scripts/install-probe.mjs'), 'utf8');
    const list = /export const DEBIAN_PACKAGES = \[([^\]]*)\]/.exec(script)?.[1];
    expect(`apt-get install -y ${list?.replace(/['\s]/g, '').split(',').join(' ')}`).toBe(PROBE_APT);
  });
});
