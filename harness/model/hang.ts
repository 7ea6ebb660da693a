/**
 * A peer whose application is frozen while its kernel runs (app-hang): it accepts nothing, reads
 * nothing, writes nothing, but its TCP keeps answering. What a writer sees is decided by the two
 * buffers between them, and what it can notice by which timer is still armed:
 *
 * - the frozen side's receive queue fills to its receive buffer, its window goes to zero;
 * - the writer's send queue fills to its send buffer, and write() stops (EAGAIN);
 * - the writer's persist timer sends zero-window probes, with backoff, and each is answered: a
 *   connection with a closed window lives for ever (RFC 1122 4.2.2.17), unless TCP_USER_TIMEOUT
 *   is set — this kernel then aborts it that long after the first probe, answered or not;
 * - keepalive only runs on a socket with nothing to send, and its probes are answered too.
 *
 * Every bound below cites the kernel rule it comes from (net/ipv4/tcp_output.c, tcp_timer.c,
 * tcp_input.c, net/core/sock.c, include/net/sock.h); measured on 6.18 (HZ=250, veth): see
 * hang.test.ts.
 */
import { TCP_RTO_MIN_MS, wakeupSlackMs } from './tcp.js';
import { rtoAfterHandshakeMs } from './teardown.js';
import { jiffiesToMs, msToJiffies, timerSlackMs, type KernelClock } from './timer-wheel.js';

/** include/net/tcp.h TCP_DELACK_MAX (HZ/5): the longest a receiver holds an ACK back. */
export const TCP_DELACK_MAX_MS = 200;
/** include/net/tcp.h TCP_ATO_MIN (HZ/25): the delayed-ACK timeout a short exchange never grows past. */
export const TCP_ATO_MIN_MS = 40;
/** The largest segment TCP hands a veth (GSO_LEGACY_MAX_SIZE, sk_gso_max_size): tcp_xmit_size_goal's cap. */
export const GSO_MAX_BYTES = 65_536;
/** include/net/sock.h SOCK_MIN_SNDBUF: 2 × (2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))). */
export const SOCK_MIN_SNDBUF = 4608;
/** Per-skb truesize overhead the queues carry besides payload, allowed for in the lower bounds: four MSS (measured: 1.6–5 KB). */
const OVERHEAD_MSS = 4;

export interface BufferSysctls {
  /** The frozen side's net.ipv4.tcp_rmem (min default max). */
  rmem: [number, number, number];
  /** net.core.rmem_max (host-global, read-only in a namespace). */
  rmemMax: number;
  /** net.core.wmem_max: caps SO_SNDBUF. */
  wmemMax: number;
}

export function bufferSysctlsFrom(client: Record<string, string | undefined>, server: Record<string, string | undefined>): BufferSysctls {
  const triple = (v: string | undefined): [number, number, number] => {
    const n = (v ?? '4096 131072 6291456').trim().split(/\s+/).map(Number);
    return [n[0] ?? 4096, n[1] ?? 131072, n[2] ?? 6291456];
  };
  return {
    rmem: triple(server['net.ipv4.tcp_rmem']),
    rmemMax: Number(server['net.core.rmem_max'] ?? 212_992),
    wmemMax: Number(client['net.core.wmem_max'] ?? 212_992),
  };
}

/** The hung side's receive buffer: tcp_rmem[1] (tcp_init_sock; autotuning, tcp_rcv_space_adjust, runs only when the application reads). */
export function frozenRcvbuf(b: BufferSysctls): number {
  return b.rmem[1];
}

/** The writer's send buffer after setsockopt(SO_SNDBUF, v): 2 × min(v, wmem_max), at least SOCK_MIN_SNDBUF, locked (no autotuning). */
export function lockedSndbuf(soSndbuf: number, b: BufferSysctls): number {
  return Math.max(2 * Math.min(soSndbuf, b.wmemMax), SOCK_MIN_SNDBUF);
}

/** The receive window's scale (tcp_select_initial_window): enough to announce max(tcp_rmem[2], rmem_max), at most 14. */
export function rcvWscale(b: BufferSysctls): number {
  const space = Math.max(b.rmem[2], b.rmemMax);
  return Math.min(14, Math.max(0, Math.floor(Math.log2(space)) - 15));
}

export interface FillPrediction {
  rcvbufBytes: number;
  sndbufBytes: number;
  /** Payload the frozen side's kernel accepts (its receive queue; the writer's tcpi_bytes_acked − 1). */
  acceptedBytes: [number, number];
  /** Payload left in the writer's send queue when write() stops for good (tcpi_notsent_bytes). */
  queuedBytes: [number, number];
  /** What write() accepted in all: the sum. */
  writtenBytes: [number, number];
  /** The nominal figure: a full receive buffer and a full send buffer. */
  nominalBytes: number;
  because: string;
}

/**
 * How much a writer can write to a peer that stopped reading, before write() returns EAGAIN
 * for good:
 * - accepted, at most rcvbuf (+ one window-scale unit of rounding): the window __tcp_select_window
 *   offers is the free space of the receive buffer, and the right edge it announces never passes
 *   what the buffer holds (payload ≤ sk_rmem_alloc, which counts truesize); at least
 *   15/16 of it, less the skb overhead: it announces a zero window only once the free space is
 *   below 1/16 of the buffer or an MSS ("if free space is less than mss estimate, or is below
 *   1/16th of the maximum allowed, try to move to zero-window");
 * - queued, at most sndbuf + one skb: tcp_sendmsg_locked checks sk_stream_memory_free only before
 *   it starts a new skb, and fills that one to the size goal (tcp_xmit_size_goal: the GSO size,
 *   bounded by half the largest window the peer offered, tcp_bound_to_half_wnd); at least two
 *   thirds of sndbuf, less the overhead: a blocked writer is woken (EPOLLOUT, sk_stream_write_space)
 *   only once the queue drops to 2/3 of sndbuf (sk_stream_min_wspace is half the queue), so a
 *   queue that ended above that was never refilled — and one below it would have been.
 */
export function predictFill(b: BufferSysctls, soSndbuf: number, mss: number): FillPrediction {
  const rcv = frozenRcvbuf(b);
  const snd = lockedSndbuf(soSndbuf, b);
  const overhead = OVERHEAD_MSS * mss;
  const accepted: [number, number] = [Math.floor((rcv * 15) / 16) - overhead, rcv + (1 << rcvWscale(b))];
  const sizeGoal = Math.floor(Math.min(GSO_MAX_BYTES, rcv / 2) / mss) * mss;
  const queued: [number, number] = [Math.floor((snd * 2) / 3) - overhead, snd + sizeGoal];
  return {
    rcvbufBytes: rcv,
    sndbufBytes: snd,
    acceptedBytes: accepted,
    queuedBytes: queued,
    writtenBytes: [accepted[0] + queued[0], accepted[1] + queued[1]],
    nominalBytes: rcv + snd,
    because:
      `receive buffer ${rcv} B (server tcp_rmem[1]: nobody reads, so no autotuning), send buffer ${snd} B (2 × SO_SNDBUF ${soSndbuf}, locked): ` +
      `the server's kernel accepts ${accepted[0]}..${accepted[1]} B, the client's queue holds ${queued[0]}..${queued[1]} B, write() stops after ${accepted[0] + queued[0]}..${accepted[1] + queued[1]} B`,
  };
}

export interface ZeroWindowSchedule {
  /** tcp_probe0_base: max(RTO, TCP_RTO_MIN) when the window closed, ms (range). */
  baseMs: [number, number];
  /** From the writer's first write to the ACK that closes the window with nothing in flight (the persist timer starts then). */
  closedByMs: [number, number];
  /** When probe k (1-based) goes out, ms from the first write: [on time from the earliest close, latest]. */
  probeAtMs(k: number): [number, number];
}

/**
 * The persist timer (tcp_check_probe_timer → tcp_probe_timer → tcp_send_probe0): armed with
 * tcp_probe0_base = max(icsk_rto, TCP_RTO_MIN) once nothing is in flight and the window is zero;
 * each probe (tcp_write_wakeup, TcpExtTCPWinProbe) doubles the interval (icsk_backoff), and an
 * answer with the window still zero re-arms it backed off (tcp_ack_probe). The RTO then: the
 * handshake's (rto_min + a jiffy) up to rto_min + TCP_ATO_MIN (RTT samples on a veth are µs,
 * except ACKs the receiver delayed, and a short exchange keeps ato at its minimum; measured 212 ms).
 * The window closes at most TCP_DELACK_MAX after the data left (the receiver's last ACK).
 */
export function zeroWindowSchedule(rtoMinUs: number, rtoMaxMs: number, clock: KernelClock): ZeroWindowSchedule {
  const j = jiffiesToMs(1, clock.hz);
  const lo = Math.max(rtoAfterHandshakeMs(rtoMinUs, rtoMaxMs, clock), TCP_RTO_MIN_MS);
  const hi = jiffiesToMs(msToJiffies(rtoMinUs / 1000 + TCP_ATO_MIN_MS, clock.hz), clock.hz) + j;
  const closedByMs: [number, number] = [0, TCP_DELACK_MAX_MS + 2 * j];
  return {
    baseMs: [lo, hi],
    closedByMs,
    probeAtMs(k: number): [number, number] {
      let early = closedByMs[0];
      let late = closedByMs[1];
      for (let i = 0; i < k; i++) {
        // The first timer is armed mid-jiffy: up to a jiffy early in real time; each later one from the timer itself.
        early += lo * 2 ** i - (i === 0 ? j : 0);
        late += hi * 2 ** i + timerSlackMs(hi * 2 ** i, clock);
      }
      return [early, late];
    },
  };
}

/** How many of a schedule's events (each at [early, late] from the same start) fall in [0, sureByMs] for sure, and at most by `mayByMs`. */
export function countBy(at: (k: number) => [number, number], sureByMs: number, mayByMs: number, max = 64): [number, number] {
  let sure = 0;
  let may = 0;
  for (let k = 1; k <= max; k++) {
    const [early, late] = at(k);
    if (late <= sureByMs) sure = k;
    if (early <= mayByMs) may = k;
  }
  return [sure, may];
}

export interface UserTimeoutPrediction {
  errno: 'ETIMEDOUT';
  /** From the first write to the abort. */
  windowMs: [number, number];
  /** Zero-window probes sent before the abort (TcpExtTCPWinProbe). */
  probes: [number, number];
  because: string;
}

/**
 * TCP_USER_TIMEOUT against a closed window, as this kernel does it (tcp_probe_timer since
 * "tcp: fix TCP_USER_TIMEOUT with zero window", 5.11): the first persist-timer firing stamps
 * icsk_probes_tstamp; an answer that leaves the window zero does not reset it (only a window that
 * opens does, tcp_ack_probe); each later timer is clamped to the time left
 * (tcp_clamp_probe0_to_user_timeout), and the firing at tstamp + user_timeout aborts: ETIMEDOUT,
 * TcpExtTCPAbortOnTimeout, answered probes or not. So: window closed + probe0 base + user timeout.
 */
export function predictZeroWindowUserTimeout(userTimeoutMs: number, s: ZeroWindowSchedule, clock: KernelClock): UserTimeoutPrediction {
  const j = jiffiesToMs(1, clock.hz);
  const windowMs: [number, number] = [
    s.closedByMs[0] + s.baseMs[0] - j + userTimeoutMs,
    s.closedByMs[1] + s.baseMs[1] + timerSlackMs(s.baseMs[1], clock) + userTimeoutMs + timerSlackMs(userTimeoutMs, clock) + wakeupSlackMs(clock),
  ];
  // Probes after the first: each 2^i × base after the previous (late by up to its wheel slack), while before tstamp + user timeout.
  const countFor = (base: number, late: boolean): number => {
    let n = 1;
    let t = 0;
    for (let i = 1; i < 64; i++) {
      t += base * 2 ** i + (late ? timerSlackMs(base * 2 ** i, clock) : 0);
      if (t >= userTimeoutMs) break;
      n++;
    }
    return n;
  };
  const a = countFor(s.baseMs[1], true);
  const b = countFor(s.baseMs[0], false);
  return {
    errno: 'ETIMEDOUT',
    windowMs,
    probes: [Math.min(a, b), Math.max(a, b)],
    because:
      `TCP_USER_TIMEOUT ${userTimeoutMs} ms against a zero window: the clock starts at the first zero-window probe (probe0 base ${s.baseMs[0]}..${s.baseMs[1]} ms after the window closed) ` +
      `and answers that keep the window shut do not stop it (tcp_probe_timer, icsk_probes_tstamp): ETIMEDOUT ${windowMs[0].toFixed(0)}..${windowMs[1].toFixed(0)} ms after the first write, ` +
      `after ${a === b ? a : `${Math.min(a, b)}..${Math.max(a, b)}`} answered probes`,
  };
}

export interface KeepaliveAnsweredPrediction {
  /** Keepalive probes sent within the observation (TcpExtTCPKeepAlive): more than KEEPCNT proves they were answered. */
  probes: [number, number];
  because: string;
}

/**
 * Keepalive against a peer whose kernel answers (tcp_keepalive_timer): the first probe goes
 * `idle` after the last segment received; each answer refreshes rcv_tstamp and resets
 * icsk_probes_out, so the next one goes max(idle, intvl) later (a timer armed for intvl finds the
 * connection idle for less than `idle` when idle > intvl, and re-arms for the rest) and the count
 * never reaches KEEPCNT: the connection is never dropped. Counted over `observeMs` from the last
 * segment received.
 */
export function predictKeepaliveAnswered(idleS: number, intvlS: number, cnt: number, observeMs: number, clock: KernelClock): KeepaliveAnsweredPrediction {
  const j = jiffiesToMs(1, clock.hz);
  const idle = idleS * 1000;
  const period = Math.max(idle, intvlS * 1000);
  const at = (k: number): [number, number] => {
    // First probe: the timer re-armed for what is left of `idle` (up to a jiffy early in real time, as late as its wheel level).
    let early = idle - j;
    let late = idle + timerSlackMs(idle, clock) + j;
    for (let i = 1; i < k; i++) {
      early += period;
      late += period + timerSlackMs(period, clock) + j;
    }
    return [early, late];
  };
  const probes = countBy(at, observeMs, observeMs + wakeupSlackMs(clock));
  return {
    probes,
    because:
      `SO_KEEPALIVE idle ${idleS} s, interval ${intvlS} s, count ${cnt}: unanswered it would drop the connection after ${idleS + cnt * intvlS} s; ` +
      `the frozen server's kernel answers each probe, so it sends ${probes[0] === probes[1] ? probes[0] : `${probes[0]}..${probes[1]}`} in ${(observeMs / 1000).toFixed(1)} s and the connection stays ESTABLISHED`,
  };
}
