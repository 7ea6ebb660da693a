/**
 * The kernel's model of an established connection whose peer went silent: data retransmission
 * (tcp_retries2, TCP_USER_TIMEOUT), keepalive, and SO_LINGER on close. Every number is read from a
 * sysctl or a socket option, or cited from the kernel source (net/ipv4/tcp_timer.c,
 * net/ipv4/tcp_output.c, net/ipv4/tcp.c); each schedule is simulated twice — every timer on time,
 * and every timer as late as its timer-wheel level allows — and the window spans both.
 * Measured on 6.18, HZ=250, veth: see data.test.ts.
 */
import { modelTimeoutMs, passesLimit, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, VETH_RTT_US, wakeupSlackMs } from './tcp.js';
import { chainWindowMs, fireJiffy, jiffiesToMs, msToJiffies, phasesFor, sinceArmMs, slipJiffies, timerSlackMs, type KernelClock, type Phase } from './timer-wheel.js';

export interface DataSysctls {
  /** net.ipv4.tcp_retries2. */
  retries2: number;
  /** net.ipv4.tcp_rto_min_us in ms (the floor of the socket's RTO; 200 when absent). */
  rtoMinMs: number;
  /** net.ipv4.tcp_rto_max_ms (120000 when absent). */
  rtoMaxMs: number;
  /**
   * A tail loss probe fires before the first RTO: net.ipv4.tcp_early_retrans is 3 or 4 (the
   * default 3) and SACK was negotiated (net.ipv4.tcp_sack on both sides).
   */
  tlp: boolean;
}

export function dataSysctlsFrom(client: Record<string, string | undefined>, server: Record<string, string | undefined> = {}): DataSysctls {
  const num = (v: Record<string, string | undefined>, k: string, dflt: number) => (v[k] === undefined ? dflt : Number(v[k]));
  const er = num(client, 'net.ipv4.tcp_early_retrans', 3);
  return {
    retries2: num(client, 'net.ipv4.tcp_retries2', 15),
    rtoMinMs: num(client, 'net.ipv4.tcp_rto_min_us', TCP_RTO_MIN_MS * 1000) / 1000,
    rtoMaxMs: num(client, 'net.ipv4.tcp_rto_max_ms', TCP_RTO_MAX_MS),
    tlp: (er === 3 || er === 4) && num(client, 'net.ipv4.tcp_sack', 1) === 1 && num(server, 'net.ipv4.tcp_sack', 1) === 1,
  };
}

/**
 * The RTO of a connection whose RTT is far below a jiffy (a veth: tens of µs), in jiffies.
 * net/ipv4/tcp_input.c tcp_rtt_estimator keeps rttvar >= tcp_rto_min, and __tcp_set_rto is
 * usecs_to_jiffies(srtt + rttvar): rto_min plus a few µs, rounded *up* — one jiffy more than
 * rto_min when rto_min is a whole number of jiffies (6.18, HZ=250: 51 jiffies = 204 ms, the
 * `rtoUs: 204000` TCP_INFO shows).
 */
export function initialRtoJiffies(rtoMinMs: number, clock: KernelClock): number {
  return Math.floor((rtoMinMs * clock.hz) / 1000) + 1;
}

export type Lateness = 'none' | 'max';
/**
 * The tail loss probe's timeout for one segment in flight (net/ipv4/tcp_output.c
 * tcp_schedule_loss_probe): usecs_to_jiffies(2·srtt) + TCP_RTO_MIN (packets_out == 1), or
 * TCP_TIMEOUT_MIN with more in flight, but never later than the RTO.
 */
export function lossProbeJiffies(r0: number, packetsOut: number, clock: KernelClock): number {
  const twoRtt = msToJiffies((2 * VETH_RTT_US) / 1000, clock.hz);
  const extra = packetsOut === 1 ? msToJiffies(TCP_RTO_MIN_MS, clock.hz) : TCP_TIMEOUT_MIN_J;
  return Math.min(twoRtt + extra, r0);
}

/** include/net/tcp.h: TCP_TIMEOUT_MIN = 2 jiffies. */
const TCP_TIMEOUT_MIN_J = 2;

export interface DataTimeoutOptions {
  /**
   * Every transmission is answered by an ICMP net- or host-unreachable: tcp_v4_err calls
   * tcp_ld_RTO_revert (RFC 6069), which takes back one step of the backoff the retransmission it
   * answers added, so while every ICMP gets through the RTO stays at its initial value.
   */
  revertBackoff?: boolean;
  /**
   * Every transmission is answered by an ICMP (revertBackoff says whether it undoes the backoff),
   * and the target limits them: net.ipv4.icmp_ratelimit in ms (0: no limit). net/ipv4/icmp.c
   * icmpv4_xrlim_allow → inet_peer_xrlim_allow (net/ipv4/inetpeer.c): a token bucket per
   * destination, refilled one token per jiffy up to XRLIM_BURST_FACTOR (6) × the limit; an ICMP
   * costs `limit` tokens. The run's target namespace is new, and its first peer entry starts
   * with rate_last = jiffies - 60 s: a full bucket (6 ICMPs at once), then one per `limit`.
   * An ICMP that the bucket swallows undoes nothing: the RTO doubles from there.
   */
  icmpRatelimitMs?: number;
}

/**
 * Real time a timer `j` jiffies away takes to fire. `fromProcess`: armed from a syscall, in the
 * middle of a jiffy, so it can fire up to one jiffy before `j` whole jiffies have passed; timers
 * re-armed from a timer callback start on a tick.
 */
export function timerMs(j: number, late: Lateness, clock: KernelClock, fromProcess: boolean, slackOfJ = j): number {
  const ms = jiffiesToMs(j, clock.hz);
  if (late === 'max') return ms + timerSlackMs(jiffiesToMs(slackOfJ, clock.hz), clock);
  return fromProcess ? ms - jiffiesToMs(1, clock.hz) : ms;
}

/** net/ipv4/inetpeer.c: XRLIM_BURST_FACTOR. */
export const XRLIM_BURST_FACTOR = 6;

/** The target's per-destination ICMP token bucket (inet_peer_xrlim_allow), in jiffies. */
export class IcmpBucket {
  private tokens: number;
  private last: number | undefined;
  constructor(private readonly limitJ: number) {
    this.tokens = 0;
  }
  /** Whether an ICMP sent at jiffy `now` gets out. */
  allow(now: number): boolean {
    if (this.limitJ <= 0) return true;
    // A new peer: rate_last = jiffies - 60*HZ, so the first refill fills the bucket.
    this.tokens += this.last === undefined ? Number.MAX_SAFE_INTEGER / 2 : now - this.last;
    this.last = now;
    this.tokens = Math.min(this.tokens, XRLIM_BURST_FACTOR * this.limitJ);
    if (this.tokens >= this.limitJ) {
      this.tokens -= this.limitJ;
      return true;
    }
    return false;
  }
}

/** One schedule (one phase of the timer wheel). */
export interface DataTimeoutRun {
  /** Time from the write until the socket errors out, ms (latest real time of that tick). */
  deadMs: number;
  /** RTO retransmissions (icsk_retransmits at the end; TCP_INFO totalRetrans counts the TLP too). */
  rtoRetransmits: number;
  /** When each RTO retransmission went out, ms from the write. */
  retransmitAtMs: number[];
  /** ICMPs the target's rate limit let out (when every segment is answered by one). */
  icmps: number;
}

export interface DataTimeoutPrediction {
  errno: 'ETIMEDOUT';
  /** The RTO the socket starts with, ms (TCP_INFO rtoUs / 1000). */
  rtoMs: number;
  /** 1 if a tail loss probe goes out first (TcpExtTCPLossProbes), else 0. */
  lossProbes: number;
  /** RTO retransmissions, over every phase of the timer wheel (equal ends: decided). */
  rtoRetransmits: [number, number];
  /** TcpRetransSegs and TCP_INFO totalRetrans: RTO retransmissions plus the loss probe. */
  retransSegs: [number, number];
  /** TcpExtTCPTimeouts: every RTO firing, the last one (which gives up) included. */
  timeouts: [number, number];
  /** Segments the peer's DROP rule sees: the original, the probe, the retransmissions. */
  segments: [number, number];
  /** ICMPs that get out of the target (every segment answered, minus what the rate limit swallows). */
  icmps: [number, number];
  /** The limit on the time since the first RTO retransmission (tp->retrans_stamp), ms. */
  limitMs: number;
  limitedBy: 'tcp_retries2' | 'TCP_USER_TIMEOUT';
  /** The earliest and the latest schedule over every phase. */
  onTime: DataTimeoutRun;
  late: DataTimeoutRun;
  /** A read/wait started right after the write fails within this window, ms. */
  windowMs: [number, number];
}

/**
 * One segment of unacknowledged data to a peer that answers nothing (net/ipv4/tcp_timer.c and
 * tcp_output.c, 6.18), simulated jiffy by jiffy through the timer wheel (timer-wheel.ts) for
 * every phase of the write:
 * 1. tcp_schedule_loss_probe arms the probe from the write: min(2·srtt + TCP_RTO_MIN, RTO) = the
 *    RTO on a veth; the probe retransmits the segment and re-arms the RTO timer a full RTO later
 *    (tcp_rearm_rto: the segment was just re-sent);
 * 2. tcp_retransmit_timer: each firing counts TcpExtTCPTimeouts, then tcp_write_timeout decides;
 *    the first firing never expires (icsk_retransmits == 0) and its retransmission sets
 *    tp->retrans_stamp — the loss probe does not — so the clock starts at the first *RTO*
 *    retransmission, not at the write;
 * 3. retransmits_timed_out: expired when now - retrans_stamp >= TCP_USER_TIMEOUT if set, else
 *    tcp_model_timeout(tcp_retries2, TCP_RTO_MIN) — a time, not a count. Both stamps are taken in
 *    timer callbacks, on ticks, so the comparison is jiffy arithmetic: with tcp_retries2=4 the 5th
 *    firing after the stamp is 30 RTOs (1530 jiffies) plus at least 21 jiffies of wheel rounding
 *    — past the 1550-jiffy limit — so it always expires there (4 RTO retransmissions), never at
 *    the 6th;
 * 4. the RTO doubles up to the RTO max; with TCP_USER_TIMEOUT, tcp_clamp_rto_to_user_timeout
 *    re-arms the timer for no more than what is left of the user timeout;
 * 5. with an ICMP answering every segment (`opts`), tcp_ld_RTO_revert undoes the backoff of each
 *    retransmission it answers and re-arms the timer for rto - usecs_to_jiffies(µs since the
 *    segment) — one jiffy less, which the level-0 rounding gives back: a retransmission every
 *    RTO (measured 204–206 ms apart).
 * The socket then gets sk_err = sk_err_soft ?: ETIMEDOUT (tcp_write_err).
 */
export function predictDataTimeout(s: DataSysctls, clock: KernelClock, userTimeoutMs = 0, opts: DataTimeoutOptions = {}): DataTimeoutPrediction {
  const hz = clock.hz;
  const jiffyMs = 1000 / hz;
  const r0 = initialRtoJiffies(s.rtoMinMs, clock);
  const rtoMaxJ = msToJiffies(s.rtoMaxMs, hz);
  const limitMs = userTimeoutMs > 0 ? userTimeoutMs : modelTimeoutMs(s.retries2, TCP_RTO_MIN_MS, s.rtoMaxMs);
  const pto = lossProbeJiffies(r0, 1, clock);
  const answered = opts.revertBackoff !== undefined || opts.icmpRatelimitMs !== undefined;
  const runs: DataTimeoutRun[] = [];
  const simulate = (ph: Phase, forceExpire: Set<number>, slip: number): void => {
    const bucket = new IcmpBucket(msToJiffies(opts.icmpRatelimitMs ?? 0, hz));
    let icmps = 0;
    const icmpAt = (t: number) => answered && bucket.allow(t) && ++icmps > 0;
    icmpAt(ph.j0); // the original transmission's ICMP: a soft error, nothing to revert yet
    let now = ph.j0;
    let lead: 0 | 1 = ph.lead;
    let fromSoftirq = false;
    if (s.tlp) {
      now = fireJiffy(now, pto, lead);
      lead = 1;
      fromSoftirq = true;
      icmpAt(now); // icsk_retransmits is still 0: no revert
    }
    // Re-armed from softirq context: up to `slip` jiffies after the tick (slipJiffies).
    const arm = () => (fromSoftirq ? now + slip : now);
    let backoff = 0;
    let next = r0; // the timer the probe (or the write) armed
    const retransmitAt: number[] = [];
    let stamp = 0;
    for (let firing = 0; ; firing++) {
      now = fireJiffy(arm(), next, lead);
      lead = 1;
      fromSoftirq = true;
      if (firing > 0) {
        const since = (now - stamp) * jiffyMs;
        const verdict = passesLimit([since, since], limitMs);
        if (verdict === 'yes' || (verdict === 'either' && forceExpire.has(firing))) {
          runs.push({ deadMs: sinceArmMs(now, ph.j0, hz)[1], rtoRetransmits: retransmitAt.length, retransmitAtMs: retransmitAt, icmps });
          return;
        }
        if (verdict === 'either') simulate(ph, new Set([...forceExpire, firing]), slip);
      } else stamp = now;
      retransmitAt.push(sinceArmMs(now, ph.j0, hz)[1]);
      backoff++;
      let rto = Math.min(r0 * 2 ** backoff, rtoMaxJ);
      if (opts.revertBackoff && icmpAt(now)) {
        // tcp_ld_RTO_revert: one step back, re-armed for what is left of the reverted RTO.
        backoff--;
        rto = Math.min(r0 * 2 ** backoff, rtoMaxJ);
        next = Math.max(1, rto - 1);
      } else {
        if (answered && !opts.revertBackoff) icmpAt(now);
        next = rto;
      }
      if (userTimeoutMs > 0) {
        // tcp_clamp_rto_to_user_timeout: at most what is left of the user timeout (at least 1).
        const remaining = userTimeoutMs - (now - stamp) * jiffyMs;
        next = remaining <= 0 ? 1 : Math.min(next, msToJiffies(remaining, hz));
      }
    }
  };
  for (const ph of phasesFor([pto, ...Array.from({ length: 16 }, (_, k) => Math.min(r0 << k, rtoMaxJ))])) {
    for (const slip of [0, slipJiffies(clock)]) simulate(ph, new Set(), slip);
  }
  const range = (f: (r: DataTimeoutRun) => number): [number, number] => [Math.min(...runs.map(f)), Math.max(...runs.map(f))];
  const rtoRetransmits = range((r) => r.rtoRetransmits);
  const dead = range((r) => r.deadMs);
  const probes = s.tlp ? 1 : 0;
  const onTime = runs.reduce((a, b) => (b.deadMs < a.deadMs ? b : a));
  const late = runs.reduce((a, b) => (b.deadMs > a.deadMs ? b : a));
  const icmps = range((r) => r.icmps);
  return {
    errno: 'ETIMEDOUT',
    rtoMs: jiffiesToMs(r0, hz),
    lossProbes: probes,
    rtoRetransmits,
    retransSegs: [rtoRetransmits[0] + probes, rtoRetransmits[1] + probes],
    timeouts: [rtoRetransmits[0] + 1, rtoRetransmits[1] + 1],
    segments: [1 + probes + rtoRetransmits[0], 1 + probes + rtoRetransmits[1]],
    icmps,
    limitMs,
    limitedBy: userTimeoutMs > 0 ? 'TCP_USER_TIMEOUT' : 'tcp_retries2',
    onTime,
    late,
    // A whole jiffy below the earliest tick: the write happened somewhere inside its jiffy.
    windowMs: [dead[0] - jiffyMs, dead[1] + wakeupSlackMs(clock)],
  };
}

export interface KeepaliveOptions {
  /** TCP_KEEPIDLE, s. */
  idleS: number;
  /** TCP_KEEPINTVL, s. */
  intvlS: number;
  /** TCP_KEEPCNT. */
  cnt: number;
}

export interface KeepalivePrediction {
  errno: 'ETIMEDOUT';
  /** Keepalive probes sent (TcpExtTCPKeepAlive). */
  probes: number;
  /** Segments the peer's DROP rule sees: the probes and the RST sent when giving up. */
  segments: number;
  nominalMs: number;
  /** From SO_KEEPALIVE being switched on (on an established, idle socket). */
  windowMs: [number, number];
}

/**
 * tcp_keepalive_timer (net/ipv4/tcp_timer.c): switching SO_KEEPALIVE on for an established
 * socket arms the keepalive timer `idle` from now (tcp_set_keepalive). At each firing, with the
 * connection idle at least `idle`: if `cnt` probes are already out, send a RST
 * (tcp_send_active_reset) and fail the socket with ETIMEDOUT (tcp_write_err); else send a probe
 * (tcp_write_wakeup, TcpExtTCPKeepAlive) and re-arm for `intvl`. So: idle + cnt × intvl, a chain of
 * cnt + 1 wheel timers (the keepalive timer is sk_timer, a timer_list).
 */
export function predictKeepalive(k: KeepaliveOptions, clock: KernelClock): KeepalivePrediction {
  const chain = [k.idleS * 1000, ...Array.from({ length: k.cnt }, () => k.intvlS * 1000)];
  const [lo, hi] = chainWindowMs(chain, clock);
  return {
    errno: 'ETIMEDOUT',
    probes: k.cnt,
    segments: k.cnt + 1,
    nominalMs: chain.reduce((a, b) => a + b, 0),
    windowMs: [lo, hi + wakeupSlackMs(clock)],
  };
}

/**
 * The slack the kernel gives a poll/epoll timeout's hrtimer, ms: fs/select.c
 * select_estimate_accuracy() → __estimate_accuracy(): 0.1 % of the time left (0.5 % for a task
 * with nice > 0), at least the task's timer_slack_ns (50 µs by default), at most MAX_SLACK
 * (100 ms); 0 for a realtime task. ep_poll() passes it to schedule_hrtimeout_range(), which may
 * wake the waiter anywhere in [timeout, timeout + slack] to batch wake-ups: a 5.5 s epoll wait
 * may end 5.5 ms late on a quiet machine (measured: 5505.5 ms).
 */
export function pollSlackMs(timeoutMs: number, nice = 0): number {
  const divfactor = nice > 0 ? 200 : 1000;
  return Math.min(100, Math.max(0.05, timeoutMs / divfactor));
}

/**
 * A wait that nothing ends: it times out after `timeoutMs` — epoll_pwait2's own timer, an
 * hrtimer with the poll slack (pollSlackMs; the probe runs at nice 0), then the wake-up.
 */
export function predictIdleWait(timeoutMs: number, clock: KernelClock): [number, number] {
  return [timeoutMs, timeoutMs + pollSlackMs(timeoutMs) + wakeupSlackMs(clock)];
}

/** ICMP destination-unreachable codes iptables' REJECT sends (include/uapi/linux/icmp.h). */
export const ICMP_UNREACH_CODE = {
  'icmp-net-unreachable': 0, // ICMP_NET_UNREACH
  'icmp-host-unreachable': 1, // ICMP_HOST_UNREACH
  'icmp-proto-unreachable': 2, // ICMP_PROT_UNREACH
  'icmp-port-unreachable': 3, // ICMP_PORT_UNREACH
  'icmp-net-prohibited': 9, // ICMP_NET_ANO
  'icmp-host-prohibited': 10, // ICMP_HOST_ANO
  'icmp-admin-prohibited': 13, // ICMP_PKT_FILTERED
} as const;

export type IcmpReject = keyof typeof ICMP_UNREACH_CODE;

/** net/ipv4/icmp.c icmp_err_convert[]: the errno each unreachable code becomes (codes 0..15). */
const ICMP_ERR_CONVERT: readonly string[] = [
  'ENETUNREACH', 'EHOSTUNREACH', 'ENOPROTOOPT', 'ECONNREFUSED', 'EMSGSIZE', 'EOPNOTSUPP', 'ENETUNREACH', 'EHOSTDOWN',
  'ENONET', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTUNREACH', 'EHOSTUNREACH', 'EHOSTUNREACH', 'EHOSTUNREACH',
];

export interface IcmpEffect {
  code: number;
  errno: string;
  /** tcp_v4_err calls tcp_ld_RTO_revert (RFC 6069) only for ICMP_NET_UNREACH and ICMP_HOST_UNREACH. */
  revertsBackoff: boolean;
}

/**
 * What an ICMP unreachable does to a TCP socket (net/ipv4/tcp_ipv4.c tcp_v4_err): in SYN_SENT
 * any code is a hard error — sk_err = icmp_err_convert[code], tcp_done — so connect() fails at
 * once; on an established socket it is only remembered as sk_err_soft (without IP_RECVERR) and the
 * connection keeps retransmitting until it times out, when tcp_write_err reports sk_err_soft
 * instead of ETIMEDOUT.
 */
export function icmpEffect(reject: IcmpReject): IcmpEffect {
  const code = ICMP_UNREACH_CODE[reject];
  return { code, errno: ICMP_ERR_CONVERT[code]!, revertsBackoff: code === 0 || code === 1 };
}

export interface LingerCloseOptions {
  /** SO_LINGER l_linger, s (l_onoff = 1). sock_setsockopt: sk_lingertime = l_linger * HZ jiffies. */
  lingerS: number;
  /** net.ipv4.tcp_orphan_retries of the closer (0: 8 while the RTO is below the max). */
  orphanRetries: number;
  /** net.ipv4.tcp_retrans_collapse (default 1): RTO retransmissions of the data carry the FIN too. */
  retransCollapse?: boolean;
}

/** One schedule of a lingering close: when close() returns, when the orphan dies, what went out. */
export interface LingerCloseRun {
  /** close() returns, ms from the write (the close starts µs after it). */
  closeReturnMs: number;
  /** The socket is destroyed (FIN_WAIT1 → gone), ms from the write. */
  goneMs: number;
  /** RTO retransmissions of the data before the socket gave up. */
  rtoRetransmits: number;
  retransmitAtMs: number[];
  /** What ended the close(): its linger time, or the connection timing out under it. */
  closeEndedBy: 'linger' | 'tcp_retries2';
}

export interface LingerClosePrediction {
  /** close() returns 0 (net/ipv4/af_inet.c inet_release: tcp_close is void; nothing reports the timeout). */
  closeErrno: null;
  /** close()'s duration, from its start, ms. */
  closeWindowMs: [number, number];
  closeEndedBy: 'linger' | 'tcp_retries2' | 'either';
  /** The orphan is gone (FIN_WAIT1 left for good), ms from the write; kernel time only (add the watcher's lag). */
  goneWindowMs: [number, number];
  /** 1 if a tail loss probe goes out (TcpExtTCPLossProbes), else 0. */
  lossProbes: number;
  rtoRetransmits: [number, number];
  /** TcpRetransSegs: RTO retransmissions plus the loss probe. */
  retransSegs: [number, number];
  /** TcpExtTCPTimeouts: every RTO firing, the one that gives up included. */
  timeouts: [number, number];
  /** Segments the peer's DROP rule sees: the data, the FIN, the probe, the retransmissions. */
  segments: [number, number];
  /**
   * Segments with FIN set: the FIN, the probe (it re-sends the last segment, the FIN) and, with
   * tcp_retrans_collapse, every RTO retransmission: tcp_retrans_try_collapse merges the empty FIN
   * skb into the data it retransmits (measured: 4 FINs for 2 RTO retransmissions).
   */
  finsSent: [number, number];
  /** The limit on the time since the first RTO retransmission while close() waits (tcp_retries2), ms. */
  retries2LimitMs: number;
  /** …and once the socket is an orphan (tcp_orphan_retries), ms. */
  orphanLimitMs: number;
  onTime: LingerCloseRun;
  late: LingerCloseRun;
}

/**
 * close() with SO_LINGER {1, N>0} while data is unacknowledged and the peer answers nothing
 * (net/ipv4/af_inet.c inet_release, net/ipv4/tcp.c __tcp_close, net/core/stream.c
 * sk_stream_wait_close, net/ipv4/tcp_timer.c, 6.18):
 * 1. inet_release passes timeout = sk_lingertime (N·HZ jiffies) to tcp_close whatever the file's
 *    O_NONBLOCK (measured: a non-blocking socket blocks N s too). __tcp_close sends the FIN
 *    (FIN_WAIT1) and sk_stream_wait_close sleeps in schedule_timeout — one timer-wheel timer
 *    armed from the syscall — while the state is FIN_WAIT1/CLOSING/LAST_ACK. Nothing acks the
 *    FIN, so it sleeps the whole N s (or until the connection dies under it: tcp_done wakes it);
 *    then close() returns 0 — no error, no EWOULDBLOCK — and the socket is orphaned (SOCK_DEAD)
 *    still in FIN_WAIT1. No RST is sent: the orphan keeps retransmitting.
 * 2. With the data and the FIN both out, tcp_schedule_loss_probe's PTO is 2·srtt + TCP_TIMEOUT_MIN
 *    (packets_out > 1): the probe goes out within a few ms and re-sends the FIN; tcp_rearm_rto
 *    then arms the RTO from the *data's* transmission (tcp_rto_delta_us of the retransmit queue
 *    head), so the RTO chain starts from the write as without a probe: first RTO retransmission
 *    (retrans_stamp) at one RTO, then doubling (tcp_retransmit_timer: the head only, cwnd 1).
 * 3. tcp_write_timeout: while close() sleeps the socket is not dead yet (sock_orphan comes after
 *    the wait), so the limit is tcp_retries2; after it, tcp_orphan_retries
 *    (tcp_model_timeout from TCP_RTO_MIN, counted from retrans_stamp). The first firing past the
 *    limit destroys the socket silently (tcp_write_err: TcpExtTCPAbortOnTimeout, no RST).
 * Both schedules — timers on time, timers as late as their wheel level allows — are simulated
 * with the linger timer early or late too, and the window spans all four.
 */
export function predictLingerClose(s: DataSysctls, o: LingerCloseOptions, clock: KernelClock): LingerClosePrediction {
  const r0 = initialRtoJiffies(s.rtoMinMs, clock);
  const rtoMaxJ = msToJiffies(s.rtoMaxMs, clock.hz);
  const retries2LimitMs = modelTimeoutMs(s.retries2, TCP_RTO_MIN_MS, s.rtoMaxMs);
  // net/ipv4/tcp_timer.c tcp_orphan_retries(): 0 means 8 while the RTO is below the max ("alive").
  const orphanLimit = (rtoJ: number) => {
    const alive = rtoJ < rtoMaxJ;
    const retries = o.orphanRetries === 0 && alive ? 8 : o.orphanRetries;
    return modelTimeoutMs(retries, TCP_RTO_MIN_MS, s.rtoMaxMs);
  };
  const hz = clock.hz;
  const jiffyMs = 1000 / hz;
  const lingerJ = o.lingerS * hz;
  const runs: LingerCloseRun[] = [];
  // Every phase of the write (j0) and of the close right after it (same jiffy or the next), and
  // where the first RTO lands after the probe: what is left of the data's RTO, rounded up, with
  // tcp_mstamp up to a jiffy stale (1..3 jiffies past r0; measured: 216 ms = r0 + 3 at HZ=250).
  const simulate = (ph: Phase, closeJ: number, firstExtra: number, orphanAtTie: boolean, slip: number): void => {
    const lingerEnd = fireJiffy(closeJ, lingerJ, ph.lead);
    let now = ph.j0 + r0 + firstExtra;
    const stamp = now;
    const retransmitAtMs = [sinceArmMs(now, ph.j0, hz)[1]];
    let rto = Math.min(r0 * 2, rtoMaxJ);
    for (;;) {
      now = fireJiffy(now + slip, rto, 1);
      // close() returned (and orphaned the socket) before this firing; the same tick: either order.
      const dead = now > lingerEnd || (now === lingerEnd && orphanAtTie);
      const limit = dead ? orphanLimit(rto) : retries2LimitMs;
      const passed = passesLimit([(now - stamp) * jiffyMs, (now - stamp) * jiffyMs], limit);
      if (passed !== 'no') {
        const closeReturn = dead ? sinceArmMs(lingerEnd, closeJ, hz) : sinceArmMs(now, closeJ, hz);
        runs.push({ closeReturnMs: closeReturn[1], goneMs: sinceArmMs(now, ph.j0, hz)[1], rtoRetransmits: retransmitAtMs.length, retransmitAtMs: [...retransmitAtMs], closeEndedBy: dead ? 'linger' : 'tcp_retries2' });
        if (passed === 'yes') return;
      }
      retransmitAtMs.push(sinceArmMs(now, ph.j0, hz)[1]);
      rto = Math.min(rto * 2, rtoMaxJ);
    }
  };
  for (const ph of phasesFor([lingerJ, ...Array.from({ length: 16 }, (_, k) => Math.min(r0 << k, rtoMaxJ))])) {
    for (const closeJ of [ph.j0, ph.j0 + 1]) for (const extra of [1, 2, 3]) for (const tie of [false, true]) for (const slip of [0, slipJiffies(clock)]) simulate(ph, closeJ, extra, tie, slip);
  }
  const range = (f: (r: LingerCloseRun) => number): [number, number] => [Math.min(...runs.map(f)), Math.max(...runs.map(f))];
  const rtoRetransmits = range((r) => r.rtoRetransmits);
  const probes = s.tlp ? 1 : 0;
  const ends = new Set(runs.map((r) => r.closeEndedBy));
  const [closeLo, closeHi] = range((r) => r.closeReturnMs);
  const [goneLo, goneHi] = range((r) => r.goneMs);
  return {
    closeErrno: null,
    // Each end is the latest real time of its tick: the earliest is a jiffy before.
    closeWindowMs: [closeLo - jiffyMs, closeHi + wakeupSlackMs(clock)],
    closeEndedBy: ends.size > 1 ? 'either' : [...ends][0]!,
    goneWindowMs: [goneLo - jiffyMs, goneHi],
    lossProbes: probes,
    rtoRetransmits,
    retransSegs: [rtoRetransmits[0] + probes, rtoRetransmits[1] + probes],
    timeouts: [rtoRetransmits[0] + 1, rtoRetransmits[1] + 1],
    segments: [2 + probes + rtoRetransmits[0], 2 + probes + rtoRetransmits[1]],
    finsSent: o.retransCollapse === false ? [1 + probes, 1 + probes] : [1 + probes + rtoRetransmits[0], 1 + probes + rtoRetransmits[1]],
    retries2LimitMs,
    orphanLimitMs: orphanLimit(r0),
    onTime: runs.reduce((a, b) => (b.goneMs < a.goneMs ? b : a)),
    late: runs.reduce((a, b) => (b.goneMs > a.goneMs ? b : a)),
  };
}
