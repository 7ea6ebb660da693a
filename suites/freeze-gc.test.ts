/**
 * A frozen server is the worst leftover there is: after `kill -9` of the harness in the middle of
 * app-hang, the server it froze stays stopped (a `process` target: SIGSTOPped; a container:
 * paused by the cgroup freezer) until `harness gc` replays the run's journal, whose thaw entry was
 * written before the freeze. The built-in server needs no gc for that: it dies with the harness
 * (PR_SET_PDEATHSIG is SIGKILL, and SIGKILL ends a stopped process too).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CLI = resolve('dist/harness/cli.js');

/** Starts `harness run … --json` and resolves once the run has frozen its server (the freeze is logged). */
async function startFrozen(args: string[]): Promise<{ child: ResultPromise; runId: string; stderr: () => string }> {
  const child = execa('node', [CLI, 'run', ...args, '--json'], { reject: false, env: { ...process.env, HARNESS_LOG_LEVEL: 'info' } });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += String(d)));
  const deadline = Date.now() + 60_000;
  while (!/"freezeMs"/.test(stderr) && Date.now() < deadline) await sleep(20);
  const runId = /"runId":"([a-z0-9]+)"/.exec(stderr)?.[1];
  expect(runId, stderr).toBeDefined();
  return { child, runId: runId!, stderr: () => stderr };
}

/** pid → state letter of every process whose command line holds `marker`. */
async function statesOf(marker: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const p of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (!cmd.includes(marker)) continue;
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    if (state) out.set(Number(p), state);
  }
  return out;
}

async function gc(): Promise<string> {
  const r = await execa('node', [CLI, 'gc'], { reject: false });
  expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
  return String(r.stdout);
}

describe.skipIf(!isRoot)('harness gc thaws what a killed run froze', { tags: ['netns', 'cli'] }, () => {
  test('a process target SIGSTOPped by app-hang stays stopped after kill -9; gc resumes it (and removes it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-freeze-gc-'));
    // A server of the user's own that does not die with the harness: a node HTTP server (no PDEATHSIG).
    const marker = `freeze-gc-${process.pid}-${Date.now()}`;
    const config = join(dir, 'harness.config.json');
    const js = `require('http').createServer((q, s) => s.end('ok')).listen(7123, () => console.log('listening ${marker}'))`;
    await writeFile(config, JSON.stringify({ targets: { 'node-svc': { process: ['node', '-e', js], port: 7123, ready: { log: 'listening' } } } }), { mode: 0o600 });
    try {
      const { child, runId } = await startFrozen(['app-hang', '--target', 'node-svc', '--config', config, '--set', 'observeMs=20000']);
      const frozen = await statesOf(marker);
      expect([...frozen.values()], `${runId}: the server is frozen`).toEqual(['T']);
      child.kill('SIGKILL');
      await child;
      await sleep(200);
      // Nothing thawed it: still stopped after its harness died.
      expect([...(await statesOf(marker)).values()]).toEqual(['T']);

      expect(await gc()).toMatch(/replayed journals: [1-9]/);
      // Thawed, then killed by the revert: no process of it is left, and none stopped.
      const after = await statesOf(marker);
      expect([...after.values()].filter((s) => s === 'T' || s === 't')).toEqual([]);
      expect(after.size).toBe(0);
      expect((await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.includes(runId))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a server that left its process group (setsid) cannot be frozen: exit 3, and nothing is left stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-freeze-gc-'));
    const marker = `daemon-${process.pid}-${Date.now()}`;
    const config = join(dir, 'harness.config.json');
    const js = `require('http').createServer((q, s) => s.end('ok')).listen(7124, () => console.log('listening ${marker}'))`;
    // The command the user configured stays, the server it starts daemonizes into a session of its own.
    const argv = ['sh', '-c', 'setsid node -e "$0" & exec sleep 600', js];
    await writeFile(config, JSON.stringify({ targets: { 'daemon-svc': { process: argv, port: 7124, ready: { log: 'listening' } } } }), { mode: 0o600 });
    try {
      const r = await execa('node', [CLI, 'run', 'app-hang', '--target', 'daemon-svc', '--config', config, '--json'], { reject: false });
      expect(r.exitCode, String(r.stderr)).toBe(3);
      const res = JSON.parse(String(r.stdout).split('\n')[0]!) as { verdict: string; error: { code: string; message: string } };
      expect(res.verdict).toBe('error');
      expect(res.error.code).toBe('E_FREEZE');
      expect(res.error.message).toMatch(/cannot freeze target daemon-svc: the process listening on port 7124 \(pid \d+\) is not in its process group: it left it \(setsid, a daemon\); nothing was left frozen/);
      // The daemon escaped the run's process group but not its namespace: deleting it killed it. Nothing stopped anywhere.
      await sleep(200);
      expect([...(await statesOf(marker)).values()].filter((st) => st === 'T')).toEqual([]);
      expect([...(await statesOf('exec sleep 600')).values()].filter((st) => st === 'T')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the built-in server dies with the harness even while stopped: nothing stopped is left before gc', async () => {
    const { child, runId } = await startFrozen(['app-hang', '--set', 'observeMs=20000']);
    const probeServers = async () => {
      const out: string[] = [];
      for (const p of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
        const env = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
        if (!env.includes('server\0--mode\0echo')) continue;
        const ns = await execa('ip', ['netns', 'identify', p], { reject: false });
        if (String(ns.stdout).includes(runId)) out.push((await readFile(`/proc/${p}/stat`, 'utf8')).split(') ')[1]!.split(' ')[0]!);
      }
      return out;
    };
    expect(await probeServers()).toEqual(['T']);
    child.kill('SIGKILL');
    await child;
    // PR_SET_PDEATHSIG(SIGKILL): a stopped process dies of SIGKILL like any other.
    const deadline = Date.now() + 5000;
    while ((await probeServers()).length && Date.now() < deadline) await sleep(50);
    expect(await probeServers()).toEqual([]);
    await gc();
  });
});

describe.skipIf(!isRoot || !dockerUp)(`harness gc unpauses what a killed run paused${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker', 'cli'] }, () => {
  test('app-hang on redis: kill -9 leaves the target paused; gc unpauses and removes it', async () => {
    const { child, runId } = await startFrozen(['app-hang', '--target', 'redis', '--set', 'observeMs=20000']);
    const paused = async () =>
      String((await execa('docker', ['ps', '-a', '--filter', `label=harness.run=${runId}`, '--filter', 'status=paused', '--format', '{{.Names}}'])).stdout)
        .split('\n')
        .filter(Boolean);
    expect(await paused()).toEqual([`harness-${runId}-target`]);
    child.kill('SIGKILL');
    await child;
    expect(await paused()).toEqual([`harness-${runId}-target`]);

    expect(await gc()).toMatch(/replayed journals: [1-9]/);
    const left = String((await execa('docker', ['ps', '-a', '--filter', `label=harness.run=${runId}`, '--format', '{{.Names}} {{.Status}}'])).stdout);
    expect(left).toBe('');
    const anyPaused = String((await execa('docker', ['ps', '-a', '--filter', 'status=paused', '--filter', `label=harness.run=${runId}`, '--format', '{{.Names}}'])).stdout);
    expect(anyPaused).toBe('');
  });
});
