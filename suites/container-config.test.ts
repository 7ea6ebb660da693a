/**
 * The worked example: a user's own service defined in a config file (suites/fixtures/
 * harness.config.json) — `my-svc` is a Dockerfile folder the harness builds, `my-bin` a plain
 * command run in a fresh namespace pair — faulted through the CLI exactly as a user would, with
 * the same verdict as the built-in target.
 */
import { resolve } from 'node:path';
import { execa } from 'execa';
import type { Result } from '../harness/verdict/result.js';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CLI = resolve('dist/harness/cli.js');
const CONFIG = resolve('suites/fixtures/harness.config.json');

async function cli(args: string[]): Promise<{ exitCode: number | undefined; results: Result[]; stderr: string }> {
  const r = await execa('node', [CLI, ...args, '--json'], { reject: false });
  return { exitCode: r.exitCode, results: String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Result), stderr: String(r.stderr) };
}

async function leftovers(runId: string): Promise<string[]> {
  const c = await execa('docker', ['ps', '-a', '--filter', `label=harness.run=${runId}`, '--format', '{{.Names}}']);
  const n = await execa('docker', ['network', 'ls', '--filter', `label=harness.run=${runId}`, '--format', '{{.Name}}']);
  return [...c.stdout.split('\n'), ...n.stdout.split('\n')].filter(Boolean);
}

describe.skipIf(!isRoot || !dockerUp)(`targets from a config file${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker', 'cli'] }, () => {
  test('syn-drop --target my-svc (a Dockerfile folder): passes, on the container backend, and leaves nothing', async () => {
    const r = await cli(['run', 'syn-drop', '--target', 'my-svc', '--config', CONFIG]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [res] = r.results;
    expect(res).toPass();
    expect(res!.target).toMatchObject({ name: 'my-svc', backend: 'container', port: 8080 });
    expect(res!.fault.rulesHit['drop-syn']).toBeGreaterThan(0);
    expect(res!.revert.failed).toEqual([]);
    expect(await leftovers(res!.runId)).toEqual([]);
  });

  test('syn-drop and app-crash side by side on my-svc, and syn-drop on my-bin (a plain command): all pass', async () => {
    const [both, bin] = await Promise.all([
      cli(['run', 'syn-drop', 'app-crash', '--target', 'my-svc', '--config', CONFIG]),
      cli(['run', 'syn-drop', '--target', 'my-bin', '--config', CONFIG]),
    ]);
    expect(both.exitCode, both.stderr).toBe(0);
    expect(both.results.map((x) => x.scenario).sort()).toEqual(['app-crash', 'syn-drop']);
    for (const x of both.results) {
      expect(x).toPass();
      expect(await leftovers(x.runId)).toEqual([]);
    }
    // Two concurrent runs, each its own pair of namespaces: the same addresses, apart.
    expect(new Set(both.results.map((x) => x.runId)).size).toBe(2);
    expect(both.results.map((x) => x.target.address)).toEqual(['198.18.0.1', '198.18.0.1']);
    expect(bin.exitCode, bin.stderr).toBe(0);
    expect(bin.results[0]!.target).toMatchObject({ name: 'my-bin', backend: 'netns', port: 7000 });
  });
});
