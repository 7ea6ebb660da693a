/**
 * Small writes against a request/response server: Nagle on the client, the delayed ACK of a
 * server that has nothing to send until a request is complete, TCP_NODELAY and TCP_CORK.
 * Every number is cited from the kernel source or read from a sysctl; measured on 6.18 (HZ=250,
 * veth) — see ack.test.ts and suites/nagle-delack.test.ts.
 *
 * - Nagle (net/ipv4/tcp_output.c tcp_nagle_check, the Minshall variant): a segment shorter than
 *   the MSS waits while an earlier short segment is unacknowledged. The first write of a request
 *   goes out at once; the second waits for the ACK of the first.
 * - The server ACKs a short segment at once while it is not in *pingpong* (interactive) mode:
 *   in quick-ack mode (icsk_ack.quick, TCP_MAX_QUICKACKS = 16 ACKs from the first data; measured:
 *   16) or, past those, when its application reads the segment (tcp_cleanup_rbuf,
 *   ICSK_ACK_PUSHED). Measured: with pingpong never reached, 40 requests (80 short segments) are
 *   all ACKed at once — the 16 quick ACKs are not what hides the stall.
 * - Pingpong mode (include/net/inet_connection_sock.h inet_csk_in_pingpong_mode): the server sent
 *   data within `ato` of receiving some (tcp_output.c tcp_event_data_sent: a reply) at least
 *   `tcp_pingpong_thresh` times (default 1, 6.7+). In it, a short segment the application reads
 *   is not ACKed until the delayed-ACK timer: TCP_DELACK_MIN = TCP_ATO_MIN = HZ/25 jiffies (40 ms;
 *   tcp_send_delayed_ack bounds a larger ato by max(srtt, TCP_DELACK_MIN), and srtt on a LAN is
 *   far below). When that timer fires in pingpong mode it leaves pingpong mode
 *   (tcp_timer.c tcp_delack_timer_handler, TcpExtDelayedACKs); the next reply counts again.
 * - TCP_NODELAY: no Nagle; both writes go at once, the request is complete, the reply carries the
 *   ACK. TCP_CORK: nothing shorter than the MSS goes out while corked; uncorking pushes the
 *   request as one segment. Left corked with nothing in flight, the data waits for the zero-window
 *   probe timer (tcp_check_probe_timer, tcp_probe0_base = max(RTO, TCP_RTO_MIN)), whose
 *   tcp_write_wakeup sends it regardless of the cork: the "200 ms ceiling" of tcp(7).
 */
import { initialRtoJiffies } from './data.js';
import { TCP_RTO_MIN_MS, wakeupSlackMs } from './tcp.js';
import { chainWindowMs, jiffiesToMs, msToJiffies, type KernelClock } from './timer-wheel.js';

export const NAGLE_VARIANTS = ['nagle', 'nodelay', 'cork', 'cork-held'] as const;
export type NagleVariant = (typeof NAGLE_VARIANTS)[number];

/** include/net/tcp.h: TCP_DELACK_MIN = TCP_ATO_MIN = HZ/25 (integer division), in jiffies. */
export function delayedAckJiffies(clock: KernelClock): number {
  return Math.floor(clock.hz / 25);
}

/** The zero-window probe timer that releases corked data: max(icsk_rto, TCP_RTO_MIN), in jiffies. */
export function probe0Jiffies(rtoMinMs: number, clock: KernelClock): number {
  return Math.max(initialRtoJiffies(rtoMinMs, clock), msToJiffies(TCP_RTO_MIN_MS, clock.hz));
}

export type RequestHold = 'none' | 'delayed-ack' | 'probe-timer';

export interface RequestReplyPrediction {
  /** Per request, in order: what holds it (its second write, or both while corked). */
  holds: RequestHold[];
  /** Per request: from its first write's start to its reply, ms (the timer, its wheel lateness, two wake-ups). */
  windowsMs: [number, number][];
  /** The server's TcpExtDelayedACKs: one per request held by a delayed ACK. */
  delayedAcks: number;
  /** The client's data segments per request: two writes, or one corked segment. */
  segmentsPerRequest: 1 | 2;
  delayedAckMs: number;
  probeTimerMs: number;
}

export interface RequestReplyOptions {
  variant: NagleVariant;
  requests: number;
  /** The server's net.ipv4.tcp_pingpong_thresh. */
  pingpongThresh: number;
  /** The client's net.ipv4.tcp_rto_min_us, in ms. */
  rtoMinMs: number;
}

export function predictRequestReply(o: RequestReplyOptions, clock: KernelClock): RequestReplyPrediction {
  const delayedAckMs = jiffiesToMs(delayedAckJiffies(clock), clock.hz);
  const probeTimerMs = jiffiesToMs(probe0Jiffies(o.rtoMinMs, clock), clock.hz);
  // Two processes are on a reply's path, each woken once: the server's application (it reads the
  // completed request and writes the reply) and then the probe (it reads the reply).
  const wakeupsMs = 2 * wakeupSlackMs(clock);
  const timed = (ms: number): [number, number] => {
    const [lo, hi] = chainWindowMs([ms], clock);
    return [lo, hi + wakeupsMs];
  };
  const holds: RequestHold[] = [];
  let pingpong = 0;
  for (let k = 0; k < o.requests; k++) {
    if (o.variant === 'cork-held') holds.push('probe-timer');
    else if (o.variant === 'nagle' && pingpong >= o.pingpongThresh) {
      holds.push('delayed-ack');
      // The delayed-ACK timer fired in pingpong mode: it left pingpong mode.
      pingpong = 0;
    } else holds.push('none');
    // The reply goes out at once, within ato of the request: one more towards pingpong mode.
    pingpong++;
  }
  return {
    holds,
    windowsMs: holds.map((h) => (h === 'delayed-ack' ? timed(delayedAckMs) : h === 'probe-timer' ? timed(probeTimerMs) : [0, wakeupsMs])),
    delayedAcks: holds.filter((h) => h === 'delayed-ack').length,
    segmentsPerRequest: o.variant === 'cork' || o.variant === 'cork-held' ? 1 : 2,
    delayedAckMs,
    probeTimerMs,
  };
}
