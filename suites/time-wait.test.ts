/**
 * time-wait on the built-in echo server: short connections, the client closing first, from a
 * narrowed ip_local_port_range. Each must leave a TIME_WAIT on the client (none on the server);
 * connect() must fail with EADDRNOTAVAIL exactly when the model says the range is used up, and
 * tcp_tw_reuse=1 (with timestamps, after tcp_tw_reuse_delay) must take a TIME_WAIT port over.
 */
import { stateSpans } from '../harness/verdict/checks.js';
import type { Result } from '../harness/verdict/result.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const connects = (r: Result) => r.steps.filter((s) => s.op === 'connect');
const firstFailure = (r: Result) => connects(r).findIndex((s) => !s.ok) + 1;

describe.skipIf(!isRoot)('time-wait (netns)', { tags: ['netns'] }, () => {
  test.concurrent('default: 10 ports → 10 connections in TIME_WAIT, the 11th EADDRNOTAVAIL at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait' });
    expect(r).toPass();
    expect(r).toFailWith('EADDRNOTAVAIL', 'connect-11');
    expect(firstFailure(r)).toBe(11);
    // No packet: the failure is local and immediate.
    expect(connects(r)[10]!.durationMs).toBeLessThan(5);
    const tw = stateSpans(r.states.client, 'TIME_WAIT');
    expect(tw).toHaveLength(10);
    expect(new Set(tw.map((s) => Number(s.local.split(':')[1])))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => 40000 + i)));
    expect(tw.every((s) => s.then === 'held')).toBe(true);
    expect(r).not.toHaveVisited('server', 'TIME_WAIT');
    expect(r.counters.client.TcpExtTW).toBe(10);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('an odd-sized range (11 ports): 10 for certain, the 11th by chance, the 12th never', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 12 }, sysctls: [{ side: 'client', key: 'net.ipv4.ip_local_port_range', value: '40000 40010' }] });
    expect(r).toPass();
    expect([11, 12]).toContain(firstFailure(r));
    expect(r).toFailWith('EADDRNOTAVAIL', 'connect-12');
  });

  test.concurrent.for([
    { reuse: '1', pauseMs: 1100, ok: true },
    { reuse: '1', pauseMs: 0, ok: false },
    // The kernel default 2 means loopback only: nothing between two namespaces on a veth.
    { reuse: '2', pauseMs: 1100, ok: false },
    { reuse: '0', pauseMs: 1100, ok: false },
  ])('tcp_tw_reuse=$reuse, pause $pauseMs ms: the 11th connect succeeds: $ok', async ({ reuse, pauseMs, ok }, { harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { reuseAfterMs: pauseMs }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_tw_reuse', value: reuse }] });
    expect(r).toPass();
    expect(connects(r)[10]!.ok).toBe(ok);
    expect(r.counters.client.TcpExtTWRecycled ?? 0).toBe(ok ? 1 : 0);
    // The no-reuse prediction assumes the burst of 10 connections is far shorter than tcp_tw_reuse_delay.
    expect(connects(r)[9]!.endMs - connects(r)[0]!.startMs).toBeLessThan(100);
  });

  test.concurrent('tcp_tw_reuse_delay=100 ms: after 150 ms every TIME_WAIT port is taken over once', async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'time-wait',
      params: { connections: 21, reuseAfterMs: 150 },
      sysctls: [
        { side: 'client', key: 'net.ipv4.tcp_tw_reuse', value: '1' },
        { side: 'client', key: 'net.ipv4.tcp_tw_reuse_delay', value: '100' },
      ],
    });
    expect(r).toPass();
    expect(firstFailure(r)).toBe(21);
    expect(r.counters.client.TcpExtTWRecycled).toBe(10);
  });

  test('TIME_WAIT lasts TCP_TIMEWAIT_LEN = 60 s (no sysctl changes it)', { tags: ['slow'], timeout: 120_000 }, async ({ harness }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 1, observeMs: 63_000 } });
    expect(r).toPass();
    const [tw] = stateSpans(r.states.client, 'TIME_WAIT');
    expect(tw?.then).toBe('GONE');
    expect(tw?.lastsMs).toBeGreaterThanOrEqual(59_980);
  });
});
