/**
 * The kernel's connection-teardown timers, from the sysctls in force: an orphaned socket
 * retransmitting its FIN (FIN_WAIT1 / LAST_ACK), the orphaned FIN_WAIT2 timeout, TIME_WAIT, and
 * which local ports connect() can still pick. Every number is read from a sysctl or cited from
 * the kernel source (Linux 6.18); none is copied from the seeds (CentOS 7, kernel 3.10).
 */
import { modelTimeoutMs, passesLimit, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, VETH_RTT_US } from './tcp.js';
import { chainWindowMs, fireJiffy, jiffiesToMs, msToJiffies, phasesFor, slipJiffies, type KernelClock, type Phase } from './timer-wheel.js';
import { delayedAckJiffies } from './ack.js';
import { estimateRtt, tcpInfoOf } from './rtt.js';

export { VETH_RTT_US };

/** include/net/tcp.h: TCP_TIMEWAIT_LEN = 60*HZ, a constant: no sysctl changes it, on 6.18 either. */
export const TCP_TIMEWAIT_LEN_MS = 60_000;
/** net/ipv4/tcp_timer.c tcp_orphan_retries(): tcp_orphan_retries=0 means 8 while the RTO is below the max. */
export const ORPHAN_RETRIES_WHEN_ZERO = 8;
/** net/ipv4/inet_timewait_sock.c __inet_twsk_schedule(): a timewait timer of at most 4 s counts as TWKilled, longer as TW. */
export const TW_KILL_THRESHOLD_MS = 4000;

/**
 * The RTO of a connection whose only RTT sample is the handshake (net/ipv4/tcp_input.c
 * tcp_rtt_estimator(), first sample m: srtt = m, rttvar = max(2m, tcp_rto_min_us(sk)); tcp_set_rto()
 * → __tcp_set_rto() = usecs_to_jiffies(srtt + rttvar), bounded by the RTO max). The minimum goes
 * through jiffies first (include/net/tcp.h tcp_rto_min(): usecs_to_jiffies(tcp_rto_min_us);
 * tcp_rto_min_us(sk) = jiffies_to_usecs of that). On a veth (m ≈ 50 µs) that is one jiffy above
 * the rounded-up minimum: 51 jiffies (204 ms) for the default 200 ms at HZ=250, 14 jiffies (56 ms)
 * for tcp_rto_min_us=50000 — measured, where a first version of this model said 52 ms.
 */
export function rtoAfterHandshakeMs(rtoMinUs: number, rtoMaxMs: number, clock: KernelClock, rttUs = VETH_RTT_US): number {
  const usPerJiffy = 1e6 / clock.hz;
  const rtoMinJiffies = Math.ceil(rtoMinUs / usPerJiffy);
  const rtoUs = rttUs + Math.max(2 * rttUs, rtoMinJiffies * usPerJiffy);
  const jiffies = Math.ceil(rtoUs / usPerJiffy);
  return Math.min(jiffiesToMs(jiffies, clock.hz), rtoMaxMs);
}

/**
 * The RTO an orphan's FIN_WAIT2 timeout is computed from, ms ([least, greatest]). The ACK of the
 * FIN is itself an RTT sample (net/ipv4/tcp_input.c tcp_ack → tcp_clean_rtx_queue →
 * tcp_ack_update_rtt → tcp_set_rto), taken before tcp_rcv_state_process reads icsk_rto for
 * tcp_fin_time(). A peer that receives the FIN and does not close enters pingpong mode
 * (tcp_fin: inet_csk_enter_pingpong_mode, CLOSE_WAIT) and ACKs the FIN only when its delayed-ACK
 * timer fires: a sample of TCP_ATO_MIN, 10–11 jiffies. srtt rises to about an eighth of it
 * (tcp_rtt_estimator), and RTO = usecs_to_jiffies(srtt + rttvar) is one jiffy above the
 * handshake's: 52 jiffies (208 ms) at HZ=250, so 3.5 × RTO is 182 jiffies (728 ms), not 179.
 * Measured: FIN_WAIT2 at 760.0–760.2 ms = 182 jiffies plus the level-1 bucket's 8, which the
 * handshake RTO's 716 ms could not reach. `ackedRounds` earlier segments the peer ACKed at once
 * (quick-ack mode: the client's write) are samples of a veth round trip.
 */
export function rtoAfterDelayedFinAckMs(rtoMinUs: number, rtoMaxMs: number, clock: KernelClock, ackedRounds: number): [number, number] {
  const usPerJiffy = 1e6 / clock.hz;
  // tcp_rto_min_us(sk): the sysctl through jiffies (usecs_to_jiffies, then back).
  const rtoMinRoundedUs = Math.ceil(rtoMinUs / usPerJiffy) * usPerJiffy;
  const veth: [number, number] = [1, 2 * VETH_RTT_US];
  const [dLo, dHi] = chainWindowMs([jiffiesToMs(delayedAckJiffies(clock), clock.hz)], clock);
  const samples: [number, number][] = [veth, ...Array.from({ length: ackedRounds }, () => veth), [Math.floor(dLo * 1000), Math.ceil(dHi * 1000) + 2 * VETH_RTT_US]];
  const [lo, hi] = tcpInfoOf(estimateRtt(samples, rtoMinRoundedUs), rtoMaxMs, clock).rtoUs;
  return [lo / 1000, hi / 1000];
}

export interface OrphanFinSysctls {
  /** net.ipv4.tcp_orphan_retries of the side that closed (0: 8 while "alive"). */
  orphanRetries: number;
  /** net.ipv4.tcp_rto_min_us (6.11+; 200000 before). */
  rtoMinUs: number;
  /** net.ipv4.tcp_rto_max_ms (6.15+; 120000 before). */
  rtoMaxMs: number;
  /** Whether a tail loss probe precedes the first RTO: tcp_early_retrans 3 or 4 and SACK on both ends. */
  tlp: boolean;
}

export interface OrphanFinPrediction {
  /** The RTO the chain starts from. */
  rtoMs: number;
  /** A TLP retransmitted the FIN first (one extra FIN; not counted in icsk_retransmits). */
  tlp: boolean;
  /** RTO retransmissions of the FIN (icsk_retransmits at the end, the watcher's `retrans`): min..max. */
  rtoRetransmits: [number, number];
  /** FINs on the wire: the first, the TLP, the RTO retransmissions. */
  finsSent: [number, number];
  /** RTO timer firings (TcpExtTCPTimeouts): every retransmission plus the one that gives up. */
  timeouts: [number, number];
  /** Nominal time from the first FIN until the socket is destroyed (tcp_write_err), ms. */
  goneAtMs: number;
  /** Window of that time: timer-wheel lateness included, ms. */
  windowMs: [number, number];
  /** The expiry boundary (tcp_model_timeout of the retries, from TCP_RTO_MIN), ms since the first RTO retransmission. */
  boundaryMs: number;
  /** The retries in force (after tcp_orphan_retries() turned 0 into 8). */
  retries: number;
}

/**
 * An orphaned socket (close() was called) whose FIN is never acknowledged: FIN_WAIT1 after an
 * active close, LAST_ACK after a passive one. Schedule (net/ipv4/tcp_output.c, tcp_timer.c, 6.18):
 * - the FIN goes out at t = 0; with TLP on, tcp_schedule_loss_probe() arms the probe at
 *   min(2·srtt + tcp_rto_min, rto) = rto on a veth; the probe retransmits the FIN through
 *   __tcp_retransmit_skb(), which neither counts in icsk_retransmits nor sets retrans_stamp, and
 *   re-arms the RTO timer from then (tcp_rearm_rto);
 * - each RTO firing calls tcp_write_timeout() first: with icsk_retransmits = 0 it cannot expire
 *   (retransmits_timed_out() returns false), so the first RTO always retransmits and
 *   tcp_retransmit_skb() stamps retrans_stamp with that retransmission's time;
 * - later firings expire when the time since retrans_stamp reaches
 *   tcp_model_timeout(tcp_orphan_retries(), TCP_RTO_MIN) — a time, not a count: the number of
 *   retransmissions follows from the RTO (which tcp_rto_min_us shapes, the boundary does not);
 * - the RTO doubles after each retransmission (capped at the RTO max); tcp_orphan_retries=0 is 8
 *   while the RTO is below the max ("alive"), 0 once it reached it.
 * Expiry destroys the socket silently (tcp_write_err: no RST), TcpExtTCPAbortOnTimeout += 1.
 * Where timer lateness could put a firing on either side of the boundary, both outcomes are kept
 * (the ranges below are then wider than one value).
 * Measured on 6.18 (HZ=250, veth): retries=2 → TLP + 3 RTO retransmissions, gone at 3.32 s.
 */
export function predictOrphanFin(s: OrphanFinSysctls, clock: KernelClock, rttUs = VETH_RTT_US): OrphanFinPrediction {
  const hz = clock.hz;
  const jiffyMs = 1000 / hz;
  const r = rtoAfterHandshakeMs(s.rtoMinUs, s.rtoMaxMs, clock, rttUs);
  const rJ = msToJiffies(r, hz);
  const rtoMaxJ = msToJiffies(s.rtoMaxMs, hz);
  const retriesFor = (rtoJ: number) => (s.orphanRetries === 0 ? (rtoJ < rtoMaxJ ? ORPHAN_RETRIES_WHEN_ZERO : 0) : s.orphanRetries);
  const ends: { k: number; goneJ: number; retries: number; boundaryMs: number }[] = [];
  let nominalGone = 0;
  const simulate = (ph: Phase, forceExpire: ReadonlySet<number>, slip: number): void => {
    let now = ph.j0;
    let lead: 0 | 1 = ph.lead;
    let fromSoftirq = false;
    if (s.tlp) {
      now = fireJiffy(now, rJ, lead); // the loss probe re-sends the FIN
      lead = 1;
      fromSoftirq = true;
    }
    let rto = rJ;
    let stamp = 0;
    for (let k = 0; k < 64; k++) {
      now = fireJiffy(fromSoftirq ? now + slip : now, rto, lead);
      lead = 1;
      fromSoftirq = true;
      if (k > 0) {
        const retries = retriesFor(rto);
        const boundaryMs = modelTimeoutMs(retries, TCP_RTO_MIN_MS, s.rtoMaxMs);
        const passed = passesLimit([(now - stamp) * jiffyMs, (now - stamp) * jiffyMs], boundaryMs);
        if (passed === 'yes' || (passed === 'either' && forceExpire.has(k))) {
          ends.push({ k, goneJ: now - ph.j0, retries, boundaryMs });
          return;
        }
        if (passed === 'either') simulate(ph, new Set([...forceExpire, k]), slip);
      } else stamp = now;
      rto = Math.min(rto * 2, rtoMaxJ);
    }
    throw new RangeError('orphan FIN chain did not end in 64 timeouts');
  };
  const delays = [rJ, ...Array.from({ length: 16 }, (_, k) => Math.min(rJ << k, rtoMaxJ))];
  for (const ph of phasesFor(delays)) for (const slip of [0, slipJiffies(clock)]) simulate(ph, new Set(), slip);
  const ks = ends.map((e) => e.k);
  // Nominal (every timer on time) up to the firing that gives up, for the `because` line.
  {
    let t = s.tlp ? r : 0;
    let rto = r;
    for (let k = 0; k <= Math.max(...ks); k++) {
      t += rto;
      rto = Math.min(rto * 2, s.rtoMaxMs);
    }
    nominalGone = t;
  }
  const gone = ends.map((e) => e.goneJ);
  const kMin = Math.min(...ks);
  const kMax = Math.max(...ks);
  const last = ends.find((e) => e.k === kMax)!;
  const tlp = s.tlp ? 1 : 0;
  return {
    rtoMs: r,
    tlp: s.tlp,
    rtoRetransmits: [kMin, kMax],
    finsSent: [1 + tlp + kMin, 1 + tlp + kMax],
    timeouts: [kMin + 1, kMax + 1],
    goneAtMs: nominalGone,
    // From close(), somewhere inside its jiffy, to the tick of the firing that gives up.
    windowMs: [jiffiesToMs(Math.min(...gone) - 1, hz), jiffiesToMs(Math.max(...gone), hz)],
    boundaryMs: last.boundaryMs,
    retries: last.retries,
  };
}

/** Reads the orphan-FIN sysctls of one side from a map of values in force (missing keys: pre-6.11 defaults). */
/** A [min, max] prediction as a counter expectation: exact when the two agree. */
export function countRange([min, max]: readonly [number, number]): number | { min: number; max: number } {
  return min === max ? min : { min, max };
}

/** Kernel counters of the closer whose FIN is never acked: a TLP, the RTO retransmissions, one abort. */
export function orphanFinCounters(p: OrphanFinPrediction): Record<string, number | { min: number; max: number }> {
  const tlp = p.tlp ? 1 : 0;
  return {
    TcpRetransSegs: countRange([tlp + p.rtoRetransmits[0], tlp + p.rtoRetransmits[1]]),
    TcpExtTCPLossProbes: tlp,
    TcpExtTCPTimeouts: countRange(p.timeouts),
    TcpExtTCPAbortOnTimeout: 1,
  };
}

/** Why the orphan lives as long as it does, in one line (the fault says whose socket it is). */
export function orphanFinBecause(p: OrphanFinPrediction, s: OrphanFinSysctls): string {
  const n = p.rtoRetransmits[0] === p.rtoRetransmits[1] ? String(p.rtoRetransmits[0]) : p.rtoRetransmits.join('..');
  return (
    `RTO ${p.rtoMs} ms${p.tlp ? ', a TLP first' : ', no TLP'}; tcp_orphan_retries ${s.orphanRetries}` +
    `${s.orphanRetries === 0 ? ` (0 = ${p.retries})` : ''} → expiry ${p.boundaryMs} ms after the first RTO retransmission: ${n} RTO retransmissions`
  );
}

export function orphanFinSysctlsFrom(own: Record<string, string | undefined>, peer: Record<string, string | undefined>): OrphanFinSysctls {
  const num = (v: Record<string, string | undefined>, k: string, dflt: number) => (v[k] === undefined ? dflt : Number(v[k]));
  const early = num(own, 'net.ipv4.tcp_early_retrans', 3);
  // tcp_schedule_loss_probe(): TLP needs early_retrans 3 or 4 and a SACK connection (both ends offered it).
  const sack = num(own, 'net.ipv4.tcp_sack', 1) !== 0 && num(peer, 'net.ipv4.tcp_sack', 1) !== 0;
  return {
    orphanRetries: num(own, 'net.ipv4.tcp_orphan_retries', 0),
    rtoMinUs: num(own, 'net.ipv4.tcp_rto_min_us', TCP_RTO_MIN_MS * 1000),
    rtoMaxMs: num(own, 'net.ipv4.tcp_rto_max_ms', TCP_RTO_MAX_MS),
    tlp: (early === 3 || early === 4) && sack,
  };
}

export const ORPHAN_FIN_SYSCTLS = ['net.ipv4.tcp_orphan_retries', 'net.ipv4.tcp_rto_min_us', 'net.ipv4.tcp_rto_max_ms', 'net.ipv4.tcp_early_retrans', 'net.ipv4.tcp_sack'] as const;

export interface FinWait2Prediction {
  /** tcp_fin_time(): the orphan's FIN_WAIT2 lifetime, ms. */
  timeoutMs: number;
  /** Why: the sysctl, or 3.5 × RTO when the sysctl is below it. */
  limitedBy: 'tcp_fin_timeout' | '3.5 x RTO';
  /** How the kernel holds it: a FIN_WAIT2 timewait sock (≤ 60 s), or a full socket first (> 60 s). */
  holder: 'timewait-sock' | 'keepalive-then-timewait';
  /** Chain of timers until it is gone. */
  intervalsMs: number[];
  /** Window of the FIN_WAIT2 span (from the ACK of the FIN), ms. */
  windowMs: [number, number];
  /** Which counter the timewait sock adds to (TcpExtTWKilled for ≤ 4 s, TcpExtTW longer). */
  counter: 'TcpExtTWKilled' | 'TcpExtTW';
}

/**
 * An orphaned FIN_WAIT2 (close() called, our FIN acknowledged, the peer never sends its own):
 * net/ipv4/tcp_input.c tcp_rcv_state_process(), case TCP_FIN_WAIT1 on the ACK of our FIN:
 * tmo = tcp_fin_time() = max(tcp_fin_timeout, 3.5 × RTO) (include/net/tcp.h, in jiffies:
 * (rto << 2) - (rto >> 1)); tmo ≤ TCP_TIMEWAIT_LEN → tcp_time_wait(sk, TCP_FIN_WAIT2, tmo): the
 * socket becomes a timewait sock in the FIN_WAIT2 substate (sock_diag still reports FIN_WAIT2)
 * and dies when its timer fires. tmo > 60 s → the full socket waits tmo - 60 s on the keepalive
 * timer, then tcp_keepalive_timer() turns it into a timewait sock for another tmo - 60 s
 * (modelled from the source; not measured: it needs minutes). A socket that only did
 * shutdown(SHUT_WR) is not orphaned: no timer at all, FIN_WAIT2 for as long as the app holds it.
 */
export function predictFinWait2(finTimeoutS: number, rtoMs: number, clock: KernelClock): FinWait2Prediction {
  const rtoJ = msToJiffies(rtoMs, clock.hz);
  const floorJ = (rtoJ << 2) - (rtoJ >> 1);
  const sysJ = finTimeoutS * clock.hz;
  const tmoJ = Math.max(sysJ, floorJ);
  const tmoMs = jiffiesToMs(tmoJ, clock.hz);
  const limitedBy = sysJ >= floorJ ? 'tcp_fin_timeout' : '3.5 x RTO';
  if (tmoMs <= TCP_TIMEWAIT_LEN_MS) {
    return {
      timeoutMs: tmoMs,
      limitedBy,
      holder: 'timewait-sock',
      intervalsMs: [tmoMs],
      windowMs: chainWindowMs([tmoMs], clock),
      counter: tmoMs <= TW_KILL_THRESHOLD_MS ? 'TcpExtTWKilled' : 'TcpExtTW',
    };
  }
  const rest = tmoMs - TCP_TIMEWAIT_LEN_MS;
  return {
    timeoutMs: tmoMs,
    limitedBy,
    holder: 'keepalive-then-timewait',
    intervalsMs: [rest, rest],
    windowMs: chainWindowMs([rest, rest], clock),
    counter: rest <= TW_KILL_THRESHOLD_MS ? 'TcpExtTWKilled' : 'TcpExtTW',
  };
}

/**
 * How many of `closes` active closes get a TIME_WAIT sock when at most `maxTwBuckets` may exist
 * (net.ipv4.tcp_max_tw_buckets of the closer's namespace): net/ipv4/inet_timewait_sock.c
 * inet_twsk_alloc() refuses once `tw_refcount - 1 >= sysctl_max_tw_buckets` (the death row's
 * refcount starts at 1: 0 refuses every one), and net/ipv4/tcp_minisocks.c tcp_time_wait() then
 * counts TcpExtTCPTimeWaitOverflow and destroys the socket at once (tcp_done): no TIME_WAIT, its
 * local port free again. (The closes come faster than 60 s TIME_WAITs end: none is freed meanwhile.)
 */
export function timeWaitBuckets(closes: number, maxTwBuckets: number): { timeWait: number; overflow: number } {
  const timeWait = Math.max(0, Math.min(closes, maxTwBuckets));
  return { timeWait, overflow: closes - timeWait };
}

/** TIME_WAIT: always TCP_TIMEWAIT_LEN (net/ipv4/tcp_minisocks.c tcp_time_wait()), one wheel timer. */
export function timeWaitWindowMs(clock: KernelClock): [number, number] {
  return chainWindowMs([TCP_TIMEWAIT_LEN_MS], clock);
}

export interface PortRange {
  low: number;
  high: number;
}

/** Parses `net.ipv4.ip_local_port_range` ("32768\t60999"). */
export function parsePortRange(v: string): PortRange {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(v);
  if (!m) throw new RangeError(`ip_local_port_range "${v}" is not "LOW HIGH"`);
  return { low: Number(m[1]), high: Number(m[2]) };
}

/** Parses `net.ipv4.ip_local_reserved_ports` ("", "40001", "40001,40005-40007"). */
export function parseReservedPorts(v: string | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of (v ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let p = a; p <= (b ?? a); p++) out.add(p);
  }
  return out;
}

export interface PortCapacity {
  /** Ports in the range that are not reserved. */
  ports: number;
  /** connect() calls that succeed for certain while every earlier one still holds its port. */
  certain: number;
  /** The most that can succeed. */
  max: number;
}

/**
 * How many connections to one destination connect() can open from the range
 * (net/ipv4/inet_hashtables.c __inet_hash_connect(), 6.18): `remaining = high + 1 - low`, rounded
 * down to even when above 1 (`remaining &= ~1U`); each call scans `remaining` ports from a random
 * offset — one parity first (bind() prefers the other), then the other — wrapping only past
 * `high`. An even-sized range is covered exactly: all its ports, deterministically. An odd-sized
 * range loses one port per call — `low` or `high`, depending on the random offset — so the last
 * free port is found only by some calls: size - 1 connections for certain, the last one by chance.
 * (A first version of this model said the last port of an odd range is never used; a run with
 * "40000 40010" opened 11 connections: the scan wraps at `high`, not at `low + remaining`.)
 * Reserved ports are skipped.
 */
export function connectCapacity(range: PortRange, reserved: ReadonlySet<number> = new Set()): PortCapacity {
  const size = range.high + 1 - range.low;
  let ports = 0;
  for (let p = range.low; p <= range.high; p++) if (!reserved.has(p)) ports++;
  const odd = size > 1 && size % 2 === 1;
  return { ports, certain: odd ? ports - 1 : ports, max: ports };
}

export interface TwReuseInput {
  /** net.ipv4.tcp_tw_reuse of the connecting side: 0 off, 1 on, 2 loopback only (the default). */
  reuse: number;
  /** Both ends have net.ipv4.tcp_timestamps on: the TIME_WAIT sock then holds tw_ts_recent_stamp. */
  timestamps: boolean;
  /** The connection goes through loopback (127/8, ::1 or bound to lo): never for the harness's veth. */
  loopback: boolean;
  /** net.ipv4.tcp_tw_reuse_delay, ms (6.13+; before it, "older than 1 s" on a seconds clock). */
  delayMs: number;
  /** How long the youngest TIME_WAIT sock has been in it when connect() runs, ms (a lower bound). */
  ageMs: number;
}

/**
 * Whether connect() may take over a TIME_WAIT port (net/ipv4/tcp_ipv4.c tcp_twsk_unique(), 6.18):
 * reuse = tcp_tw_reuse, forced to 0 for mode 2 unless loopback; it needs tw_ts_recent_stamp (the
 * peer's timestamps were seen) and tcp_clock_ms() > tw_entry_stamp + tcp_tw_reuse_delay.
 * The takeover counts TcpExtTWRecycled (__inet_check_established()).
 */
export function twReusable(t: TwReuseInput): boolean {
  const reuse = t.reuse === 2 ? (t.loopback ? 1 : 0) : t.reuse;
  return reuse === 1 && t.timestamps && t.ageMs > t.delayMs;
}
