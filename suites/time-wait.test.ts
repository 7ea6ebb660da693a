/**
 * time-wait on the built-in echo server: short connections, the client closing first, from a
 * narrowed ip_local_port_range. Each must leave a TIME_WAIT on the client (none on the server);
 * connect() must fail with EADDRNOTAVAIL exactly when the model says the range is used up, and
 * tcp_tw_reuse=1 (with timestamps, after tcp_tw_reuse_delay) must take a TIME_WAIT port over.
 * Every number and window comes from the model (harness/model/teardown.ts, watch.ts), fed the
 * sysctls the run read back.
 */
import { immediateWindowMs } from '../harness/model/tcp.js';
import { connectCapacity, parsePortRange, timeWaitWindowMs, twReusable } from '../harness/model/teardown.js';
import { watchedSpanMs } from '../harness/model/watch.js';
import { stateSpans } from '../harness/verdict/checks.js';
import type { Result } from '../harness/verdict/result.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

const connects = (r: Result) => r.steps.filter((s) => s.op === 'connect');
const firstFailure = (r: Result) => connects(r).findIndex((s) => !s.ok) + 1;
/** The client's port range as the run read it back, and what connect() can open from it. */
const range = (r: Result) => parsePortRange(r.sysctls.client['net.ipv4.ip_local_port_range']!);
const capacity = (r: Result) => connectCapacity(range(r));

describe.skipIf(!isRoot)('time-wait (netns)', { tags: ['netns'] }, () => {
  test.concurrent('default: 10 ports → 10 connections in TIME_WAIT, the 11th EADDRNOTAVAIL at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait' });
    expect(r).toPass();
    const { low, high } = range(r);
    const ports = capacity(r);
    // An even-sized range: every port, for certain.
    expect(ports.certain).toBe(high + 1 - low);
    expect(ports.max).toBe(ports.certain);
    expect(r).toFailWith('EADDRNOTAVAIL', `connect-${ports.max + 1}`);
    expect(firstFailure(r)).toBe(ports.max + 1);
    // No packet: the failure is local and immediate.
    expect(connects(r)[ports.max]!.durationMs).toBeInWindow(immediateWindowMs(await runClock(r)));
    const tw = stateSpans(r.states.client, 'TIME_WAIT');
    expect(tw).toHaveLength(ports.max);
    expect(new Set(tw.map((s) => Number(s.local.split(':')[1])))).toEqual(new Set(Array.from({ length: high + 1 - low }, (_, i) => low + i)));
    expect(tw.every((s) => s.then === 'held')).toBe(true);
    expect(r).not.toHaveVisited('server', 'TIME_WAIT');
    expect(r.counters.client.TcpExtTW).toBe(ports.max);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('an odd-sized range (11 ports): 10 for certain, the 11th by chance, the 12th never', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 12 }, sysctls: [{ side: 'client', key: 'net.ipv4.ip_local_port_range', value: '40000 40010' }] });
    expect(r).toPass();
    const ports = capacity(r);
    // An odd-sized range: the last free port only by chance.
    expect(ports.certain).toBe(ports.max - 1);
    expect([ports.certain + 1, ports.max + 1]).toContain(firstFailure(r));
    expect(r).toFailWith('EADDRNOTAVAIL', `connect-${ports.max + 1}`);
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
    const n = capacity(r).max;
    expect(connects(r)[n]!.ok).toBe(ok);
    expect(r.counters.client.TcpExtTWRecycled).toBe(ok ? 1 : 0);
    // The prediction assumed the pause is the TIME_WAITs' age. Fed the ages they really had when
    // connect #n+1 ran — the oldest at most since the first connect, the youngest at least since
    // the last EOF — the model must give the same answer for both, and so for every port.
    const at = connects(r)[n]!.startMs;
    const lastEof = r.steps.find((s) => s.label === `eof-${n}`)!;
    const reusable = (ageMs: number) =>
      twReusable({
        reuse: Number(r.sysctls.client['net.ipv4.tcp_tw_reuse']),
        timestamps: r.sysctls.client['net.ipv4.tcp_timestamps'] !== '0' && r.sysctls.server['net.ipv4.tcp_timestamps'] !== '0',
        loopback: false,
        delayMs: Number(r.sysctls.client['net.ipv4.tcp_tw_reuse_delay'] ?? 1000),
        ageMs,
      });
    expect(reusable(at - connects(r)[0]!.startMs)).toBe(ok);
    expect(reusable(at - lastEof.endMs)).toBe(ok);
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
    // Each port once fresh, once taken over: twice the range, then EADDRNOTAVAIL.
    const ports = capacity(r).max;
    expect(firstFailure(r)).toBe(2 * ports + 1);
    expect(r.counters.client.TcpExtTWRecycled).toBe(ports);
  });

  test('TIME_WAIT lasts TCP_TIMEWAIT_LEN = 60 s (no sysctl changes it)', { tags: ['slow'], timeout: 120_000 }, async ({ harness }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 1, observeMs: 63_000 } });
    expect(r).toPass();
    const [tw] = stateSpans(r.states.client, 'TIME_WAIT');
    expect(tw?.then).toBe('GONE');
    // TCP_TIMEWAIT_LEN on one wheel timer, as the watcher sees a span: both ends are samples.
    const clock = await runClock(r);
    expect(tw?.lastsMs).toBeInWindow(watchedSpanMs(timeWaitWindowMs(clock), clock));
  });

  test.concurrent('tcp_max_tw_buckets=0: the close skips TIME_WAIT (TCPTimeWaitOverflow), the port is free at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 1 }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_max_tw_buckets', value: '0' }] });
    expect(r).toPass();
    expect(r).not.toHaveVisited('client', 'TIME_WAIT');
    expect(r.counters.client.TcpExtTCPTimeWaitOverflow).toBe(1);
    expect(r.counters.client.TcpExtTW ?? 0).toBe(0);
  });

  test.concurrent('tcp_max_tw_buckets=3 under 10 ports: 12 connections all succeed, 3 TIME_WAITs, 9 overflows', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'time-wait', params: { connections: 12 }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_max_tw_buckets', value: '3' }] });
    expect(r).toPass();
    expect(connects(r).every((s) => s.ok)).toBe(true);
    expect(stateSpans(r.states.client, 'TIME_WAIT')).toHaveLength(3);
    expect(r.counters.client.TcpExtTCPTimeWaitOverflow).toBe(9);
  });
});
