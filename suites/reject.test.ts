/**
 * reject on the built-in netns target: at connect every REJECT kind fails connect() at once with
 * its errno (one SYN, one rejection); on an established connection tcp-reset is immediate and an
 * ICMP is a soft error that surfaces only after tcp_retries2, with the ICMP's errno — for net/host
 * unreachable after a flat (RFC 6069) retransmission schedule. Rule hits prove the rejects.
 */
import { kernelFacts } from '../harness/core/kernel.js';
import { dataSysctlsFrom, predictDataTimeout } from '../harness/model/data.js';
import { describe, isRoot, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('reject (netns)', { tags: ['netns'] }, () => {
  test.concurrent.for([
    ['tcp-reset', 'ECONNREFUSED'],
    ['icmp-net-unreachable', 'ENETUNREACH'],
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
    ['icmp-admin-prohibited', 'EHOSTUNREACH'],
  ] as const)('at connect, %s → %s at once', async ([w, errno], { harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: w } });
    expect(r).toPass();
    expect(r).toFailWith(errno, 'connect');
    expect(r.steps[0]!.durationMs).toBeLessThan(r.expected.steps.connect!.windowMs![1]);
    expect(r.fault.rulesHit.reject).toBe(1);
    expect(r.counters.client.TcpExtTCPSynRetrans ?? 0).toBe(0);
    expect(r).not.toHaveVisited('server', 'SYN_RECV');
    if (w !== 'tcp-reset') {
      // The ICMP lands either while connect() still holds the socket (soft error, socket left in
      // SYN_SENT: LockDroppedIcmps) or after (hard error, tcp_done: AttemptFails) — exactly one.
      const c = r.counters.client;
      expect((c.TcpExtLockDroppedIcmps ?? 0) + (c.TcpAttemptFails ?? 0)).toBe(1);
      expect(r.counters.server.IcmpOutDestUnreachs).toBe(1);
    }
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
    const p = predictDataTimeout(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), await kernelFacts(), 0, { revertBackoff: flat });
    const dies = r.steps.find((s) => s.label === 'dies')!;
    expect(dies.durationMs).toBeInWindow(p.windowMs);
    expect(dies.tcp?.totalRetrans).toBe(p.retransSegs[0]);
    expect(r.fault.rulesHit.reject).toBe(p.segments[0]);
    expect(r.counters.client.IcmpInDestUnreachs).toBe(p.segments[0]);
  });
});
