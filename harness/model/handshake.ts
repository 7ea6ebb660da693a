/**
 * The passive side of the handshake: the request socket's SYN-ACK timer, the SYN ("half-open")
 * queue and the accept queue, from the sysctls in force. Every rule cites the kernel function it
 * comes from (Linux 6.18; where older kernels — the seeds' CentOS 7 3.10 — differ, it says so).
 */
import { TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, TCP_TIMEOUT_INIT_MS } from './tcp.js';
import { chainWindowMs, type KernelClock } from './timer-wheel.js';

/**
 * A connect answered by the first SYN-ACK finishes before the first SYN retransmission would have
 * fired (TCP_TIMEOUT_INIT): the bound that says "at once" without a wake-up allowance, which a
 * loaded 2-core machine can exceed (softirq work deferred to ksoftirqd: tens of ms measured).
 */
export const FIRST_SYN_WINDOW_MS: [number, number] = [0, TCP_TIMEOUT_INIT_MS];

/**
 * A reply to a data segment (RST, or the handshake it completes) arrives before the sender's first
 * retransmission of that segment, which an RTO of at least TCP_RTO_MIN would take.
 */
export const FIRST_DATA_WINDOW_MS: [number, number] = [0, TCP_RTO_MIN_MS];

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
