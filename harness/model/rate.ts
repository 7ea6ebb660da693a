/**
 * A rate limit (the tbf qdisc, net/sched/sch_tbf.c): a bucket of `burst` bytes refilled at
 * `rate`; a packet leaves when the bucket holds its length in tokens (psched_l2t_ns: len · 8 /
 * rate seconds), else it waits in a FIFO of at most `limit` bytes (a packet that finds it full is
 * dropped). The bucket starts full. So N bytes on the wire take (N − burst) / rate once the queue
 * never runs dry — which a TCP sender on the same host guarantees: TCP Small Queues refills its
 * share of the queue as each packet leaves (tcp_wfree), so the qdisc always has the next one.
 * The length tbf charges is the frame's (qdisc_pkt_len: a GSO packet counts every segment's
 * headers; tbf_segment splits one larger than the bucket), so the model counts headers too.
 */

type Range = [number, number];

/** Ethernet (14) + IPv4 (20) + TCP with the timestamp option (32): each segment's frame overhead. */
export const FRAME_OVERHEAD = 66;
/** MSS on a 1500-byte MTU with timestamps: 1500 − 20 − 32 (the veths and Docker's bridge network). */
export const MSS_TS = 1448;
/** The largest frame on that MTU: tbf drops (or splits) a packet larger than its bucket. */
export const MAX_FRAME = 1514;

export interface Tbf {
  rateBitsPerS: number;
  burstBytes: number;
  limitBytes: number;
}

/** Segments and frame bytes of `payload` bytes of data, full-sized segments first. */
export function wireOf(payload: number, mss = MSS_TS): { segments: number; bytes: number } {
  const segments = Math.ceil(payload / mss);
  return { segments, bytes: payload + segments * FRAME_OVERHEAD };
}

/** Time (ms) for `bytes` on the wire through a full bucket, the queue never running dry. */
export function shapedMs(t: Tbf, bytes: number): number {
  return (Math.max(0, bytes - t.burstBytes) * 8 * 1000) / t.rateBitsPerS;
}

/** The most a packet can wait in the queue before it leaves: a full queue ahead of it. */
export function maxQueueDelayMs(t: Tbf): number {
  return (t.limitBytes * 8 * 1000) / t.rateBitsPerS;
}

export interface TransferPrediction {
  /** Frames of the data: segments and bytes. */
  wire: { segments: number; bytes: number };
  /** Other frames through the same queue in the meantime (pure ACKs), bytes: [fewest, most]. */
  extraBytes: Range;
  /** The transfer's duration, ms: the queue's drain, plus a wake-up for each side at the ends. */
  windowMs: Range;
  /** Packets the qdisc sends: [fewest, most]. */
  packets: Range;
}

/**
 * `payload` bytes through the bucket, with up to `extraFrames` pure ACKs (66 bytes each) sharing
 * the queue. Earliest: the data alone, less the full bucket; latest: the ACKs as well, with the
 * bucket's head start given back, and `slackMs` (wake-ups) on top.
 */
export function predictShapedTransfer(t: Tbf, payload: number, extraFrames: Range, slackMs: number): TransferPrediction {
  const wire = wireOf(payload);
  const extraBytes: Range = [extraFrames[0] * FRAME_OVERHEAD, extraFrames[1] * FRAME_OVERHEAD];
  return {
    wire,
    extraBytes,
    windowMs: [shapedMs(t, wire.bytes + extraBytes[0]), shapedMs({ ...t, burstBytes: 0 }, wire.bytes + extraBytes[1]) + slackMs],
    packets: [wire.segments + extraFrames[0], wire.segments + extraFrames[1]],
  };
}

const UNITS: Record<string, number> = { '': 1, bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/**
 * A rate as tc writes it, in bits per second: `1mbit`, `500kbit`, `64000bit`, `64000`. Bytes per
 * second (tc's `bps`, `kbps`…) are refused on purpose: half the world reads them as bits.
 */
export function parseRate(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit)?$/i.exec(s.trim());
  if (!m) return undefined;
  const v = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!;
  return Number.isFinite(v) ? Math.round(v) : undefined;
}
