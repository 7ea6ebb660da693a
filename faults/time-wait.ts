/**
 * time-wait — short connections from a narrowed ip_local_port_range pile up in TIME_WAIT until
 * connect() runs out of local ports (the seeds' "at most 500 QPS with 30k ports" incident).
 *
 * A client sees: each connection it closes first (shutdown, EOF from the server, close) stays in
 * TIME_WAIT for TCP_TIMEWAIT_LEN = 60 s holding its local port; once every port connect() may pick
 * is held, the next connect() fails at once with EADDRNOTAVAIL — no packet is sent. The server
 * (the passive closer) goes LAST_ACK → gone and keeps no TIME_WAIT. With tcp_tw_reuse=1 and
 * timestamps on both ends, connect() takes over a TIME_WAIT port older than tcp_tw_reuse_delay
 * (TcpExtTWRecycled) instead of failing.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7): connect() scans the range one port
 * parity first, then the other, over `(high - low + 1) & ~1` ports — every port of an even-sized
 * range, all but the last of an odd-sized one; tcp_tw_reuse defaults to 2 (loopback only), which
 * does nothing between two namespaces on a veth; the reuse age is tcp_tw_reuse_delay (6.13+,
 * ms, default 1000) on a ms clock, not "older than 1 s" on a seconds clock; TIME_WAIT is still a
 * fixed 60 s (no sysctl changes it). tcp_max_tw_buckets caps how many exist: a close beyond it
 * skips TIME_WAIT altogether (TcpExtTCPTimeWaitOverflow) and frees its port at once, so with
 * fewer buckets than ports connect() never runs out (0: no TIME_WAIT at all).
 */
import { z } from 'zod';
import { connectCapacity, parsePortRange, parseReservedPorts, timeWaitBuckets, timeWaitWindowMs, TW_KILL_THRESHOLD_MS, twReusable, TCP_TIMEWAIT_LEN_MS } from '../harness/model/teardown.js';
import { immediateWindowMs } from '../harness/model/tcp.js';
import { settleMs, watchedSpanMs, watchedWindowMs, watchLagMs } from '../harness/model/watch.js';
import type { KernelClock } from '../harness/model/timer-wheel.js';
import type { SidedSysctls } from '../harness/core/sysctl.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, type Expectation, type StepExpectation } from './define.js';

/** The probe has 256 socket slots (sock 0..255): one per connection. */
const MAX_CONNECTIONS = 256;

const params = z.object({
  connections: z.coerce.number().int().min(1).max(MAX_CONNECTIONS).optional().describe('connections to attempt (default: the ports connect() can use, plus one)'),
  reuseAfterMs: z.coerce.number().int().min(0).max(600_000).default(0).describe('pause before the first connection beyond the port range, ms (tcp_tw_reuse needs TIME_WAIT older than tcp_tw_reuse_delay)'),
  observeMs: z.coerce.number().int().min(0).max(600_000).default(0).describe('keep observing this long after the last connection, ms (> 62 s shows TIME_WAIT end)'),
});
type Params = z.infer<typeof params>;

type Outcome = 'ok' | 'maybe' | 'EADDRNOTAVAIL';

interface Plan {
  /** net.ipv4.tcp_max_tw_buckets of the client: how many TIME_WAIT socks may exist. */
  maxTw: number;
  /** Free ports in the range, and how many connections they give. */
  ports: number;
  certain: number;
  connections: number;
  reusable: boolean;
  /** Where the script pauses (reuseAfterMs): before the first attempt that is not certain. */
  pauseBefore: number;
  /** Per attempt: connect() succeeds, may succeed (odd-sized range), or fails. */
  outcomes: Outcome[];
}

function planConnections(p: Params, sysctls: SidedSysctls): Plan {
  const c = sysctls.client;
  const cap = connectCapacity(parsePortRange(c['net.ipv4.ip_local_port_range'] ?? '32768 60999'), parseReservedPorts(c['net.ipv4.ip_local_reserved_ports']));
  const connections = p.connections ?? Math.min(cap.max + 1, MAX_CONNECTIONS);
  const reusable = twReusable({
    reuse: Number(c['net.ipv4.tcp_tw_reuse'] ?? 2),
    timestamps: Number(c['net.ipv4.tcp_timestamps'] ?? 1) !== 0 && Number(sysctls.server['net.ipv4.tcp_timestamps'] ?? 1) !== 0,
    loopback: false,
    delayMs: Number(c['net.ipv4.tcp_tw_reuse_delay'] ?? 1000),
    // The pause starts after the last close, which follows the EOF that put that socket in TIME_WAIT.
    ageMs: p.reuseAfterMs,
  });
  // After the pause each connect() can take over one TIME_WAIT port that is old enough: one per port.
  const extra = reusable ? cap.ports : 0;
  // Fewer TIME_WAIT buckets than ports: a close beyond them frees its port at once, so connect()
  // always finds one (tcp_time_wait → TCPTimeWaitOverflow, timeWaitBuckets).
  const maxTw = Number(c['net.ipv4.tcp_max_tw_buckets'] ?? Number.MAX_SAFE_INTEGER);
  const unlimited = maxTw < cap.certain;
  const outcomes = Array.from({ length: connections }, (_, i): Outcome =>
    unlimited || i < cap.certain + extra ? 'ok' : i < cap.max + extra ? 'maybe' : 'EADDRNOTAVAIL',
  );
  return { maxTw, ports: cap.ports, certain: cap.certain, connections, reusable, pauseBefore: cap.certain, outcomes };
}

/** Whether the observation lasts until the watcher must have seen the first TIME_WAIT end. */
function observesEnd(p: Params, clock: KernelClock, watchIntervalMs: number): boolean {
  return p.observeMs >= watchedWindowMs(timeWaitWindowMs(clock), clock, watchIntervalMs)[1];
}

export const timeWait = defineFault({
  name: 'time-wait',
  summary: 'many short connections from a narrowed ip_local_port_range (client sysctl); the client closes first',
  observes: 'TIME_WAIT piles up on the client (60 s each); connect() then fails at once with EADDRNOTAVAIL, unless tcp_tw_reuse=1 takes over an old one',
  shapedBy: {
    client: ['net.ipv4.ip_local_port_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_tw_reuse', 'net.ipv4.tcp_tw_reuse_delay', 'net.ipv4.tcp_timestamps', 'net.ipv4.tcp_max_tw_buckets'],
    server: ['net.ipv4.tcp_timestamps'],
  },
  params,
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  fastSysctls: () => ({ client: { 'net.ipv4.ip_local_port_range': '40000 40009' } }),
  plan: () => ({}),
  expect: ({ params: p, sysctls, clock, watchIntervalMs }): Expectation => {
    const plan = planConnections(p, sysctls);
    const steps: Record<string, StepExpectation> = {};
    plan.outcomes.forEach((o, i) => {
      if (o === 'ok') steps[`connect-${i + 1}`] = { ok: true, errno: null };
      // No packet: connect() fails in the kernel's port scan, at once.
      if (o === 'EADDRNOTAVAIL') steps[`connect-${i + 1}`] = { ok: false, errno: 'EADDRNOTAVAIL', windowMs: immediateWindowMs(clock) };
      if (o === 'ok') steps[`eof-${i + 1}`] = { ok: true, eof: true, bytes: 0 };
    });
    const count = (o: Outcome) => plan.outcomes.filter((x) => x === o).length;
    const openedMin = count('ok');
    const openedMax = openedMin + count('maybe');
    const between = (min: number, max: number) => (min === max ? min : { min, max });
    const opened = between(openedMin, openedMax);
    // Connections beyond the free ports took over a TIME_WAIT port.
    const recycledMax = plan.reusable ? Math.max(0, openedMax - plan.certain) : 0;
    const recycled = between(Math.min(recycledMax, Math.max(0, openedMin - plan.ports)), recycledMax);
    const anyRecycled = recycledMax > 0;
    const twSeen = watchedSpanMs(timeWaitWindowMs(clock), clock, watchIntervalMs);
    const twMin = timeWaitBuckets(openedMin, plan.maxTw);
    const twMax = timeWaitBuckets(openedMax, plan.maxTw);
    const distinct = between(Math.min(openedMin, plan.ports, plan.maxTw), Math.min(openedMax, plan.ports, plan.maxTw));
    const twSpan =
      anyRecycled
        ? // A port taken over leaves TIME_WAIT for SYN_SENT: its first stay does not end in GONE.
          { side: 'client' as const, state: 'TIME_WAIT', sockets: distinct }
        : observesEnd(p, clock, watchIntervalMs)
          ? { side: 'client' as const, state: 'TIME_WAIT', sockets: distinct, then: 'GONE', lastsMs: twSeen }
          : { side: 'client' as const, state: 'TIME_WAIT', sockets: distinct, then: 'held' };
    const noTw = twMax.timeWait === 0;
    return {
      steps,
      // The server's LAST_ACK lasts one RTT (µs on a veth): too short for the watcher; its counters show it instead.
      states: noTw ? {} : { client: ['TIME_WAIT'] },
      statesAbsent: noTw ? { client: ['TIME_WAIT'], server: ['TIME_WAIT'] } : { server: ['TIME_WAIT'] },
      spans: noTw ? [] : [twSpan],
      counters: {
        client: {
          TcpActiveOpens: opened,
          // Counted when each TIME_WAIT is scheduled: 60 s > 4 s, so "TW", not "TWKilled".
          [TCP_TIMEWAIT_LEN_MS > TW_KILL_THRESHOLD_MS ? 'TcpExtTW' : 'TcpExtTWKilled']: between(twMin.timeWait, twMax.timeWait),
          TcpExtTCPTimeWaitOverflow: between(twMin.overflow, twMax.overflow),
          TcpExtTWRecycled: recycled,
        },
        server: { TcpPassiveOpens: opened, TcpExtTW: 0, TcpExtTWKilled: 0 },
      },
      because: [
        `ip_local_port_range ${sysctls.client['net.ipv4.ip_local_port_range']?.replace(/\s+/, '-')}: ${plan.ports} free ports ` +
          `(${plan.certain === plan.ports ? 'an even-sized range: all of them' : 'an odd-sized range: the last one only by chance'}); ` +
          `${plan.connections} attempts → ${openedMin === openedMax ? openedMin : `${openedMin}..${openedMax}`} connect, the rest EADDRNOTAVAIL; TIME_WAIT ${TCP_TIMEWAIT_LEN_MS / 1000} s each`,
        ...(twMax.overflow > 0
          ? [`tcp_max_tw_buckets ${plan.maxTw}: ${twMax.timeWait ? `only the first ${twMax.timeWait} closes get a TIME_WAIT, the others are` : 'no close gets a TIME_WAIT, each is'} destroyed at once (inet_twsk_alloc refuses; TCPTimeWaitOverflow) and frees its port, so connect() never runs out`]
          : []),
        `tcp_tw_reuse ${sysctls.client['net.ipv4.tcp_tw_reuse']}, delay ${sysctls.client['net.ipv4.tcp_tw_reuse_delay'] ?? 1000} ms, pause ${p.reuseAfterMs} ms → ` +
          (plan.reusable ? `reuse: up to ${plan.ports} TIME_WAIT taken over` : 'no reuse (assumes the burst of connections is shorter than the delay)'),
      ],
    };
  },
  script: ({ params: p, sysctls, clock, watchIntervalMs }) => {
    const plan = planConnections(p, sysctls);
    const steps: ClientStep[] = [];
    plan.outcomes.forEach((o, i) => {
      if (i === plan.pauseBefore && p.reuseAfterMs > 0) steps.push({ op: 'sleep', ms: p.reuseAfterMs, label: 'reuse-pause' });
      const sock = i;
      steps.push({ op: 'connect', sock, label: `connect-${i + 1}`, timeoutMs: 5000 });
      if (o === 'EADDRNOTAVAIL') return;
      // The client closes first; the EOF of the server's FIN means this socket is now in TIME_WAIT.
      steps.push({ op: 'shutdown', sock, how: 'wr' }, { op: 'read', sock, label: `eof-${i + 1}`, timeoutMs: 5000 }, { op: 'close', sock });
    });
    // At least until the watchers sampled the last TIME_WAIT.
    steps.push({ op: 'sleep', ms: Math.max(p.observeMs, settleMs(watchIntervalMs) + Math.ceil(watchLagMs(clock, watchIntervalMs))) });
    return steps;
  },
});
