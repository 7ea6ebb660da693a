/**
 * reject on the built-in netns target: at connect every REJECT kind fails a non-blocking connect()
 * at once with its errno (one SYN, one rejection; an ICMP as a soft error while SYN_SENT), a
 * blocking one only after the first SYN retransmission (the second ICMP is a hard error); on an established connection tcp-reset is immediate and an
 * ICMP is a soft error that surfaces only after tcp_retries2, with the ICMP's errno — for net/host
 * unreachable after a flat (RFC 6069) retransmission schedule. Rule hits prove the rejects.
 */
import { dataSysctlsFrom, predictDataTimeout } from '../harness/model/data.js';
import { describe, isRoot, runClock, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('reject (netns)', { tags: ['netns'] }, () => {
  test.concurrent.for([
    ['tcp-reset', 'ECONNREFUSED'],
    ['icmp-net-unreachable', 'ENETUNREACH'],
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
    ['icmp-admin-prohibited', 'EHOSTUNREACH'],
  ] as const)('at connect, %s, non-blocking → %s at once', async ([w, errno], { harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: w } });
    expect(r).toPass();
    expect(r).toFailWith(errno, 'connect');
    expect(r.steps[0]!.durationMs).toBeLessThan(r.expected.steps.connect!.windowMs![1]);
    expect(r.fault.rulesHit.reject).toBe(1);
    expect(r.counters.client.TcpExtTCPSynRetrans ?? 0).toBe(0);
    expect(r).not.toHaveVisited('server', 'SYN_RECV');
    if (w !== 'tcp-reset') {
      // The ICMP lands while connect() holds the socket lock: a soft error (LockDroppedIcmps),
      // reported through EPOLLERR + SO_ERROR while the socket is still SYN_SENT.
      expect(r.steps[0]!.tcp?.state).toBe('SYN_SENT');
      expect(r.steps[0]!.events).toContain('EPOLLERR');
      expect(r.counters.client.TcpExtLockDroppedIcmps).toBe(1);
      expect(r.counters.server.IcmpOutDestUnreachs).toBe(1);
    }
  });

  test.concurrent.for([
    ['tcp-reset', 'ECONNREFUSED'],
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
  ] as const)('at connect, %s, blocking → %s, an ICMP only after the first SYN retransmission', async ([w, errno], { harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: w }, blocking: true });
    expect(r).toPass();
    expect(r.api).toBe('blocking');
    expect(r.steps[0]).toMatchObject({ op: 'connect', blocking: true, errno });
    if (w === 'tcp-reset') {
      expect(r.steps[0]!.durationMs).toBeLessThan(r.expected.steps.connect!.windowMs![1]);
      return;
    }
    // The soft error from the first ICMP wakes nothing; the second, answering the retransmitted
    // SYN, finds the socket unlocked: a hard error one SYN timer (1000 → 1024 ms) later.
    const [lo, hi] = r.expected.steps.connect!.windowMs!;
    expect(r.steps[0]!.durationMs).toBeInWindow([lo, hi]);
    expect(lo).toBeGreaterThanOrEqual(1000);
    expect(r.counters.client).toMatchObject({ TcpExtLockDroppedIcmps: 1, TcpAttemptFails: 1, TcpExtTCPSynRetrans: 1, IcmpInDestUnreachs: 2 });
    expect(r.fault.rulesHit.reject).toBe(2);
  });

  test.concurrent('established, host-unreachable, the kernel default icmp_ratelimit: the bucket decides one schedule', { tags: ['slow'] }, async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'reject',
      kernelDefaults: true,
      params: { with: 'icmp-host-unreachable', when: 'established' },
      sysctls: [{ side: 'client', key: 'net.ipv4.tcp_retries2', value: '3' }],
    });
    expect(r).toPass();
    expect(r.sysctls.server['net.ipv4.icmp_ratelimit']).toBe('1000');
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r), 0, { revertBackoff: true, icmpRatelimitMs: 1000 });
    expect(p.rtoRetransmits[0]).toBe(p.rtoRetransmits[1]);
    // Fewer ICMPs than segments: the rate limit swallowed some, and with them the reverts.
    expect(r.counters.client.IcmpInDestUnreachs).toBe(p.icmps[0]);
    expect(r.counters.client.IcmpInDestUnreachs).toBeLessThan(r.fault.rulesHit.reject!);
    expect(r.steps.find((s) => s.label === 'dies')!.tcp?.totalRetrans).toBe(p.retransSegs[0]);
  });

  test.concurrent('established, tcp-reset: ECONNRESET on the next read, at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: 'tcp-reset', when: 'established' } });
    expect(r).toPass();
    expect(r).toFailWith('ECONNRESET', 'dies');
    expect(r.fault.rulesHit.reject).toBe(1);
  });

  test.concurrent.for([
    ['icmp-port-unreachable', 'ECONNREFUSED', false],
    ['icmp-host-unreachable', 'EHOSTUNREACH', true],
  ] as const)('established, %s: a soft error, %s only after tcp_retries2', { tags: ['slow'] }, async ([w, errno, flat], { harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: w, when: 'established' } });
    expect(r).toPass();
    expect(r).toFailWith(errno, 'dies');
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await runClock(r), 0, { revertBackoff: flat, icmpRatelimitMs: 0 });
    const dies = r.steps.find((s) => s.label === 'dies')!;
    expect(dies.durationMs).toBeInWindow(r.expected.steps.dies!.windowMs!);
    expect(dies.tcp?.totalRetrans).toBe(p.retransSegs[0]);
    expect(r.fault.rulesHit.reject).toBe(p.segments[0]);
    expect(r.counters.client.IcmpInDestUnreachs).toBe(p.segments[0]);
  });
});
