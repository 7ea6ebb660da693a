/**
 * The kernel's TCP timer model: from the sysctls in force, what a client will observe and when.
 * Every number here is either read from a sysctl or cited from the kernel source; none is copied
 * from the seeds (whose CentOS 7 kernel had no linear SYN timeouts).
 */
import { fireJiffy, msToJiffies, phasesFor, sinceArmMs, slipJiffies, type KernelClock, type Phase } from './timer-wheel.js';

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
 * The RTT of the harness's veth pair, µs: measured 30–60 µs (TCP_INFO rttUs). Only its order
 * matters for the RTO (any RTT below one jiffy gives the same one) and for "at once".
 */
export const VETH_RTT_US = 50;

/**
 * How long after the kernel acted the probe can notice it: the wake-up of a socket by a timer's
 * softirq runs at the tick of its jiffy, or at the next one when softirq work was deferred to
 * ksoftirqd (one jiffy), then the probe is scheduled — as late as the machine's scheduling
 * lateness, which the run measures when it starts (`clock.lateMs`, the calibration) instead of
 * guessing. Without a calibration (a pure model call) one more jiffy is assumed.
 */
export function wakeupSlackMs(clock: KernelClock): number {
  const jiffyMs = 1000 / clock.hz;
  return jiffyMs + (clock.lateMs ?? jiffyMs);
}

/**
 * A step no timer delays — a packet and its answer on a veth (plus the ARP exchange the first
 * packet of a fresh namespace pair needs: two round trips of VETH_RTT_US), or a local failure —
 * ends within [0, two round trips + wakeupSlackMs]: "at once", in ms.
 */
export function immediateWindowMs(clock: KernelClock): [number, number] {
  return [0, (2 * VETH_RTT_US) / 1000 + wakeupSlackMs(clock)];
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
  /** Nominal times of each SYN retransmission from the first SYN, ms (timers on time). */
  retransmitAtMs: number[];
  /** When each retransmission really goes out, ms from the first SYN: the window over every phase. */
  retransmitWindowsMs: [number, number][];
  /** Nominal time connect() fails, ms. */
  timeoutMs: number;
  /** The window connect()'s duration must fall in: the timer wheel's arithmetic and the wake-up included. */
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
 * Whether `tcp_time_stamp_ms(now) - start >= limitMs` (retransmits_timed_out, tcp_timer.c) when
 * the stamp was taken `sinceMs` = [lo, hi] ago: 'yes', 'no', or 'either' (the jiffy-exact times
 * straddle the limit: both outcomes are possible and the model keeps both).
 */
export function passesLimit(sinceMs: readonly [number, number], limitMs: number): 'yes' | 'no' | 'either' {
  // The ms clock truncates both stamps: one ms either way.
  if (sinceMs[0] - 1 >= limitMs) return 'yes';
  if (sinceMs[1] + 1 < limitMs) return 'no';
  return 'either';
}

/**
 * The active opener's SYN schedule against a peer that never answers (net/ipv4/tcp_timer.c,
 * tcp_retransmit_timer + tcp_write_timeout, Linux >= 6.7):
 * - the first RTO is TCP_TIMEOUT_INIT, armed by connect();
 * - after each of the first `tcp_syn_linear_timeouts` retransmissions the RTO stays the same
 *   (tp->total_rto <= linear timeouts); after that it doubles, capped at the RTO max; each is
 *   re-armed from the timer callback, so the timer wheel rounds it the same way every time
 *   (250 jiffies → 256 at HZ=250: a SYN every 1024 ms);
 * - each time the timer fires the connection expires if it already made
 *   `syn_retries + linear_timeouts` retransmissions, or if the time since the first SYN
 *   (tp->retrans_stamp) is at least tcp_model_timeout(syn_retries, TCP_TIMEOUT_INIT).
 * Every phase of connect() within the coarsest timer granule is simulated.
 * Measured on 6.18 (HZ=250): retries 1/2/3 → 2/5/7 retransmissions, ETIMEDOUT after 3.07/7.13/19.55 s.
 */
export function predictSynTimeout(s: SynSysctls, clock: KernelClock): SynPrediction {
  const maxRetransmits = s.synRetries + s.synLinearTimeouts;
  const elapsedLimitMs = modelTimeoutMs(s.synRetries, TCP_TIMEOUT_INIT_MS, s.rtoMaxMs);
  const rtoMaxJ = msToJiffies(s.rtoMaxMs, clock.hz);
  const initJ = msToJiffies(TCP_TIMEOUT_INIT_MS, clock.hz);
  // Nominal schedule (for the `because` line): every timer on time.
  const retransmitAtMs: number[] = [];
  let nominal = 0;
  let limitedBy: SynPrediction['limitedBy'] = 'elapsed';
  for (let rto = TCP_TIMEOUT_INIT_MS, k = 0; ; k++) {
    nominal += rto;
    if (k >= maxRetransmits) {
      limitedBy = 'retransmissions';
      break;
    }
    if (nominal >= elapsedLimitMs) break;
    retransmitAtMs.push(nominal);
    if (k + 1 > s.synLinearTimeouts) rto = Math.min(rto * 2, s.rtoMaxMs);
  }
  // The delays the wheel sees, for the phases to enumerate.
  const delays: number[] = [];
  for (let rto = initJ, k = 0; k <= maxRetransmits + 1; k++) {
    delays.push(rto);
    if (k + 1 > s.synLinearTimeouts) rto = Math.min(rto * 2, rtoMaxJ);
  }
  const counts = new Set<number>();
  let lo = Infinity;
  let hi = -Infinity;
  const at: [number, number][] = [];
  const walk = (ph: Phase, now: number, k: number, rto: number, slip: number) => {
    const fire = k === 0 ? fireJiffy(now, rto, ph.lead) : fireJiffy(now + slip, rto, 1);
    const since = sinceArmMs(fire, ph.j0, clock.hz);
    const end = () => {
      counts.add(k);
      lo = Math.min(lo, since[0]);
      hi = Math.max(hi, since[1]);
    };
    if (k >= maxRetransmits) return end();
    const passed = passesLimit(since, elapsedLimitMs);
    if (passed !== 'no') end();
    if (passed === 'yes') return;
    const w = (at[k] ??= [Infinity, -Infinity]);
    w[0] = Math.min(w[0], since[0]);
    w[1] = Math.max(w[1], since[1]);
    walk(ph, fire, k + 1, k + 1 > s.synLinearTimeouts ? Math.min(rto * 2, rtoMaxJ) : rto, slip);
  };
  for (const ph of phasesFor(delays)) for (const slip of [0, slipJiffies(clock)]) walk(ph, ph.j0, 0, initJ, slip);
  const retransmits = Math.max(...counts);
  if (counts.size > 1) throw new RangeError(`SYN schedule: ${[...counts].join(' or ')} retransmissions depending on the timer phase`);
  return {
    errno: 'ETIMEDOUT',
    retransmits,
    synsSent: retransmits + 1,
    retransmitAtMs,
    retransmitWindowsMs: at.slice(0, retransmits),
    timeoutMs: nominal,
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
