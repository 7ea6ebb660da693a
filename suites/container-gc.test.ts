/**
 * After `kill -9` of the harness in the middle of a container run, `harness gc` removes every
 * container of that run (found by the label harness.run=<runId>, and through the run's orphaned
 * journal), and nothing labelled with the run remains (a run makes no Docker network).
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CLI = resolve('dist/harness/cli.js');

async function labelled(runId: string): Promise<{ containers: string[]; networks: string[] }> {
  const c = await execa('docker', ['ps', '-a', '--filter', `label=harness.run=${runId}`, '--format', '{{.Names}}']);
  const n = await execa('docker', ['network', 'ls', '--filter', `label=harness.run=${runId}`, '--format', '{{.Name}}']);
  return { containers: c.stdout.split('\n').filter(Boolean).sort(), networks: n.stdout.split('\n').filter(Boolean) };
}

describe.skipIf(!isRoot || !dockerUp)(`harness gc after kill -9 of a container run${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker', 'cli'] }, () => {
  test('kill -9 while the fault is in force, then gc: no container of the run left (and it made no network)', async () => {
    // Long enough that the kill lands while the client is still in SYN_SENT.
    const child = execa('node', [CLI, 'run', 'syn-drop', '--target', 'nginx', '--sysctl', 'client:net.ipv4.tcp_syn_retries=6', '--json'], { reject: false, env: { ...process.env, HARNESS_LOG_LEVEL: 'info' } });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += String(d)));
    // The runner logs "fault applied" once the target, holders and rules exist.
    const deadline = Date.now() + 60_000;
    while (!/fault applied/.test(stderr) && Date.now() < deadline) await sleep(50);
    const runId = /"runId":"([a-z0-9]+)"/.exec(stderr)?.[1];
    expect(runId, stderr).toBeDefined();
    const before = await labelled(runId!);
    expect(before.containers).toEqual([`harness-${runId}-client`, `harness-${runId}-pod`, `harness-${runId}-target`]);
    expect(before.networks).toEqual([]);

    child.kill('SIGKILL');
    await child;
    // Nothing reverted it: the run's objects are still there.
    expect((await labelled(runId!)).containers).toHaveLength(3);

    const gc = await execa('node', [CLI, 'gc'], { reject: false });
    expect(gc.exitCode, String(gc.stdout) + String(gc.stderr)).toBe(0);
    expect(gc.stdout).toMatch(/replayed journals: [1-9]/);
    expect(await labelled(runId!)).toEqual({ containers: [], networks: [] });
    // And a second gc has nothing left to do for this run.
    const again = await execa('node', [CLI, 'gc'], { reject: false });
    expect(again.exitCode).toBe(0);
  });
});
