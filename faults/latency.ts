/**
 * latency — every packet between client and target is held for a while (optionally with jitter,
 * optionally one direction only): a far-away server, a congested path, a latency spike.
 *
 * How: an iptables rule in the receiving namespace sends the connection's packets to NFQUEUE; the
 * probe's delayer (`harness-probe delay`, started in that namespace, journaled and killed on
 * revert) holds each one for the delay and releases them in arrival order. Delaying on the
 * receiver's INPUT hook, not the sender's OUTPUT, keeps the sender's socket out of it: a packet
 * held in the sender's own stack would still count against its TCP Small Queues budget and
 * throttle it, which no real network does.
 *
 * A client sees (`--set when=`):
 * - `connect` (default): connect() takes one round trip (the delays of both directions); so does
 *   each request/response. TCP_INFO shows the round trip as rtt, and an RTO of srtt + max(2·srtt,
 *   rto_min) after the handshake — three round trips once 2·RTT exceeds rto_min — shrinking toward
 *   srtt + rto_min with each further sample. No retransmission: the RTO always exceeds the round trip.
 * - `established`: the delay starts after the handshake, so the connection still has the bare
 *   veth's RTO (204 ms at HZ=250). A round trip longer than that makes the loss probe and RTOs
 *   fire before the answer comes back: spurious retransmissions (TcpRetransSegs, TCPLossProbes,
 *   TCPTimeouts), undone when the DSACKs show nothing was lost. The answer itself still comes
 *   after one round trip; its timestamp sample (Karn forbids the sequence one) lifts the RTO above
 *   the new round trip.
 * The server side sees the same delays (its states and counters are observed too).
 */
import { z } from 'zod';
import { dataSysctlsFrom } from '../harness/model/data.js';
import { DATA_SYSCTLS, TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { predictLatency, type LatencyPrediction } from '../harness/model/rtt.js';
import { countRange } from '../harness/model/teardown.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import type { Rule } from './iptables.js';
import { answersRequests } from './answers.js';
import { defineFault, type CounterExpectation, type Expectation, type FaultContext, type ProcessStep } from './define.js';

/** The NFQUEUE queue the delayer binds (queues are per namespace; each delayed side has its own). */
export const DELAY_QUEUE = 4042;

const DIRECTIONS = ['both', 'to-server', 'to-client'] as const;

const params = z
  .object({
    delayMs: z.coerce.number('must be a number of ms').int().min(1, 'must be at least 1 ms (0 adds nothing)').max(10_000, 'must be at most 10000 ms').default(100).describe('added one-way delay of each delayed direction, ms (1-10000)'),
    jitterMs: z.coerce.number('must be a number of ms').int().min(0, 'must not be negative').max(10_000).default(0).describe('each hold is delayMs ± this (uniform; packets stay in order), ms'),
    direction: z.enum(DIRECTIONS).default('both').describe('which way packets are delayed: both, to-server (client → target) or to-client'),
    when: z.enum(['connect', 'established']).default('connect').describe('connect: delayed from the first SYN; established: only after the handshake (a spike the RTO has not seen)'),
    rounds: z.coerce.number().int().min(1).max(100).default(1).describe('request/response rounds (more than 1 needs a server that answers each: the built-in echo)'),
    bytes: z.coerce.number().int().min(1).max(1400).default(100).describe('bytes per request (one segment)'),
  })
  .superRefine((p, ctx) => {
    if (p.jitterMs > p.delayMs) ctx.addIssue({ code: 'custom', path: ['jitterMs'], message: `must not exceed delayMs (${p.delayMs}): a packet cannot leave before it came` });
    const dirs = p.direction === 'both' ? 2 : 1;
    // The handshake must not outlast the SYN's initial RTO (TCP_TIMEOUT_INIT, 1 s), allowing the
    // delayers' wake-ups (2 jiffies each at HZ=100): a retransmitted SYN leaves no RTT sample.
    if (p.when === 'connect' && dirs * (p.delayMs + p.jitterMs) > TCP_TIMEOUT_INIT_MS - 100) {
      ctx.addIssue({
        code: 'custom',
        path: ['delayMs'],
        message: `a round trip of ${dirs * (p.delayMs + p.jitterMs)} ms from the first SYN would outlast the SYN's 1 s initial RTO (the model stops there); keep ${dirs === 2 ? '2 × ' : ''}(delayMs + jitterMs) <= ${TCP_TIMEOUT_INIT_MS - 100}, or use when=established`,
      });
    }
  });

type Params = z.infer<typeof params>;

function oneWay(p: Params): { toServerMs: number; toClientMs: number } {
  return { toServerMs: p.direction === 'to-client' ? 0 : p.delayMs, toClientMs: p.direction === 'to-server' ? 0 : p.delayMs };
}

/** The model's prediction for this run (one place for expect() and script()). */
export function latencyPrediction({ params: p, sysctls, clock }: FaultContext<Params>): LatencyPrediction {
  return predictLatency({ ...oneWay(p), jitterMs: p.jitterMs, when: p.when, rounds: p.rounds }, dataSysctlsFrom(sysctls.client, sysctls.server), clock, wakeupSlackMs(clock));
}

/** The NFQUEUE rules: on the receiving side's INPUT, the connection's packets of each delayed direction. */
function delayRules({ params: p, endpoints }: FaultContext<Params>): Rule[] {
  const d = oneWay(p);
  const rules: Rule[] = [];
  if (d.toServerMs) rules.push({ name: 'delay-to-server', side: 'server', hook: 'INPUT', proto: 'tcp', src: endpoints.clientAddress, tcp: { dport: endpoints.port }, target: { kind: 'NFQUEUE', queue: DELAY_QUEUE } });
  if (d.toClientMs) rules.push({ name: 'delay-to-client', side: 'client', hook: 'INPUT', proto: 'tcp', src: endpoints.address, tcp: { sport: endpoints.port }, target: { kind: 'NFQUEUE', queue: DELAY_QUEUE } });
  return rules;
}

const range = (r: readonly [number, number]): CounterExpectation => countRange(r);
const fmt = (r: readonly [number, number], unit = 'ms', div = 1) => (r[0] === r[1] ? `${(r[0] / div).toFixed(1)} ${unit}` : `${(r[0] / div).toFixed(1)}..${(r[1] / div).toFixed(1)} ${unit}`);
const count = (r: readonly [number, number], what: string) => `${r[0] === r[1] ? r[0] : `${r[0]}..${r[1]}`} ${what}`;

export const latency = defineFault({
  name: 'latency',
  summary: "every packet of the connection is held for delayMs (± jitter) on its way, by the probe's NFQUEUE delayer in the receiving namespace",
  observes: 'connect and each request take one round trip; TCP_INFO rtt = the round trip, RTO = srtt + max(2·srtt, rto_min); a delay that starts after the handshake and exceeds the RTO causes spurious retransmissions',
  shapedBy: { client: DATA_SYSCTLS, server: ['net.ipv4.tcp_sack'] },
  params,
  needs: () => 'any',
  // Its rounds write a request and wait for an answer: the built-in echo server or an HTTP server gives one.
  refuseTarget: ({ traits }) => answersRequests(traits),
  mechanisms: () => ['nfqueue'],
  server: () => ({ mode: 'echo' }),
  fastSysctls: () => ({}),
  plan: (ctx) => {
    const d = oneWay(ctx.params);
    const delayer = (side: 'client' | 'server'): ProcessStep => ({
      side,
      describe: `delayer ${side === 'server' ? 'to-server' : 'to-client'} ${ctx.params.delayMs} ms${ctx.params.jitterMs ? ` ± ${ctx.params.jitterMs} ms` : ''} (NFQUEUE ${DELAY_QUEUE}, ${side})`,
      probeArgs: ['delay', '--queue', String(DELAY_QUEUE), '--delay-us', String(ctx.params.delayMs * 1000), '--jitter-us', String(ctx.params.jitterMs * 1000)],
      ready: '"event":"delaying"',
    });
    // The delayers run from the start; with when=established the rules that feed them come at the barrier.
    const processes = [...(d.toServerMs ? [delayer('server')] : []), ...(d.toClientMs ? [delayer('client')] : [])];
    return ctx.params.when === 'connect' ? { processes, rules: delayRules(ctx) } : { processes };
  },
  triggers: {
    delay: (ctx) => ({ kind: 'rules', rules: delayRules(ctx) }),
  },
  expect: (ctx) => {
    const { params: p } = ctx;
    const m = latencyPrediction(ctx);
    const e: Expectation = {
      steps: {
        connect: { ok: true, errno: null, windowMs: m.connectMs, tcpState: 'ESTABLISHED', rttUs: m.afterConnect.rttUs, rtoUs: m.afterConnect.rtoUs },
        // (Not its state: a server may close after answering, as nginx does after its 400.)
        after: { ok: true, rttUs: m.afterRounds.rttUs, rtoUs: m.afterRounds.rtoUs },
      },
      states: { client: ['ESTABLISHED'], server: ['ESTABLISHED'] },
    };
    for (let k = 1; k <= p.rounds; k++) {
      e.steps[`write-${k}`] = { ok: true, bytes: p.bytes };
      // Bytes are not checked: the echo returns them, another server answers its own way (nginx: a 400).
      // From the write's start, when the request leaves: a probe that returns late from its write
      // (a loaded machine) starts its read late, and the read alone would come in under the hold.
      e.steps[`round-${k}`] = { ok: true, errno: null, windowMs: m.roundMs, fromStep: `write-${k}` };
    }
    const rules = delayRules(ctx);
    // Each delayed direction carries at least the handshake's packet(s) (with when=connect) and one per round.
    const hs = p.when === 'connect' ? { 'delay-to-server': 2, 'delay-to-client': 1 } : { 'delay-to-server': 0, 'delay-to-client': 0 };
    e.rulesHit = Object.fromEntries(rules.map((r) => [r.name, { min: hs[r.name as keyof typeof hs] + p.rounds }]));
    const rtt = fmt(m.sampleUs, 'ms', 1000);
    e.because = [`round trip ${rtt} (holds ${p.direction === 'both' ? '2 × ' : ''}${p.delayMs}${p.jitterMs ? ` ± ${p.jitterMs}` : ''} ms + the delayers' wake-ups)`];
    const sp = m.spurious;
    // Spurious retransmissions (nothing is lost): as many as the timers that beat the answers.
    e.counters = {
      client: { TcpRetransSegs: range(sp.firings), TcpExtTCPLossProbes: range(sp.probes), TcpExtTCPTimeouts: range(sp.rtos) },
      ...(p.when === 'connect' && sp.firings[1] === 0 ? { server: { TcpRetransSegs: 0 } } : {}),
    };
    const r1 = m.rounds[0]!;
    e.because.push(
      `after the handshake: rtt ${fmt(m.afterConnect.rttUs, 'ms', 1000)}, RTO ${fmt(m.afterConnect.rtoUs, 'ms', 1000)}` +
        (p.when === 'connect' ? ' (srtt + max(2·srtt, rto_min))' : ' (the bare veth: the delay comes later)'),
      sp.firings[1] === 0
        ? `each request waits with a loss probe at ${fmt(r1.ptoMs)} and the RTO at ${fmt(r1.rtoMs)}, both beyond the round trip: no retransmission; after ${p.rounds}: RTO ${fmt(m.afterRounds.rtoUs, 'ms', 1000)}`
        : `the first request waits with a loss probe at ${fmt(r1.ptoMs)} and the RTO at ${fmt(r1.rtoMs)}: ${count(sp.firings, 'spurious retransmission(s)')} in all ` +
            `(${count(sp.probes, 'loss probe(s)')}, ${count(sp.rtos, 'RTO(s)')}; per round ${m.rounds.map((r) => count(r.firings, '')).join(', ').replace(/ ,/g, ',').trim()}), ` +
            `an answer to a retransmitted request gives a timestamp sample; after ${p.rounds}: rtt ${fmt(m.afterRounds.rttUs, 'ms', 1000)}, RTO ${fmt(m.afterRounds.rtoUs, 'ms', 1000)}`,
    );
    return e;
  },
  script: (ctx) => {
    const { params: p, watchIntervalMs } = ctx;
    const m = latencyPrediction(ctx);
    const timeout = Math.ceil(m.roundMs[1]) + 1000;
    const steps: ClientStep[] = [
      { op: 'connect', label: 'connect', timeoutMs: Math.ceil(m.connectMs[1]) + 1000 },
      // Hold ESTABLISHED until the watchers saw it on both sides.
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
    ];
    if (p.when === 'established') steps.push({ op: 'barrier', name: 'delay' });
    for (let k = 1; k <= p.rounds; k++) {
      steps.push({ op: 'write', label: `write-${k}`, bytes: p.bytes, timeoutMs: 1000 }, { op: 'read', label: `round-${k}`, timeoutMs: timeout });
    }
    steps.push({ op: 'tcpinfo', label: 'after' });
    return steps;
  },
});
