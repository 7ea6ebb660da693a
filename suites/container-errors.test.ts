/**
 * Container targets that cannot run: each gets a clear message with the fix and the documented
 * exit code (2 config, 3 environment), and leaves nothing behind — no container, no network, no
 * journal of the run.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CLI = resolve('dist/harness/cli.js');
let dir: string;

async function config(targets: Record<string, unknown>): Promise<string> {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ targets }));
  return file;
}

async function leftovers(runId: string): Promise<string[]> {
  const c = await execa('docker', ['ps', '-a', '--filter', `label=harness.run=${runId}`, '--format', '{{.Names}}']);
  const n = await execa('docker', ['network', 'ls', '--filter', `label=harness.run=${runId}`, '--format', '{{.Name}}']);
  return [...c.stdout.split('\n'), ...n.stdout.split('\n')].filter(Boolean);
}

/** Runs the CLI; returns exit code, stderr, and the Result (when the run got that far). */
async function harness(args: string[], env: Record<string, string> = {}) {
  const r = await execa('node', [CLI, ...args, '--json'], { reject: false, env: { ...process.env, ...env } });
  const line = String(r.stdout).trim().split('\n').filter(Boolean)[0];
  const result = line ? (JSON.parse(line) as { runId: string; verdict: string; error?: { code: string; message: string }; revert: { failed: unknown[] } }) : undefined;
  if (result) expect(await leftovers(result.runId)).toEqual([]);
  return { exitCode: r.exitCode, stderr: String(r.stderr), result };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'harness-container-errors-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const MY_SVC = resolve('suites/fixtures/my-svc');

describe.skipIf(!isRoot || !dockerUp)(`container target errors${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker', 'cli'] }, () => {
  test('a bad field in the config: exit 2, the field named, nothing started', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'my-svc', '--config', await config({ 'my-svc': { build: MY_SVC, port: 0 } })]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/targets\.my-svc\.port: must be 1-65535/);
    expect(r.result).toBeUndefined();
  });

  test('an image that is not here and cannot be pulled: exit 3, says how to build or load it', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'ghost', '--config', await config({ ghost: { image: 'harness-test/no-such-image:1', port: 80 } })]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/image harness-test\/no-such-image:1 \(target ghost\) is not on this machine and could not be pulled/);
    expect(r.stderr).toMatch(/fix: build or load it first: docker build -t harness-test\/no-such-image:1/);
    expect(r.result).toBeUndefined();
  });

  test('a Dockerfile that does not build: exit 3, the build\'s own error shown', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'broken', '--config', await config({ broken: { build: resolve('suites/fixtures/broken-svc'), port: 80 } })]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/target broken: docker build .*broken-svc failed/);
    expect(r.stderr).toMatch(/this build step fails on purpose/);
    expect(r.stderr).toMatch(/fix: fix the Dockerfile/);
  });

  test('a target that never becomes ready: exit 3 after its ready timeout, its log shown, nothing left', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'mute', '--config', await config({ mute: { build: MY_SVC, port: 8080, ready: { log: 'a line nobody prints' }, readyTimeoutMs: 1500 } })]);
    expect(r.exitCode).toBe(3);
    expect(r.result?.verdict).toBe('error');
    expect(r.result?.error?.code).toBe('E_TARGET_NOT_READY');
    expect(r.result?.error?.message).toMatch(/target mute .* did not become ready \(waited up to 1500 ms for log line \/a line nobody prints\/\): /);
    expect(r.result?.error?.message).toMatch(/"event":"listening"/); // the container's own log
    expect(r.result?.revert.failed).toEqual([]);
  });

  test('a target that exits at once: exit 3, says it exited and with what', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'crashy', '--config', await config({ crashy: { build: MY_SVC, port: 8080, command: ['server', '--mode', 'no-such-mode'], readyTimeoutMs: 5000 } })]);
    expect(r.exitCode).toBe(3);
    expect(r.result?.error?.code).toBe('E_TARGET_NOT_READY');
    expect(r.result?.error?.message).toMatch(/the target process exited|container exited with code/);
  });

  test('a port the target does not listen on: exit 3, "does not listen on port N", nothing left', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'wrong-port', '--config', await config({ 'wrong-port': { build: MY_SVC, port: 8081, ready: { log: '"event":"listening"' } } })]);
    expect(r.exitCode).toBe(3);
    expect(r.result?.error?.code).toBe('E_TARGET_PORT');
    expect(r.result?.error?.message).toMatch(/target wrong-port does not listen on port 8081 \(no listening socket on that port in its namespace\)/);
    expect(r.stderr).toMatch(/targets\.wrong-port\.port/);
  });

  test('Docker not running: exit 3, says how to start it, nothing started', async () => {
    const r = await harness(['run', 'syn-drop', '--target', 'nginx'], { DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/target nginx needs Docker/);
    expect(r.stderr).toMatch(/fix: .*scripts\/docker-setup\.sh/);
    expect(r.result).toBeUndefined();
  });
});
