/**
 * The passive side of the handshake: the request socket's SYN-ACK timer, the SYN ("half-open")
 * queue and the accept queue, from the sysctls in force. Every rule cites the kernel function it
 * comes from (Linux 6.18; where older kernels — the seeds' CentOS 7 3.10 — differ, it says so).
 */
import { immediateWindowMs, TCP_RTO_MAX_MS, TCP_TIMEOUT_INIT_MS, VETH_RTT_US, wakeupSlackMs, type SynPrediction } from './tcp.js';
import { chainFiringWindowsMs, chainWindowMs, type KernelClock } from './timer-wheel.js';

/**
 * A connect answered by the first SYN-ACK, or a data segment answered at once (a RST, the ACK that
 * completes a handshake): one exchange on the veth and the probe's wake-up — "at once", in ms
 * (immediateWindowMs). The second outcome (the SYN or segment lost, answered only after a
 * retransmission) is a second away, never inside this window.
 */
export function answeredWindowMs(clock: KernelClock): [number, number] {
  return immediateWindowMs(clock);
}

export interface SynAckSysctls {
  /** net.ipv4.tcp_synack_retries of the server namespace (the listener's TCP_SYNCNT overrides it). */
  synackRetries: number;
}

export function synAckSysctlsFrom(values: Record<string, string | undefined>): SynAckSysctls {
  const v = values['net.ipv4.tcp_synack_retries'];
  return { synackRetries: v === undefined ? 5 : Number(v) };
}

/**
 * reqsk_timer_handler (net/ipv4/inet_connection_sock.c): a listener under pressure shortens the
 * SYN-ACK retries of its old requests. When (qlen << 1) > max(8, sk_max_ack_backlog), the retry
 * limit drops by one for every doubling of `young << 1` that qlen still reaches, down to 2
 * ("reserve half of room for young embrions"). `young` counts requests whose timer never fired.
 */
export function effectiveSynackRetries(maxRetries: number, qlen: number, young: number, maxAckBacklog: number): number {
  let retries = maxRetries;
  if (qlen << 1 > Math.max(8, maxAckBacklog)) {
    let y = young << 1;
    while (retries > 2) {
      if (qlen < y) break;
      retries--;
      y <<= 1;
    }
  }
  return retries;
}

export interface SynAckPrediction {
  /** SYN-ACK retransmissions before the request is dropped. */
  retransmits: number;
  /** Nominal times of each retransmission from the first SYN-ACK, ms. */
  retransmitAtMs: number[];
  /** Window of each retransmission (timer-wheel lateness accumulated along the chain), ms. */
  retransmitWindowsMs: [number, number][];
  /** Nominal time the request is dropped (its timer fires with num_timeout >= retries), ms. */
  expireAtMs: number;
  /** Window of the drop, ms from the first SYN-ACK. */
  expireWindowMs: [number, number];
}

/**
 * The request socket's timer (reqsk_timer_handler + syn_ack_recalc, inet_connection_sock.c; the
 * interval is tcp_reqsk_timeout / reqsk_timeout: req->timeout << num_timeout, capped at
 * TCP_RTO_MAX, with req->timeout = tcp_timeout_init() = TCP_TIMEOUT_INIT without BPF). At each
 * firing the request expires if num_timeout >= max retries; otherwise the SYN-ACK is resent and
 * num_timeout grows. So with retries R: resends at 1, 3, 7 … s, the drop at 2^(R+1) - 1 s
 * (R = 5: 63 s, what the seeds measured).
 */
export function predictSynAckExpiry(retries: number, clock: KernelClock): SynAckPrediction {
  const intervals: number[] = [];
  const retransmitAtMs: number[] = [];
  const retransmitWindowsMs: [number, number][] = [];
  let t = 0;
  for (let n = 0; ; n++) {
    const d = Math.min(TCP_TIMEOUT_INIT_MS * 2 ** n, TCP_RTO_MAX_MS);
    intervals.push(d);
    t += d;
    if (n >= retries) break;
    retransmitAtMs.push(t);
    retransmitWindowsMs.push(chainWindowMs(intervals, clock));
  }
  const [lo, hi] = chainWindowMs(intervals, clock);
  return { retransmits: retries, retransmitAtMs, retransmitWindowsMs, expireAtMs: t, expireWindowMs: [lo, hi] };
}

/**
 * __sys_listen_socket (net/socket.c): listen(fd, backlog) is capped at net.core.somaxconn *as it
 * is when listen() is called*; the result is sk_max_ack_backlog (ss shows it as the listener's
 * Send-Q).
 */
export function maxAckBacklog(backlog: number, somaxconn: number): number {
  return Math.min(backlog, somaxconn);
}

/**
 * sk_acceptq_is_full (include/net/sock.h) is `sk_ack_backlog > sk_max_ack_backlog` — not >= (see
 * the comment there about commit 64a146513f8f) — so the accept queue holds max + 1 connections.
 */
export function acceptQueueCapacity(maxAck: number): number {
  return maxAck + 1;
}

export type SynVerdict =
  /** A request socket is stored (SYN_RECV) and a SYN-ACK sent. */
  | 'request'
  /** A SYN cookie is sent; nothing is stored. */
  | 'cookie'
  /** Dropped: the SYN queue is full and cookies are off (TcpExtTCPReqQFullDrop). */
  | 'drop-queue-full'
  /** Dropped: the accept queue is full (TcpExtListenOverflows). */
  | 'drop-accept-full'
  /** Dropped: cookies off and the last quarter of tcp_max_syn_backlog is reserved for proven peers. */
  | 'drop-max-syn-backlog';

export interface ListenerState {
  /** Request sockets (half-open connections) of the listener: inet_csk_reqsk_queue_len. */
  qlen: number;
  /** Connections waiting in the accept queue: sk_ack_backlog. */
  acceptQueue: number;
  /** sk_max_ack_backlog. */
  maxAck: number;
}

export interface SynQueueSysctls {
  /** net.ipv4.tcp_syncookies: 0 off, 1 when the SYN queue is full, 2 always. */
  syncookies: number;
  /** net.ipv4.tcp_max_syn_backlog. */
  maxSynBacklog: number;
}

export function synQueueSysctlsFrom(values: Record<string, string | undefined>): SynQueueSysctls {
  const num = (k: string, d: number) => (values[k] === undefined ? d : Number(values[k]));
  return { syncookies: num('net.ipv4.tcp_syncookies', 1), maxSynBacklog: num('net.ipv4.tcp_max_syn_backlog', 128) };
}

/**
 * What tcp_conn_request (net/ipv4/tcp_input.c) does with a SYN from a peer that is not proven
 * (no tcp_metrics RTT for it — true in a fresh namespace) and not a TIME_WAIT recycle:
 * 1. if syncookies == 2, or the SYN queue is full — inet_csk_reqsk_queue_is_full:
 *    qlen > sk_max_ack_backlog on 6.14+ (it was >= before; 3.10 compared against
 *    tcp_max_syn_backlog-sized tables) — tcp_syn_flood_action decides: cookies on → a cookie
 *    (TCPReqQFullDoCookies), off → drop (TCPReqQFullDrop);
 * 2. if the accept queue is full (sk_acceptq_is_full) → drop (ListenOverflows) — even a cookie:
 *    on 3.10 this drop also needed inet_csk_reqsk_queue_young() > 1;
 * 3. without a cookie and with syncookies == 0: when
 *    max_syn_backlog - qlen < max_syn_backlog >> 2 → drop (only ListenDrops moves);
 * 4. otherwise a request socket.
 * Every drop counts TcpExtListenDrops.
 */
export function synVerdict(l: ListenerState, s: SynQueueSysctls): SynVerdict {
  let cookie = false;
  if (s.syncookies === 2 || l.qlen > l.maxAck) {
    if (!s.syncookies) return 'drop-queue-full';
    cookie = true;
  }
  if (l.acceptQueue > l.maxAck) return 'drop-accept-full';
  if (cookie) return 'cookie';
  if (!s.syncookies && s.maxSynBacklog - l.qlen < s.maxSynBacklog >> 2) return 'drop-max-syn-backlog';
  return 'request';
}

/**
 * How many half-open requests a listener stores before the next SYN is not stored (cookie or
 * drop), and which rule stops it: the first qlen (from 0) whose verdict is not 'request'.
 */
export function halfOpenLimit(maxAck: number, s: SynQueueSysctls): { limit: number; then: SynVerdict } {
  for (let qlen = 0; ; qlen++) {
    const v = synVerdict({ qlen, acceptQueue: 0, maxAck }, s);
    if (v !== 'request') return { limit: qlen, then: v };
  }
}

export interface AcceptOutcome {
  /** 'ok': the handshake completes into the accept queue; 'syn-dropped': the SYN is dropped. */
  kind: 'ok' | 'syn-dropped';
}

/**
 * Sequential connects to a listener that never accepts: each SYN meets the accept queue as the
 * previous connects left it (the client's final ACK is processed before its next SYN arrives).
 * The first max+1 complete; every later SYN is dropped by the accept-queue check of
 * tcp_conn_request (ListenOverflows + ListenDrops once per SYN, retransmissions included).
 */
export function sequentialConnects(n: number, maxAck: number): AcceptOutcome['kind'][] {
  const cap = acceptQueueCapacity(maxAck);
  return Array.from({ length: n }, (_, i) => (i < cap ? 'ok' : 'syn-dropped'));
}

/** A time window [earliest, latest], ms from the first client step. */
export type WindowMs = [number, number];
const plus = (a: readonly [number, number], b: readonly [number, number]): WindowMs => [a[0] + b[0], a[1] + b[1]];

/** What a connect of the client is for: a half-open (its ACK never arrives) or the fresh one (it completes). */
export type ConnectKind = 'half-open' | 'fresh';

export interface ListenerConnect {
  kind: ConnectKind;
  /** The verdict each SYN that went out met: the first, then the retransmissions until one got through. */
  attempts: SynVerdict[];
  /** 'request' or 'cookie': answered at the attempt that got through; 'timeout': every SYN dropped. */
  result: 'request' | 'cookie' | 'timeout';
  /** SYN retransmissions it made (TcpExtTCPSynRetrans). */
  retransmits: number;
  /** When the step starts, ends (absolute) and how long it lasts (the check's window). */
  startMs: WindowMs;
  endMs: WindowMs;
  durationMs: WindowMs;
  /** The script's pause before it (to wait out an expiry the SYN could race), ms. */
  pauseMs: number;
}

export interface RequestLife {
  /** Index of the connect whose SYN created it. */
  connect: number;
  createdMs: WindowMs;
  /** Each firing of its timer, in order: a SYN-ACK resent, or the request dropped. */
  firings: { atMs: WindowMs; action: 'resend' | 'expire'; retries: number }[];
  /** accepted: the fresh connect's ACK completed it; open: still in the queue at the end of the run. */
  end: 'accepted' | 'expired' | 'pruned' | 'open';
}

export interface ListenerRun {
  connects: ListenerConnect[];
  requests: RequestLife[];
  /** The run's end: the last connect's end (the script holds a fresh connection a settle longer). */
  endMs: WindowMs;
  /** A SYN whose verdict depends on whether a request timer fired before it (their windows overlap). */
  race?: { connect: number; attempt: number; startMs: WindowMs; clearAfterMs: number };
}

export interface ListenerInput {
  connects: readonly ConnectKind[];
  maxAck: number;
  queue: SynQueueSysctls;
  synackRetries: number;
  /** The client's SYN schedule against a dropping listener (retransmission windows, timeout). */
  syn: SynPrediction;
  clock: KernelClock;
  /** ms the script pauses before each connect (index → ms). */
  pausesMs?: Readonly<Record<number, number>>;
  /** How long the script holds the fresh connection after it connected, ms. */
  holdMs?: number;
}

interface Req {
  life: RequestLife;
  numTimeout: number;
  alive: boolean;
}

/**
 * The listener and the client's sequential connects over time (net/ipv4/tcp_input.c
 * tcp_conn_request for each SYN, net/ipv4/inet_connection_sock.c reqsk_timer_handler for each
 * request's timer). Every event is a window (the timer wheel's, from each chain's arm), and the
 * queue evolves with them:
 * - a SYN meets synVerdict() with the queue as it is when it arrives; a stored request answers at
 *   once; a dropped SYN is retransmitted on the client's schedule and meets the queue again;
 * - each request's timer fires at 1, 3, 7 … s (TCP_TIMEOUT_INIT << num_timeout) after its SYN;
 *   at each firing reqsk_timer_handler prunes when the queue is more than half full
 *   ((qlen << 1) > max(8, backlog): effectiveSynackRetries, with `young` the requests whose timer
 *   never fired) and drops the request once num_timeout reaches that limit — so with 5 old
 *   requests and backlog 4 the first to fire a third time expires at ~7 s instead of 15 s, frees a
 *   slot, and the others (qlen 4, no longer "more than half") go on to tcp_synack_retries;
 * - the fresh connect's ACK completes its request at once (the server accepts it).
 * When a SYN's window overlaps a firing that would change its verdict, the order is not decided
 * by the arithmetic (it depends on the jiffy the run started in, modulo a wheel granule): the run
 * reports the race and the earliest time after which that SYN would be clear of it.
 */
export function simulateListener(o: ListenerInput): ListenerRun {
  const { clock } = o;
  const wake = wakeupSlackMs(clock);
  const rtt = VETH_RTT_US / 1000;
  // The request timer's chain (reqsk_timer_handler: timeo = TCP_TIMEOUT_INIT << num_timeout, capped).
  const reqIntervals = Array.from({ length: o.synackRetries + 1 }, (_, n) => Math.min(TCP_TIMEOUT_INIT_MS * 2 ** n, TCP_RTO_MAX_MS));
  const reqFirings = chainFiringWindowsMs(reqIntervals, clock);
  const reqs: Req[] = [];
  const connects: ListenerConnect[] = [];
  let pending: { req: Req; n: number; atMs: WindowMs }[] = [];
  const listener = (rs: readonly Req[]): ListenerState => ({ qlen: rs.filter((r) => r.alive).length, acceptQueue: 0, maxAck: o.maxAck });
  const fire = (rs: Req[], f: { req: Req; n: number; atMs: WindowMs }, record: boolean): { req: Req; n: number; atMs: WindowMs } | undefined => {
    const req = f.req;
    if (!req.alive) return undefined;
    const qlen = rs.filter((r) => r.alive).length;
    const young = rs.filter((r) => r.alive && r.numTimeout === 0).length;
    const retries = effectiveSynackRetries(o.synackRetries, qlen, young, o.maxAck);
    if (req.numTimeout >= retries) {
      req.alive = false;
      if (record) {
        req.life.firings.push({ atMs: f.atMs, action: 'expire', retries });
        req.life.end = retries < o.synackRetries ? 'pruned' : 'expired';
      }
      return undefined;
    }
    req.numTimeout++;
    if (record) req.life.firings.push({ atMs: f.atMs, action: 'resend', retries });
    return { req, n: f.n + 1, atMs: plus(req.life.createdMs, reqFirings[f.n + 1]!) };
  };
  /** Apply, in order, every pending firing that surely happens before `t`. */
  const applyBefore = (t: number) => {
    for (;;) {
      pending.sort((a, b) => a.atMs[0] - b.atMs[0] || a.atMs[1] - b.atMs[1]);
      const i = pending.findIndex((f) => f.atMs[1] < t);
      if (i < 0) return;
      const [f] = pending.splice(i, 1);
      const next = fire(reqs, f!, true);
      if (next && next.n < reqFirings.length) pending.push(next);
    }
  };
  let prevEnd: WindowMs = [0, 0];
  let race: ListenerRun['race'];
  o.connects.forEach((kind, k) => {
    if (race) return;
    const pauseMs = o.pausesMs?.[k] ?? 0;
    const startMs: WindowMs = k === 0 ? [pauseMs, pauseMs] : plus(prevEnd, [pauseMs, pauseMs + wake]);
    const offsets: WindowMs[] = [[0, rtt], ...o.syn.retransmitWindowsMs];
    const attempts: SynVerdict[] = [];
    let result: ListenerConnect['result'] = 'timeout';
    let endMs: WindowMs = plus(startMs, o.syn.windowMs);
    let durationMs: WindowMs = o.syn.windowMs;
    for (let j = 0; j < offsets.length && !race; j++) {
      const at = plus(startMs, offsets[j]!);
      applyBefore(at[0]);
      const verdict = synVerdict(listener(reqs), o.queue);
      // Firings that may come before or after this SYN: would they change what it meets?
      const overlapping = pending.filter((f) => f.atMs[0] <= at[1]).sort((a, b) => a.atMs[0] - b.atMs[0]);
      if (overlapping.length) {
        const clone = reqs.map((r) => ({ ...r }));
        for (const f of overlapping) fire(clone, { ...f, req: clone[reqs.indexOf(f.req)]! }, false);
        if (synVerdict(listener(clone), o.queue) !== verdict) {
          race = { connect: k, attempt: j, startMs, clearAfterMs: Math.max(...overlapping.map((f) => f.atMs[1])) - offsets[j]![0] };
          break;
        }
      }
      attempts.push(verdict);
      if (verdict === 'request' || verdict === 'cookie') {
        result = verdict;
        endMs = plus(at, [rtt, rtt + wake]);
        durationMs = plus(offsets[j]!, [0, rtt + wake]);
        if (verdict === 'request') {
          const req: Req = { life: { connect: k, createdMs: at, firings: [], end: kind === 'fresh' ? 'accepted' : 'open' }, numTimeout: 0, alive: kind !== 'fresh' };
          reqs.push(req);
          if (req.alive) pending.push({ req, n: 0, atMs: plus(at, reqFirings[0]!) });
        }
        break;
      }
    }
    const retransmits = result === 'timeout' ? o.syn.retransmits : attempts.length - 1;
    connects.push({ kind, attempts, result, retransmits, startMs, endMs, durationMs, pauseMs });
    prevEnd = endMs;
  });
  const last = connects.at(-1);
  const endMs: WindowMs = last ? plus(last.endMs, last.kind === 'fresh' && last.result !== 'timeout' ? [o.holdMs ?? 0, o.holdMs ?? 0] : [0, 0]) : [0, 0];
  if (!race) applyBefore(endMs[0]);
  pending = [];
  return { connects, requests: reqs.map((r) => r.life), endMs, ...(race ? { race } : {}) };
}
