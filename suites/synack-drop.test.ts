/**
 * synack-drop on the built-in netns target: the client is ESTABLISHED at once while the server
 * holds a SYN_RECV request, resends the SYN-ACK per tcp_synack_retries and drops the request in
 * the window the model predicts; a write after that is reset (ECONNRESET, then EPIPE, then EOF),
 * a write before it completes the handshake. Each SYN-ACK the client sees is answered with one
 * more bare ACK, which the rule drops.
 */
import { predictSynAckExpiry, synAckSysctlsFrom } from '../harness/model/handshake.js';
import { describe, isRoot, runClock, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('synack-drop (netns)', { tags: ['netns'] }, () => {
  test.concurrent('default (write after the expiry): RST → ECONNRESET, EPIPE, EOF; request dropped in the window', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'synack-drop' });
    expect(r).toPass();
    const p = predictSynAckExpiry(synAckSysctlsFrom(r.sysctls.server).synackRetries, await runClock(r));
    const step = (l: string) => r.steps.find((s) => s.label === l)!;
    expect(step('connect')).toMatchObject({ ok: true, tcp: { state: 'ESTABLISHED', totalRetrans: 0 } });
    expect(r).toFailWith('ECONNRESET', 'read');
    expect(r).toFailWith('EPIPE', 'write-again');
    expect(step('read-again')).toMatchObject({ ok: true, eof: true });
    expect(r).toHaveVisited('server', 'SYN_RECV');
    expect(r).not.toHaveVisited('server', 'ESTABLISHED');
    // The request disappears once, in the expiry window (plus one watcher poll).
    const gone = r.states.server.find((s) => s.state === 'GONE')!;
    expect(gone.tMs).toBeInWindow([p.expireWindowMs[0], p.expireWindowMs[1] + 5 + 8]);
    // The watcher sees the request's retransmit count climb at the predicted resends.
    const resends = r.states.server.filter((s) => s.state === 'SYN_RECV' && (s.retrans ?? 0) > 0);
    expect(resends.map((s) => s.retrans)).toEqual(p.retransmitAtMs.map((_, i) => i + 1));
    resends.forEach((s, i) => expect(s.tMs).toBeInWindow([p.retransmitWindowsMs[i]![0], p.retransmitWindowsMs[i]![1] + 5 + 8]));
    expect(r.counters.server.TcpExtTCPSynRetrans).toBe(p.retransmits);
    expect(r.counters.client.TcpExtTCPSYNChallenge).toBe(p.retransmits);
    expect(r.fault.rulesHit['drop-ack']).toBe(1 + p.retransmits);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('write before the expiry: the PSH+ACK segment is not matched and completes the handshake', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'synack-drop', params: { write: 'before' } });
    expect(r).toPass();
    expect(r).toHaveVisited('server', 'ESTABLISHED');
    expect(r.steps.find((s) => s.label === 'read')).toMatchObject({ timedOut: true, errno: null });
    expect(r.counters.server.TcpPassiveOpens).toBe(1);
    expect(r.counters.server.TcpOutRsts ?? 0).toBe(0);
    expect(r.fault.rulesHit['drop-ack']).toBe(2);
  });

  test.concurrent('tcp_synack_retries=1: the request is dropped at 3 s, two ACKs hit the rule', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'synack-drop', sysctls: [{ side: 'server', key: 'net.ipv4.tcp_synack_retries', value: '1' }] });
    expect(r.sysctls.server['net.ipv4.tcp_synack_retries']).toBe('1');
    const p = predictSynAckExpiry(1, await runClock(r));
    expect(p.expireAtMs).toBe(3000);
    // 1000 → 251..258 jiffies, then 2000 re-armed on a bucket boundary → 504: from 3016 ms.
    expect(r.expected.stateLeft?.[0]?.windowMs[0]).toBe(p.expireWindowMs[0]);
    expect(p.expireWindowMs[0]).toBe(3016);
    expect(r).toPass();
    expect(r.fault.rulesHit['drop-ack']).toBe(2);
  });
});
