/**
 * fin-drop on the built-in netns target: the client's FIN never reaches the server. The client's
 * orphan must stay in FIN_WAIT1, retransmit the FIN as many times as the model derives from its
 * tcp_orphan_retries / RTO / TLP settings, and vanish inside the predicted window; the server must
 * stay ESTABLISHED (it never saw the FIN), and the drop rule must count every FIN.
 */
import { orphanFinSysctlsFrom, predictOrphanFin } from '../harness/model/teardown.js';
import { watchedWindowMs } from '../harness/model/watch.js';
import type { Result } from '../harness/verdict/result.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

async function predicted(r: Result) {
  return predictOrphanFin(orphanFinSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r));
}

function finWait1(r: Result) {
  const close = r.steps.find((s) => s.label === 'close')!;
  const samples = r.states.client.filter((s) => s.remote.endsWith(':9000'));
  const gone = samples.find((s) => s.state === 'GONE')!;
  return { goneAfterCloseMs: gone.tMs - close.startMs, maxRetrans: Math.max(...samples.map((s) => s.retrans ?? 0)), states: samples.map((s) => s.state) };
}

describe.skipIf(!isRoot)('fin-drop (netns)', { tags: ['netns'] }, () => {
  test('default: FIN_WAIT1 with TLP + 3 RTO retransmissions, gone in the window; server ESTABLISHED; every FIN dropped', async ({ harness }) => {
    const r = await harness.run({ scenario: 'fin-drop' });
    expect(r).toPass();
    const p = await predicted(r);
    expect(p.rtoRetransmits).toEqual([3, 3]);
    const w = finWait1(r);
    expect(w.states.filter((st) => st !== 'ESTABLISHED' && st !== 'FIN_WAIT1')).toEqual(['GONE']);
    expect(w.states).toContain('FIN_WAIT1');
    expect(w.goneAfterCloseMs).toBeInWindow(watchedWindowMs(p.windowMs, await runClock(r)));
    expect(w.maxRetrans).toBe(3);
    expect(r.steps.find((s) => s.label === 'before-close')?.tcp?.rtoUs).toBe(p.rtoMs * 1000);
    expect(r).not.toHaveVisited('server', 'CLOSE_WAIT');
    expect(r.states.server.filter((s) => s.state !== 'LISTEN').map((s) => s.state)).toEqual(['ESTABLISHED']);
    expect(r.counters.client.TcpRetransSegs).toBe(4);
    expect(r.counters.client.TcpExtTCPAbortOnTimeout).toBe(1);
    expect(r.fault.rulesHit['drop-fin']).toBe(5);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent.for([
    { key: 'net.ipv4.tcp_orphan_retries', value: '1', rtoRetransmits: 2, fins: 4 },
    { key: 'net.ipv4.tcp_orphan_retries', value: '3', rtoRetransmits: 4, fins: 6 },
    // No TLP: the same RTO retransmissions, one FIN fewer, gone one RTO earlier.
    { key: 'net.ipv4.tcp_early_retrans', value: '0', rtoRetransmits: 3, fins: 4 },
    // A smaller RTO minimum: more retransmissions fit before the same time boundary.
    { key: 'net.ipv4.tcp_rto_min_us', value: '50000', rtoRetransmits: 4, fins: 6 },
  ])('$key=$value: $rtoRetransmits RTO retransmissions, $fins FINs', async ({ key, value, rtoRetransmits, fins }, { harness, expect }) => {
    const r = await harness.run({ scenario: 'fin-drop', sysctls: [{ side: 'client', key, value }] });
    expect(r.sysctls.client[key]).toBe(value);
    const p = await predicted(r);
    expect(p.rtoRetransmits).toEqual([rtoRetransmits, rtoRetransmits]);
    expect(r.expected.stateLeft?.[0]?.windowMs[0]).toBe(p.windowMs[0]);
    expect(finWait1(r).maxRetrans).toBe(rtoRetransmits);
    expect(r.fault.rulesHit['drop-fin']).toBe(fins);
    expect(r).toPass();
  });

  test('tcp_orphan_retries=0 means 8 on this kernel: FIN_WAIT1 for ≈104 s', { tags: ['slow'], timeout: 200_000 }, async ({ harness }) => {
    const r = await harness.run({ scenario: 'fin-drop', sysctls: [{ side: 'client', key: 'net.ipv4.tcp_orphan_retries', value: '0' }] });
    const p = await predicted(r);
    expect(p.retries).toBe(8);
    expect(finWait1(r).maxRetrans).toBe(8);
    expect(finWait1(r).goneAfterCloseMs).toBeGreaterThan(104_000);
    expect(r).toPass();
  });
});
