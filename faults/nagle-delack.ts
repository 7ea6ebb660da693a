/**
 * nagle-delack — a client writes each request in two small writes, then reads the reply, on one
 * connection to a server that replies only once a request is complete (the built-in
 * `request-reply` server, or any HTTP server: the request is `HEAD / HTTP/1.1`).
 *
 * A client observes, with Nagle on (the default): the first request is answered at once; from the
 * second on each reply takes the server's delayed-ACK timer, 40-44 ms (HZ/25 jiffies, on the
 * timer wheel), for a request that is two segments on a LAN. Nagle holds the second write until
 * the first is ACKed; the server has nothing to send until the request is complete and, once its
 * first reply made the connection interactive (pingpong mode, `tcp_pingpong_thresh` replies),
 * delays that ACK. The server counts each such ACK (TcpExtDelayedACKs). With TCP_NODELAY both
 * writes leave at once: no stall. With TCP_CORK around the two writes (`cork`) the request leaves
 * as one segment when uncorked: no stall. Left corked (`cork-held`), a request smaller than the
 * MSS waits for the zero-window probe timer — max(RTO, TCP_RTO_MIN), 204-208 ms here — which
 * sends it regardless of the cork. A counting rule on the client's OUTPUT proves how many data
 * segments each request took (two, or one corked).
 *
 * Where this kernel differs from the seeds: seed 003 (and tcp(7)) give 200 ms as Nagle's and
 * TCP_CORK's timeout. On 6.18 the delayed ACK a Nagle stall waits for is 40 ms
 * (TCP_DELACK_MIN = TCP_ATO_MIN = HZ/25; a larger ato is bounded by max(srtt, 40 ms)), not 200;
 * it starts with the second request, not the first (the first reply enters pingpong mode;
 * tcp_pingpong_thresh, 6.7+, default 1, sets how many replies that takes and how many requests
 * pass between stalls, since the delayed ACK leaves pingpong mode); quick-ack mode's 16 ACKs do
 * not hide it (the server also ACKs a short segment as its application reads it, until pingpong).
 * The cork's "200 ms" is the probe timer, which follows the connection's RTO (204 ms = 51
 * jiffies on a fresh LAN connection at HZ=250), not a fixed ceiling.
 */
import { access } from 'node:fs/promises';
import { z } from 'zod';
import { delayedAckJiffies, NAGLE_VARIANTS, predictRequestReply } from '../harness/model/ack.js';
import { TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { settleMs } from '../harness/model/watch.js';
import { EnvironmentError } from '../harness/core/errors.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, stepTimeoutMs, type Expectation, type FaultContext, type StepExpectation } from './define.js';

/** One request, in two writes: the request line and header (a short segment), then the blank line that completes it. */
export const REQUEST_HEAD = 'HEAD / HTTP/1.1\r\nHost: harness\r\n';
export const REQUEST_END = '\r\n';

const PINGPONG_SYSCTL = 'net.ipv4.tcp_pingpong_thresh';

const params = z.object({
  variant: z
    .enum(NAGLE_VARIANTS)
    .default('nagle')
    .describe('nagle: Nagle on; nodelay: TCP_NODELAY; cork: TCP_CORK around the two writes, uncorked before the read; cork-held: TCP_CORK never lifted'),
  requests: z.coerce.number().int().min(1).max(50).default(4).describe('requests on one connection (the first is answered at once)'),
});
type Params = z.infer<typeof params>;

/** The model's prediction from the sysctls in force: what holds each request, and for how long. */
export function requestReplies({ params: p, sysctls, clock }: FaultContext<Params>) {
  const pingpongThresh = Number(sysctls.server[PINGPONG_SYSCTL] ?? 1);
  const rtoMinMs = Number(sysctls.client['net.ipv4.tcp_rto_min_us'] ?? TCP_RTO_MIN_MS * 1000) / 1000;
  return { pingpongThresh, m: predictRequestReply({ variant: p.variant, requests: p.requests, pingpongThresh, rtoMinMs }, clock) };
}

export const nagleDelack = defineFault({
  name: 'nagle-delack',
  summary: 'write-write-read on one connection to a server that replies only to complete requests (Nagle on, TCP_NODELAY, TCP_CORK)',
  observes: 'Nagle: from the second request on, each reply waits for the server\'s delayed ACK (40 ms); TCP_NODELAY or an uncorked TCP_CORK: no wait; held TCP_CORK: the probe timer (~204 ms)',
  shapedBy: { server: [PINGPONG_SYSCTL], client: ['net.ipv4.tcp_rto_min_us'] },
  params,
  server: () => ({ mode: 'request-reply' }),
  // Which servers can answer whole requests is the targets' traits (refuseTarget below).
  needs: () => 'any',
  fastSysctls: () => ({}),
  // Every data segment the client sends carries PSH (tcp_push marks the end of each write; the
  // probe timer's tcp_write_wakeup sets it too): counting them counts the request's segments.
  plan: ({ endpoints }) => ({
    rules: [{ name: 'client-data', side: 'client', hook: 'OUTPUT', proto: 'tcp', tcp: { dport: endpoints.port, flags: { mask: ['PSH'], set: ['PSH'] } }, target: { kind: 'ACCEPT' } }],
  }),
  refuseTarget: ({ traits }) => {
    if (traits?.builtinModes === 'any' || traits?.http) return undefined;
    const modes = traits?.builtinModes ?? [];
    return modes.length
      ? `its server is the built-in ${modes.join('/')} mode, which answers every segment as it comes; nagle-delack needs one that replies only once a request is complete`
      : 'its server is not known to reply only once a request is complete (the built-in request-reply server, or an HTTP server)';
  },
  check: async () => {
    // The model reads the pingpong threshold; before 6.7 it was compiled in (3 on 5.1-5.17, then 1).
    await access(`/proc/sys/${PINGPONG_SYSCTL.replaceAll('.', '/')}`).catch(() => {
      throw new EnvironmentError('E_KERNEL', `nagle-delack: this kernel has no ${PINGPONG_SYSCTL} (Linux < 6.7), which the delayed-ACK model reads`, 'run it on Linux 6.7 or later');
    });
  },
  expect: (ctx): Expectation => {
    const { pingpongThresh, m } = requestReplies(ctx);
    const steps: Record<string, StepExpectation> = { connect: { ok: true } };
    m.windowsMs.forEach((windowMs, i) => {
      steps[`request-${i + 1}`] = { ok: true };
      steps[`reply-${i + 1}`] = { ok: true, eof: false, windowMs, fromStep: `request-${i + 1}` };
    });
    const held = (h: string) => m.holds.flatMap((x, i) => (x === h ? [i + 1] : []));
    const list = (ks: number[]) => (ks.length ? ks.join(', ') : 'none');
    return {
      steps,
      states: { client: ['ESTABLISHED'], server: ['ESTABLISHED'] },
      counters: { server: { TcpExtDelayedACKs: m.delayedAcks } },
      rulesHit: { 'client-data': m.segmentsPerRequest * ctx.params.requests },
      because: [
        {
          nagle: `Nagle holds each second write until the first is ACKed; the server delays that ACK once in pingpong mode (tcp_pingpong_thresh ${pingpongThresh}): requests ${list(held('delayed-ack'))} wait ${m.delayedAckMs} ms (TCP_DELACK_MIN = HZ/25 = ${delayedAckJiffies(ctx.clock)} jiffies)`,
          nodelay: 'TCP_NODELAY: both writes leave at once, the complete request is answered at once',
          cork: 'TCP_CORK around the writes: uncorking sends the request as one segment, answered at once',
          'cork-held': `TCP_CORK never lifted: each request waits for the zero-window probe timer, ${m.probeTimerMs} ms (max(RTO, TCP_RTO_MIN)), which sends it anyway`,
        }[ctx.params.variant],
        `${m.segmentsPerRequest} data segment${m.segmentsPerRequest > 1 ? 's' : ''} per request; server delayed ACKs: ${m.delayedAcks}`,
      ],
    };
  },
  script: (ctx, expected): ClientStep[] => {
    const p = ctx.params;
    const steps: ClientStep[] = [];
    if (p.variant === 'nodelay') steps.push({ op: 'setsockopt', opt: 'NODELAY', value: 1 });
    if (p.variant === 'cork-held') steps.push({ op: 'setsockopt', opt: 'CORK', value: 1 });
    steps.push({ op: 'connect', label: 'connect', timeoutMs: 5000 });
    for (let k = 1; k <= p.requests; k++) {
      if (p.variant === 'cork') steps.push({ op: 'setsockopt', opt: 'CORK', value: 1 });
      steps.push({ op: 'write', label: `request-${k}`, data: REQUEST_HEAD, timeoutMs: 2000 }, { op: 'write', data: REQUEST_END, timeoutMs: 2000 });
      if (p.variant === 'cork') steps.push({ op: 'setsockopt', opt: 'CORK', value: 0 });
      steps.push({ op: 'read', label: `reply-${k}`, timeoutMs: stepTimeoutMs(expected.steps[`reply-${k}`]) });
    }
    // Let both watchers see the connection before the client closes it.
    steps.push({ op: 'sleep', ms: settleMs(ctx.watchIntervalMs) }, { op: 'close' });
    return steps;
  },
});
