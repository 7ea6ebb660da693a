/**
 * The kernel's TCP timer model: from the sysctls in force, what a client will observe and when.
 * Every number here is either read from a sysctl or cited from the kernel source; none is copied
 * from the seeds (whose CentOS 7 kernel had no linear SYN timeouts).
 */
import { chainWindowMs, type KernelClock } from './timer-wheel.js';

/** include/net/tcp.h: TCP_TIMEOUT_INIT = 1*HZ (RFC 6298 2.1 initial RTO). */
export const TCP_TIMEOUT_INIT_MS = 1000;
/** include/net/tcp.h: TCP_RTO_MAX = 120*HZ; the per-namespace `tcp_rto_max_ms` overrides it where it exists. */
export const TCP_RTO_MAX_MS = 120_000;
/**
 * include/net/tcp.h: TCP_RTO_MIN = HZ/5, the least RTO of an established connection and the
 * default of `tcp_rto_min_us` (6.11+). tcp_model_timeout() bases the tcp_retries2 and
 * tcp_orphan_retries boundaries on this constant, not on the sysctl (net/ipv4/tcp_timer.c
 * retransmits_timed_out).
 */
export const TCP_RTO_MIN_MS = 200;

/**
 * How long the probe may take to notice a timer's effect once it fired: the wake-up from
 * epoll_wait plus one scheduler tick, bounded by two jiffies. This is the only allowance that
 * is not a timer's own; `npm run bench` measures the probe's real wake-up overhead against it.
 */
export function wakeupSlackMs(clock: KernelClock): number {
  return (2 * 1000) / clock.hz;
}

/**
 * A step no timer delays — one packet exchange on a veth (µs), or a local failure — ends within
 * the probe's wake-up: [0, wakeupSlackMs].
 */
export function immediateWindowMs(clock: KernelClock): [number, number] {
  return [0, wakeupSlackMs(clock)];
}

/** The client sysctls that shape the SYN schedule (read back for every scenario that connects). */
export const SYN_SYSCTLS = ['net.ipv4.tcp_syn_retries', 'net.ipv4.tcp_syn_linear_timeouts', 'net.ipv4.tcp_rto_max_ms'] as const;

/** The client sysctls that shape data retransmission (read back by every scenario that loses data). */
export const DATA_SYSCTLS = ['net.ipv4.tcp_retries2', 'net.ipv4.tcp_rto_min_us', 'net.ipv4.tcp_rto_max_ms', 'net.ipv4.tcp_early_retrans', 'net.ipv4.tcp_sack'] as const;

export interface SynSysctls {
  /** net.ipv4.tcp_syn_retries, or the socket's TCP_SYNCNT when set. */
  synRetries: number;
  /** net.ipv4.tcp_syn_linear_timeouts (absent on kernels before 6.7: 0). */
  synLinearTimeouts: number;
  /** net.ipv4.tcp_rto_max_ms (absent on older kernels: 120000). */
  rtoMaxMs: number;
}

export interface SynPrediction {
  /** connect() fails with this. */
  errno: 'ETIMEDOUT';
  /** SYN retransmissions before giving up (TcpExtTCPSynRetrans delta). */
  retransmits: number;
  /** SYNs on the wire: the first one plus the retransmissions. */
  synsSent: number;
  /** Nominal times of each SYN retransmission from the first SYN, ms. */
  retransmitAtMs: number[];
  /** Nominal time connect() fails, ms. */
  timeoutMs: number;
  /** The window connect()'s duration must fall in: timer-wheel lateness and wake-up included. */
  windowMs: [number, number];
  /** Which limit ended it. */
  limitedBy: 'retransmissions' | 'elapsed';
}

/**
 * tcp_model_timeout() (net/ipv4/tcp_timer.c): the time `boundary` exponentially backed-off
 * retransmissions would take from `rtoBase`, with linear growth past `rtoMax`.
 */
export function modelTimeoutMs(boundary: number, rtoBaseMs: number, rtoMaxMs: number): number {
  const thresh = Math.floor(Math.log2(rtoMaxMs / rtoBaseMs));
  if (boundary <= thresh) return ((2 << boundary) - 1) * rtoBaseMs;
  return ((2 << thresh) - 1) * rtoBaseMs + (boundary - thresh) * rtoMaxMs;
}

/**
 * The active opener's SYN schedule against a peer that never answers (net/ipv4/tcp_timer.c,
 * tcp_retransmit_timer + tcp_write_timeout, Linux >= 6.7):
 * - the first RTO is TCP_TIMEOUT_INIT;
 * - after each of the first `tcp_syn_linear_timeouts` retransmissions the RTO stays the same
 *   (tp->total_rto <= linear timeouts); after that it doubles, capped at the RTO max;
 * - each time the timer fires the connection expires if it already made
 *   `syn_retries + linear_timeouts` retransmissions, or if the time since the first SYN is at
 *   least tcp_model_timeout(syn_retries, TCP_TIMEOUT_INIT) — whichever comes first.
 * Measured on 6.18 (HZ=250): retries 1/2/3 → 2/5/7 retransmissions, ETIMEDOUT after 3.07/7.13/19.55 s.
 */
export function predictSynTimeout(s: SynSysctls, clock: KernelClock): SynPrediction {
  const retryUntil = s.synRetries;
  const maxRetransmits = retryUntil + s.synLinearTimeouts;
  const elapsedLimitMs = modelTimeoutMs(retryUntil, TCP_TIMEOUT_INIT_MS, s.rtoMaxMs);
  const intervals: number[] = [];
  const retransmitAtMs: number[] = [];
  let rto = TCP_TIMEOUT_INIT_MS;
  let t = 0;
  let retransmits = 0;
  let limitedBy: SynPrediction['limitedBy'];
  for (;;) {
    t += rto;
    intervals.push(rto);
    if (retransmits >= maxRetransmits) {
      limitedBy = 'retransmissions';
      break;
    }
    // Timers never fire early, so at this firing the elapsed time is strictly above t.
    if (t >= elapsedLimitMs) {
      limitedBy = 'elapsed';
      break;
    }
    retransmits++;
    retransmitAtMs.push(t);
    if (retransmits > s.synLinearTimeouts) rto = Math.min(rto * 2, s.rtoMaxMs);
  }
  const [lo, hi] = chainWindowMs(intervals, clock);
  return {
    errno: 'ETIMEDOUT',
    retransmits,
    synsSent: retransmits + 1,
    retransmitAtMs,
    timeoutMs: t,
    windowMs: [lo, hi + wakeupSlackMs(clock)],
    limitedBy,
  };
}

/** Reads the SYN-shaping sysctls from a map of values in force (missing keys: the pre-6.7 behaviour). */
export function synSysctlsFrom(values: Record<string, string | undefined>, syncnt?: number): SynSysctls {
  const num = (k: string, dflt: number) => (values[k] === undefined ? dflt : Number(values[k]));
  return {
    synRetries: syncnt ?? num('net.ipv4.tcp_syn_retries', 6),
    synLinearTimeouts: num('net.ipv4.tcp_syn_linear_timeouts', 0),
    rtoMaxMs: num('net.ipv4.tcp_rto_max_ms', TCP_RTO_MAX_MS),
  };
}
