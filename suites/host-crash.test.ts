/**
 * host-crash on the built-in netns target: after the handshake the target drops everything from
 * the client. A write then dies with ETIMEDOUT in the window the data-retransmission model derives
 * from tcp_retries2 (or TCP_USER_TIMEOUT, or keepalive); an idle socket without keepalive never
 * notices. The server never leaves ESTABLISHED; the drop rule's hits equal the segments sent.
 */
import { dataSysctlsFrom, predictDataTimeout, predictKeepalive } from '../harness/model/data.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

const labelled = (r: { steps: { label?: string }[] }, label: string) => r.steps.find((s) => s.label === label)! as { durationMs: number; tcp?: { state: string; totalRetrans: number } | null; timedOut?: boolean; errno: string | null };

describe.skipIf(!isRoot)('host-crash (netns)', { tags: ['netns'] }, () => {
  test.concurrent('tcp_retries2=3: ETIMEDOUT in the modelled window, retransmissions as modelled', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'host-crash' });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'dies');
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r));
    expect(labelled(r, 'dies').durationMs).toBeInWindow(p.windowMs);
    expect(r.counters.client.TcpRetransSegs).toBe(p.retransSegs[0]);
    expect(r.counters.client.TcpExtTCPTimeouts).toBe(p.timeouts[0]);
    expect(r.fault.rulesHit['drop-in']).toBe(p.segments[0]);
    expect(r).not.toHaveVisited('server', 'CLOSE_WAIT');
    expect(r.counters.server.TcpOutRsts ?? 0).toBe(0);
  });

  test.concurrent('TCP_USER_TIMEOUT=1500 ms: ETIMEDOUT ~one RTO pair after it', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'host-crash', params: { variant: 'user-timeout', userTimeoutMs: 1500 } });
    expect(r).toPass();
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r), 1500);
    expect(labelled(r, 'dies').durationMs).toBeInWindow(p.windowMs);
    expect(labelled(r, 'dies').errno).toBe('ETIMEDOUT');
  });

  test.concurrent('keepalive 1 s + 3 × 1 s: three probes, a RST, ETIMEDOUT at ~4 s', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'host-crash', params: { variant: 'keepalive' } });
    expect(r).toPass();
    const p = predictKeepalive({ idleS: 1, intvlS: 1, cnt: 3 }, await runClock(r));
    expect(labelled(r, 'dies').durationMs).toBeInWindow(p.windowMs);
    expect(r.counters.client.TcpExtTCPKeepAlive).toBe(3);
    expect(r.fault.rulesHit['drop-in']).toBe(4);
  });

  test.concurrent('idle without keepalive: the wait times out and the socket is still ESTABLISHED', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'host-crash', params: { variant: 'idle', idleWaitMs: 2000 } });
    expect(r).toPass();
    expect(labelled(r, 'idle-wait')).toMatchObject({ timedOut: true, errno: null });
    expect(labelled(r, 'still-established').tcp?.state).toBe('ESTABLISHED');
    expect(r).not.toHaveVisited('client', 'GONE');
    expect(r.fault.rulesHit['drop-in']).toBeGreaterThanOrEqual(1);
  });

  test('tcp_retries2=4 moves the window (the check follows the sysctl)', { tags: ['slow'] }, async ({ harness }) => {
    const r = await harness.run({ scenario: 'host-crash', sysctls: [{ side: 'client', key: 'net.ipv4.tcp_retries2', value: '4' }] });
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r));
    expect(p.limitMs).toBe(6200);
    expect(r.expected.steps.dies?.windowMs).toEqual(p.windowMs);
    expect(r).toPass();
  });
});
