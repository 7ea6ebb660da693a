/**
 * bandwidth — the target's egress is rate-limited: a tbf qdisc (token bucket) on its interface
 * toward the client, inside its namespace (`tc qdisc add … tbf rate R burst B limit L`).
 *
 * A client sees: what the target sends arrives at `rate`, after a first `burst` that passes at
 * once: N bytes of answer take (N + 66 bytes of headers per segment − burst) / rate. The target's
 * own TCP never overflows the queue (TCP Small Queues keeps only its next packets there) and never
 * resends a segment still waiting in it (skb_still_in_host_queue, TCPSpuriousRtxHostQueues): the
 * rate costs time, not packets. Its ACKs wait in the same queue behind its data — the queueing
 * delay the client feels, which can outlast the client's loss probe (2·srtt + 8 ms) and make it
 * resend in vain; a packet of another flow that meets a full queue would wait limit / rate at most.
 *
 * The transfer time is predicted for an answer of known size: the built-in echo returns the
 * client's N bytes. Any other server (nginx) answers what it answers (a 400 to the probe's bytes):
 * then the shaper's own counters (tc -s) prove the answer went through it, and no timing is claimed.
 */
import { z } from 'zod';
import { MAX_FRAME, maxQueueDelayMs, parseRate, predictShapedTransfer, type Tbf } from '../harness/model/rate.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';
import { settleMs } from '../harness/model/watch.js';
import { answersRequests } from './answers.js';
import { defineFault, type Expectation, type FaultContext, type Qdisc } from './define.js';

const MIN_RATE = 8_000;
const MAX_RATE = 10_000_000_000;

const params = z
  .object({
    rate: z.string().default('1mbit').describe('the target\'s egress rate, bits per second: 1mbit, 500kbit, 64000 (8kbit-10gbit)'),
    burst: z.coerce.number().int().min(MAX_FRAME).max(10_000_000).default(2 * MAX_FRAME).describe(`bucket size, bytes (at least one ${MAX_FRAME}-byte frame)`),
    limit: z.coerce.number().int().min(MAX_FRAME).max(100_000_000).default(1_000_000).describe('queue size, bytes (a packet finding it full is dropped)'),
    bytes: z.coerce.number().int().min(1).max(100_000).default(64_000).describe('bytes the client sends and the built-in echo returns through the shaper (1-100000: the buffers hold them)'),
  })
  .superRefine((p, ctx) => {
    const r = parseRate(p.rate);
    if (r === undefined) ctx.addIssue({ code: 'custom', path: ['rate'], message: `"${p.rate}" is not a rate: give bits per second, e.g. 1mbit, 500kbit, 64000` });
    else if (r < MIN_RATE || r > MAX_RATE) ctx.addIssue({ code: 'custom', path: ['rate'], message: `${p.rate} is out of range (8kbit-10gbit)` });
  });

type Params = z.infer<typeof params>;

function tbfOf(p: Params): Tbf {
  return { rateBitsPerS: parseRate(p.rate)!, burstBytes: p.burst, limitBytes: p.limit };
}

function shaper(p: Params): Qdisc {
  return { name: 'shape', side: 'server', kind: 'tbf', ...tbfOf(p) };
}

/** The echo's answer through the bucket: the N bytes back, with the echo's ACKs of them in the same queue. */
export function bandwidthPrediction({ params: p, clock }: FaultContext<Params>) {
  const t = tbfOf(p);
  const segments = Math.ceil(p.bytes / 1448);
  // The target ACKs the client's segments: every one of them piggybacked on the echo at best, one
  // pure ACK per segment at worst (quick ACKs). Wake-ups: the echo server's and the probe's.
  return { t, m: predictShapedTransfer(t, p.bytes, [0, segments], 2 * wakeupSlackMs(clock)) };
}

export const bandwidth = defineFault({
  name: 'bandwidth',
  summary: "the target's egress is rate-limited by a tbf qdisc (rate, burst, limit) on its interface toward the client",
  observes: 'an answer of N bytes takes (N + headers − burst) / rate; the target loses and resends nothing (TCP Small Queues keeps the queue short); tc -s shows the packets that waited',
  shapedBy: { server: ['net.ipv4.tcp_limit_output_bytes'] },
  params,
  needs: () => 'any',
  // Its rounds write a request and wait for an answer: the built-in echo server or an HTTP server gives one.
  refuseTarget: ({ traits }) => answersRequests(traits),
  mechanisms: () => ['tbf'],
  server: () => ({ mode: 'echo' }),
  fastSysctls: () => ({}),
  plan: ({ params: p }) => ({ qdiscs: [shaper(p)] }),
  expect: (ctx) => {
    const { params: p } = ctx;
    const { t, m } = bandwidthPrediction(ctx);
    const echo = ctx.server.mode === 'echo';
    const e: Expectation = {
      steps: { connect: { ok: true }, write: { ok: true, bytes: p.bytes } },
      states: { client: ['ESTABLISHED'], server: ['ESTABLISHED'] },
    };
    const rate = `${(t.rateBitsPerS / 1e6).toFixed(3).replace(/\.?0+$/, '')} Mbit/s`;
    if (echo) {
      e.steps.transfer = { ok: true, bytes: p.bytes, windowMs: m.windowMs };
      // Nothing lost, nothing resent by the target: a segment still in its own qdisc is never
      // retransmitted (tcp_retransmit_skb: skb_still_in_host_queue). The client's loss probe may
      // fire, though: its ACKs wait in the same queue behind the echo (the queueing delay).
      e.counters = { server: { TcpRetransSegs: 0 } };
      // The data's frames went through it (and the handshake's and teardown's, the ACKs: those are
      // not counted); the answer had to wait for tokens; nothing overflowed.
      e.rulesHit = { shape: { min: m.packets[0] }, 'shape:overlimits': m.wire.bytes > t.burstBytes ? { min: 1 } : 0, 'shape:drops': 0 };
      e.because = [
        `${p.bytes} B back in ${m.wire.segments} segments = ${m.wire.bytes} B of frames (+ up to ${m.extraBytes[1]} B of ACKs) at ${rate}, the first ${t.burstBytes} B at once: ` +
          `${(m.windowMs[0] / 1000).toFixed(3)}..${(m.windowMs[1] / 1000).toFixed(3)} s`,
        `no drop: the queue (${t.limitBytes} B, ${maxQueueDelayMs(t).toFixed(0)} ms at most) never fills with one local TCP sender`,
      ];
    } else {
      // Another server answers its own way (nginx: a 400 after the first bytes): no size, no timing.
      e.steps.transfer = { ok: true };
      e.rulesHit = { shape: { min: 1 }, 'shape:drops': 0 };
      e.because = [`this server's answer is not the probe's echo: its size is unknown, so no time is predicted; the shaper's counters (tc -s) show it went through ${rate}`];
    }
    return e;
  },
  script: (ctx, expected) => {
    const { params: p, watchIntervalMs } = ctx;
    const w = expected.steps.transfer?.windowMs;
    return [
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
      { op: 'write', label: 'write', bytes: p.bytes, timeoutMs: 5000 },
      // The echo's N bytes, or whatever another server answers first.
      ctx.server.mode === 'echo'
        ? { op: 'read', label: 'transfer', bytes: p.bytes, timeoutMs: Math.ceil(w ? w[1] : 0) + 2000 }
        : { op: 'read', label: 'transfer', timeoutMs: 10_000 },
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
    ];
  },
});
