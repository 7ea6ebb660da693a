/**
 * The run as a pipeline, on the real kernel: an interruption at any stage reverts everything the
 * run made (also what the stage in flight created after the signal), a broken run still reports
 * what it gathered, and `--pcap` captures are proven to hold the scenario's packets on both sides.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETNS_DIR } from '../harness/core/netns.js';
import { stateDir } from '../harness/core/journal.js';
import { Session } from '../harness/core/session.js';
import { UsageError } from '../harness/core/errors.js';
import { execute, prepare, type StageName } from '../harness/engine/runner.js';
import { OWN_NETNS, runProbeClient } from '../harness/core/probe.js';
import { CHILD_EHASH_ENTRIES } from '../targets/netns.js';
import { execa } from 'execa';
import { describe, isRoot, test } from './support/fixtures.js';

/** A client sysctl the run sets and reads back, so a Result shows whether sysctls were gathered. */
const FIN_TIMEOUT = { side: 'client' as const, key: 'net.ipv4.tcp_fin_timeout', value: '7' };
const STAGES: StageName[] = ['target', 'sysctls', 'observe', 'calibrate', 'expect', 'fault', 'client', 'collect', 'check', 'judge'];

async function leftovers(runId: string): Promise<string[]> {
  const ns = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter((n) => n.includes(runId));
  const journals = (await readdir(stateDir()).catch(() => [] as string[])).filter((n) => n.includes(runId));
  return [...ns, ...journals];
}

describe.skipIf(!isRoot)('pipeline (netns)', { tags: ['netns'] }, () => {
  for (const stage of STAGES) {
    test.concurrent(`interrupted as stage ${stage} starts: error at that stage, everything reverted`, async ({ expect }) => {
      const session = new Session();
      const p = await prepare({ scenario: 'app-crash', params: { variant: 'idle' }, sysctls: [FIN_TIMEOUT], pcapDir: join(tmpdir(), 'harness-pipeline-test') });
      const r = await execute(p, {
        session,
        onStage: (name) => {
          if (name === stage) session.interrupt('test');
        },
      });
      expect(r.verdict).toBe('error');
      expect(r.error).toMatchObject({ code: 'E_INTERRUPTED', stage });
      expect(r.revert.failed).toEqual([]);
      expect(await leftovers(p.runId)).toEqual([]);
      // What was gathered before the interruption is in the Result.
      if (STAGES.indexOf(stage) > STAGES.indexOf('sysctls')) expect(r.sysctls.client[FIN_TIMEOUT.key]).toBe(FIN_TIMEOUT.value);
      if (STAGES.indexOf(stage) > STAGES.indexOf('client')) expect(r.steps.length).toBeGreaterThan(0);
    });
  }

  for (const delayMs of [5, 40, 90, 150]) {
    test.concurrent(`interrupted ${delayMs} ms into the target's start: what it creates after the signal is reverted too`, async ({ expect }) => {
      const session = new Session();
      const p = await prepare({ scenario: 'syn-drop' });
      const r = await execute(p, {
        session,
        onStage: (name) => {
          if (name === 'target') setTimeout(() => session.interrupt('test'), delayMs);
        },
      });
      expect(r.verdict).toBe('error');
      expect(r.error?.code).toBe('E_INTERRUPTED');
      expect(r.revert.failed).toEqual([]);
      expect(await leftovers(p.runId)).toEqual([]);
    });
  }

  test.concurrent('a probe the run\'s signal stops before it printed a step is an interruption, not a probe failure', async ({ expect }) => {
    // What a run interrupted while it calibrates sees (CI, under load): the probe killed before its
    // first line. Aborted right after the spawn, every time.
    for (let i = 0; i < 5; i++) {
      const stop = new AbortController();
      const probe = runProbeClient(OWN_NETNS, '127.0.0.1', 9, [{ op: 'calibrate', samples: 64, sleepUs: 1000 }], { signal: stop.signal });
      stop.abort();
      await expect(probe).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
    }
  });

  test.concurrent('an interruption during the client stops the probe at once and keeps its steps', async ({ expect }) => {
    const session = new Session();
    const p = await prepare({ scenario: 'syn-drop' });
    const r = await execute(p, {
      session,
      onStage: (name) => {
        if (name === 'client') setTimeout(() => session.interrupt('test'), 1500);
      },
    });
    expect(r.error).toMatchObject({ code: 'E_INTERRUPTED', stage: 'collect' });
    // The connect was cut short (EINTR) well before its 7 s ETIMEDOUT.
    expect(r.steps[0]).toMatchObject({ op: 'connect', ok: false, errno: 'EINTR' });
    expect(r.steps[0]!.durationMs).toBeLessThan(3000);
    expect(r.states.client.some((s) => s.state === 'SYN_SENT')).toBe(true);
    expect(await leftovers(p.runId)).toEqual([]);
  });

  test.concurrent('the run\'s namespaces come from the nursery: each has a TCP hash of its own, the veth between them and nowhere else', async ({ expect }) => {
    const p = await prepare({ scenario: 'app-crash', params: { variant: 'idle' } });
    const seen: Record<string, string> = {};
    const r = await execute(p, {
      async duringFault({ target }) {
        for (const ns of [target.client, target.server]) {
          // tcp_ehash_entries: the namespace's own table size; negative when it shares the global one.
          seen[`${ns.name} ehash`] = (await execa('nsenter', [`--net=${ns.path}`, '--', 'sysctl', '-n', 'net.ipv4.tcp_ehash_entries'])).stdout.trim();
          seen[`${ns.name} links`] = (await execa('ip', ['-n', ns.name, '-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(': ')[1]!.split('@')[0]!).sort().join(' ');
        }
      },
    });
    expect(r).toPass();
    expect(seen).toEqual({
      [`harness-${p.runId}-c ehash`]: String(CHILD_EHASH_ENTRIES),
      [`harness-${p.runId}-t ehash`]: String(CHILD_EHASH_ENTRIES),
      [`harness-${p.runId}-c links`]: `harness${p.runId}c lo`,
      [`harness-${p.runId}-t links`]: `harness${p.runId}t lo`,
    });
    // Neither end of the veth was ever in the host's namespace, and nothing of the run is left.
    expect((await execa('ip', ['-o', 'link', 'show'])).stdout).not.toContain(`harness${p.runId}`);
    expect(await leftovers(p.runId)).toEqual([]);
  });

  test.concurrent('a run that breaks keeps the sysctls and stage it reached', async ({ expect }) => {
    // A trigger that the fault does not define breaks the run in its client stage.
    const p = await prepare({ scenario: 'app-crash', params: { variant: 'idle' }, sysctls: [FIN_TIMEOUT] });
    const broken = { ...p, fault: { ...p.fault, triggers: {} } };
    const r = await execute(broken, {});
    expect(r.verdict).toBe('error');
    expect(r.error).toMatchObject({ code: 'E_TRIGGER', stage: 'client' });
    expect(r.sysctls.client[FIN_TIMEOUT.key]).toBe(FIN_TIMEOUT.value);
    expect(r.revert.failed).toEqual([]);
    expect(await leftovers(p.runId)).toEqual([]);
  });

  for (const scenario of ['app-crash', 'reject', 'rst-close'] as const) {
    test.concurrent(`--pcap on short ${scenario}: both sides captured, with the scenario's packets`, async ({ harness, expect }) => {
      const dir = await mkdtemp(join(tmpdir(), 'harness-pcap-'));
      try {
        const r = await harness.run({ scenario, pcapDir: dir });
        expect(r).toPass();
        expect(r.captures?.map((c) => c.side)).toEqual(['client', 'server']);
        for (const c of r.captures!) {
          expect(existsSync(c.file)).toBe(true);
          // At least a handshake's worth crossed each side (the loopback marker is not counted).
          expect(c.packets).toBeGreaterThanOrEqual(scenario === 'reject' ? 2 : 3);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  test.concurrent('bad --pcap and partial sysctls are refused before anything exists', async ({ expect }) => {
    const before = (await readdir(NETNS_DIR).catch(() => [] as string[])).length;
    for (const pcapDir of ['/proc/x', '/sys/kernel/harness', '/etc/hostname', '']) {
      await expect(prepare({ scenario: 'syn-drop', pcapDir })).rejects.toMatchObject({ flag: '--pcap' });
    }
    await expect(prepare({ scenario: 'syn-drop', sysctls: [{ side: 'client', key: 'net.ipv4.tcp_rmem', value: '1 2' }] })).rejects.toBeInstanceOf(UsageError);
    expect((await readdir(NETNS_DIR).catch(() => [] as string[])).length).toBeLessThanOrEqual(before);
  });
});
