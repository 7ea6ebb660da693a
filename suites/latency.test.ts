/**
 * latency on the built-in netns target: the probe's delayer holds each packet (NFQUEUE in the
 * receiving namespace). connect and each request take one round trip; TCP_INFO shows the round
 * trip and the RTO the estimator derives; a delay that starts after the handshake makes the
 * veth's RTO and loss probe fire early — spurious retransmissions, counted as the model predicts.
 * Both delayers are gone afterwards (journaled kills), their rules too.
 */
import { kernelFacts } from '../harness/core/kernel.js';
import { dataSysctlsFrom } from '../harness/model/data.js';
import { predictLatency } from '../harness/model/rtt.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';
import { readFile } from 'node:fs/promises';
import { describe, expect, isRoot, roundTripMs, test } from './support/fixtures.js';

const step = (r: { steps: { label?: string }[] }, label: string) => r.steps.find((s) => s.label === label)! as { durationMs: number; tcp?: { rttUs: number; rtoUs: number } | null };

/** Delayers of a run still alive: the pids its Result says it started, if they are still `harness-probe delay`. */
async function delayersRunning(applied: readonly string[]): Promise<number> {
  const pids = applied.flatMap((a) => /^delayer .*\(pid (\d+),/.exec(a)?.[1] ?? []);
  expect(pids.length).toBeGreaterThan(0);
  let alive = 0;
  for (const pid of pids) alive += (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('delay') ? 1 : 0;
  return alive;
}

describe.skipIf(!isRoot)('latency (netns)', { tags: ['netns'] }, () => {
  test.concurrent('2 × 100 ms from the first SYN: connect and 3 requests take ~200 ms each; RTO 3·RTT; nothing retransmitted', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'latency', params: { rounds: 3 } });
    expect(r).toPass();
    const clock = await kernelFacts();
    const p = predictLatency({ toServerMs: 100, toClientMs: 100, jitterMs: 0, when: 'connect', rounds: 3 }, dataSysctlsFrom(r.sysctls.client, r.sysctls.server), clock, wakeupSlackMs(clock));
    expect(step(r, 'connect').durationMs).toBeInWindow(p.connectMs);
    for (const k of [1, 2, 3]) expect(roundTripMs(r, k)).toBeInWindow(p.roundMs);
    expect(step(r, 'connect').tcp!.rttUs).toBeInWindow(p.afterConnect.rttUs);
    expect(step(r, 'after').tcp!.rtoUs).toBeInWindow(p.afterRounds.rtoUs);
    expect(r.counters.client.TcpRetransSegs).toBe(0);
    expect(r.counters.server.TcpRetransSegs).toBe(0);
    // Both delayers reported, and together held every packet their rules sent them (the rule
    // counters are read first; the client's closing FIN may reach a delayer after that).
    const held = (r.fault.processes ?? []).map((x) => Number(x.report?.packets));
    expect(held).toHaveLength(2);
    expect(held.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(r.fault.rulesHit['delay-to-server']! + r.fault.rulesHit['delay-to-client']!);
    expect(r.revert.failed).toEqual([]);
    expect(await delayersRunning(r.fault.applied)).toBe(0);
  });

  test.concurrent('one direction (to-server 150 ms): one hold per round trip', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'latency', params: { direction: 'to-server', delayMs: 150 } });
    expect(r).toPass();
    expect(roundTripMs(r, 1)).toBeGreaterThanOrEqual(150);
    expect(roundTripMs(r, 1)).toBeLessThan(200);
    expect(r.fault.rulesHit['delay-to-client']).toBeUndefined();
  });

  test.concurrent('a 600 ms round trip after the handshake: spurious retransmissions per round as the model counts them', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'latency', params: { when: 'established', delayMs: 300, rounds: 3 } });
    expect(r).toPass();
    const clock = await kernelFacts();
    const p = predictLatency({ toServerMs: 300, toClientMs: 300, jitterMs: 0, when: 'established', rounds: 3 }, dataSysctlsFrom(r.sysctls.client, r.sysctls.server), clock, wakeupSlackMs(clock));
    expect(p.spurious.firings[0]).toBeGreaterThan(0);
    expect(r.counters.client.TcpRetransSegs).toBeInWindow(p.spurious.firings);
    // Nothing was lost: the duplicates came back as DSACKs and the kernel undid its loss state.
    expect(r.counters.client.TcpExtTCPDSACKRecv).toBeGreaterThan(0);
    expect(r.counters.client.TcpExtTCPLossUndo).toBeGreaterThan(0);
    // The answers still came one round trip after each request.
    for (const k of [1, 2, 3]) expect(roundTripMs(r, k)).toBeInWindow(p.roundMs);
  });

  test.concurrent('jitter ± 20 ms keeps every round trip within 2 × (100 ± 20) ms and the packets in order', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'latency', params: { jitterMs: 20, rounds: 4 } });
    expect(r).toPass();
    const d = [1, 2, 3, 4].map((k) => roundTripMs(r, k));
    for (const x of d) expect(x).toBeGreaterThanOrEqual(160);
    // Reordering would show as SACK-detected loss; there is none.
    expect(r.counters.client.TcpRetransSegs).toBe(0);
  });
});
