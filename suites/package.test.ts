/**
 * The package as a user gets it: `npm pack`, a fresh project (`npm init -y`), `npm install
 * <tarball> vitest@<our major>`, then the README's promises — `npx harness run syn-drop --json`
 * passes, and the README's vitest example (its client.js and dead-host.test.ts, extracted from the
 * README as written) passes through `@netfault/harness/testing`. Also: the matchers' declarations
 * type-check in that project, and without a compiler the install falls back to the prebuilt probe
 * or fails naming the Debian packages, as the first run and `harness doctor` do.
 *
 * The registry is reachable but the dependencies are mostly in npm's cache: --prefer-offline.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const REPO = resolve(import.meta.dirname, '..');
const NAME = '@netfault/harness';
const APT = 'apt-get install -y gcc make libc6-dev linux-libc-dev';

/** The README's code blocks that open with `// FILE` (client.js, dead-host.test.ts): the example, as written. */
async function readmeFiles(): Promise<Record<string, string>> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const files: Record<string, string> = {};
  for (const m of readme.matchAll(/```(?:js|ts)\n\/\/ ([\w.-]+\.(?:js|ts))\b[^\n]*\n([\s\S]*?)```/g)) files[m[1]!] = `${m[0].split('\n').slice(1, -1).join('\n')}\n`;
  return files;
}

describe.skipIf(!isRoot)('the package, installed in a fresh project', { tags: ['netns', 'slow'] }, () => {
  let tmp: string;
  let proj: string;
  let pkg: string;
  const runIds: string[] = [];
  const timings: Record<string, number> = {};
  /** A command in the project; output as strings (`all`: both streams, interleaved). */
  const sh = async (argv: string[], opts: { env?: Record<string, string> } = {}) => {
    const r = await execa(argv[0]!, argv.slice(1), { cwd: proj, reject: false, all: true, ...opts });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, all: String(r.all) };
  };
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await f();
    } finally {
      timings[what] = Math.round(performance.now() - t);
    }
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'harness-package-'));
    proj = join(tmp, 'proj');
    await mkdir(proj);
    const packed = await timed('npm pack', () => execa('npm', ['pack', '--pack-destination', tmp], { cwd: REPO, all: true, reject: false }));
    expect(packed.exitCode, packed.all).toBe(0);
    const tgz = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    expect(tgz).toBe('netfault-harness-0.1.0.tgz');
    const ours = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const vitestMajor = /\d+/.exec(ours.devDependencies.vitest!)![0];
    await sh(['npm', 'init', '-y']);
    await sh(['npm', 'pkg', 'set', 'type=module']);
    const installed = await timed('npm install', () => sh(['npm', 'install', join(tmp, tgz!), `vitest@${vitestMajor}`, '--prefer-offline', '--no-audit', '--no-fund']));
    expect(installed.exitCode, installed.all).toBe(0);
    pkg = join(proj, 'node_modules', NAME);
    for (const [file, text] of Object.entries(await readmeFiles())) await writeFile(join(proj, file), text);
  }, 300_000);

  afterAll(async () => {
    process.stderr.write(`package suite timings (ms): ${JSON.stringify(timings)}\n`);
    if (tmp) await rm(tmp, { recursive: true, force: true });
    const left = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => runIds.some((id) => n.startsWith(`harness-${id}-`)));
    expect(left).toEqual([]);
  });

  test('the install built the probe and put harness on the project PATH', async () => {
    expect(existsSync(join(pkg, 'probe/build/harness-probe'))).toBe(true);
    expect(existsSync(join(pkg, 'dist/harness/testing/index.d.ts'))).toBe(true);
    expect(existsSync(join(proj, 'node_modules/.bin/harness'))).toBe(true);
  });

  test('npx harness run syn-drop --json prints one passing Result', async () => {
    // --no: never fetch the registry's unrelated `harness`; the project's own must answer.
    const r = await timed('harness run syn-drop', () => sh(['npx', '--no', 'harness', 'run', 'syn-drop', '--json']));
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { scenario: string; verdict: string; runId: string; target: { backend: string } };
    runIds.push(result.runId);
    expect(result).toMatchObject({ scenario: 'syn-drop', verdict: 'pass', target: { backend: 'netns' } });
  });

  test("the README's vitest example passes, through @netfault/harness/testing with a client", async () => {
    expect(Object.keys(await readmeFiles()).sort()).toEqual(['client.js', 'dead-host.test.ts']);
    const r = await timed('vitest run', () => sh(['npx', '--no', 'vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile=vitest.json']));
    expect(r.exitCode, r.all).toBe(0);
    // A skipped test would exit 0 too: count what passed.
    const report = JSON.parse(await readFile(join(proj, 'vitest.json'), 'utf8')) as { numPassedTests: number; numTotalTests: number };
    expect(report).toMatchObject({ numPassedTests: 1, numTotalTests: 1 });
  });

  test("the matchers' declarations type-check in the user's project (and reject a wrong argument)", async () => {
    await writeFile(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', target: 'es2023', strict: true, noEmit: true, skipLibCheck: true, types: [] }, include: ['*.ts'] }));
    await writeFile(
      join(proj, 'types.ts'),
      [
        "import { expect } from '@netfault/harness/testing';",
        "import type { ClientResult, ClientSpec, Result } from '@netfault/harness';",
        "export const spec: ClientSpec = { argv: ['node', 'client.js', '{host}', '{port}'], timeoutMs: 5000 };",
        'export function check(r: Result): ClientResult | undefined {',
        '  expect(r).toHaveClientEndedBy("kernel");',
        '  // @ts-expect-error -- not a party that ends connections',
        '  expect(r).toHaveClientEndedBy("nobody");',
        '  return r.client;',
        '}',
        '',
      ].join('\n'),
    );
    // The repository's own compiler: installing one into the project would add a minute and prove nothing more.
    const r = await sh([join(REPO, 'node_modules/.bin/tsc'), '-p', 'tsconfig.json']);
    expect(r.all).toBe('');
    expect(r.exitCode).toBe(0);
  });

  test('no compiler: the prebuilt probe runs a scenario; no prebuilt either: install, first run and doctor name the fix', async () => {
    // A PATH with node and sh alone (npm runs scripts with sh): no cc, no make.
    const bare = join(tmp, 'bare-bin');
    await mkdir(bare);
    await symlink(process.execPath, join(bare, 'node'));
    await symlink('/bin/sh', join(bare, 'sh'));
    const noCompiler = { env: { PATH: bare } };
    await rm(join(pkg, 'probe/build'), { recursive: true });

    const fallback = await sh(['node', join(pkg, 'scripts/install-probe.mjs')], noCompiler);
    expect(fallback.exitCode, fallback.all).toBe(0);
    expect(fallback.all).toContain(`this machine lacks gcc, make); the harness will use the prebuilt static one: ${join(pkg, 'probe/prebuilt')}`);
    const withPrebuilt = await sh(['npx', '--no', 'harness', 'run', 'reject', '--json']);
    expect(withPrebuilt.exitCode, withPrebuilt.stderr).toBe(0);
    const rejected = JSON.parse(withPrebuilt.stdout) as { verdict: string; runId: string };
    runIds.push(rejected.runId);
    expect(rejected.verdict).toBe('pass');

    await rename(join(pkg, 'probe/prebuilt'), join(tmp, 'prebuilt'));
    // npm's own rebuild, as a user would retry: npm shows the script's message and fails.
    const rebuild = await sh([process.execPath, await npmCli(), 'rebuild', NAME], noCompiler);
    expect(rebuild.exitCode).not.toBe(0);
    expect(rebuild.all).toContain('cannot build the native probe (probe/build/harness-probe): this machine lacks gcc, make');
    expect(rebuild.all).toContain(APT);

    const run = await sh(['npx', '--no', 'harness', 'run', 'syn-drop']);
    expect(run.exitCode).toBe(3);
    expect(run.stderr).toContain('the native probe is not built');
    expect(run.stderr).toContain(`fix: install a C compiler (${APT}), then: make -C ${join(pkg, 'probe')} — or npm rebuild ${NAME}`);
    const doctor = await sh(['npx', '--no', 'harness', 'doctor']);
    expect(doctor.exitCode).toBe(3);
    expect(doctor.stdout).toMatch(/✗ native probe +not built/);
    expect(doctor.stdout).toContain(`fix: install a C compiler (${APT})`);

    // The fix, as printed, works.
    const fixed = await sh(['npm', 'rebuild', NAME]);
    expect(fixed.exitCode, fixed.all).toBe(0);
    expect(existsSync(join(pkg, 'probe/build/harness-probe'))).toBe(true);
  });
});

/** npm's own CLI script, to run npm with a PATH that has no compiler (and no npm on it). */
async function npmCli(): Promise<string> {
  const r = await execa('npm', ['prefix', '-g']);
  const candidate = join(r.stdout.trim(), 'lib/node_modules/npm/bin/npm-cli.js');
  if (existsSync(candidate)) return candidate;
  throw new Error(`cannot find npm-cli.js (looked at ${candidate})`);
}
