/**
 * loss — data segments on one direction are lost: every n-th (deterministic, `--set every=`) or
 * each with a probability (`--set probability=`), by an iptables rule in the receiving namespace
 * (`-m statistic`, and `-m length` above 80 bytes: longer than any bare ACK can be, so only
 * segments that carry data are lost; a lost ACK is masked by the next cumulative one and would
 * make the outcome depend on delayed-ACK timing, not on the loss).
 *
 * A client sees: each request (a fresh connection, one segment each way) is answered at once,
 * unless its segment was lost: then the sender's tail loss probe resends it one RTO later (204 ms
 * on a veth: a request that took 0.1 ms takes 0.2 s), and if the probe is lost too, the RTO
 * doubles (0.4, 0.8 s …). Every loss is retransmitted exactly once: the sender's TcpRetransSegs
 * equals the rule's hits, TCPLossProbes + TCPTimeouts too. With tcp_early_retrans=0 there is no
 * probe: each loss costs a full RTO (TCPTimeouts).
 * - `to-server` (default): the request is lost; the client retransmits.
 * - `to-client`: the answer is lost; the server retransmits (how soon depends on the server: the
 *   echo's loss probe after one RTO; nginx's FIN behind its answer draws a SACK and a fast
 *   retransmit at once) — the client may probe its own unanswered request meanwhile.
 * Random loss cannot be predicted packet by packet: the expectation bounds the losses (outside
 * them with probability < 1e-6 each side) and checks what must follow from the observed ones.
 */
import { z } from 'zod';
import { dataSysctlsFrom, initialRtoJiffies } from '../harness/model/data.js';
import { predictNthLoss, randomLossBounds, randomLossPerRound } from '../harness/model/loss.js';
import { firingRanges, firingWindows } from '../harness/model/retransmit.js';
import { DATA_SYSCTLS, wakeupSlackMs } from '../harness/model/tcp.js';
import { countRange } from '../harness/model/teardown.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import type { Rule } from './iptables.js';
import type { CountRef } from '../harness/verdict/expectation.js';
import { answersRequests } from './answers.js';
import { defineFault, type Expectation, type FaultContext } from './define.js';

/** IP packets longer than this carry data: a bare ACK with every TCP option is at most 20 + 60 bytes. */
export const LONGEST_BARE_ACK = 80;
/** Data bytes of a segment with timestamps (20 IP + 32 TCP) that clear LONGEST_BARE_ACK. */
const MIN_BYTES = LONGEST_BARE_ACK - 52 + 1;
const DEFAULT_EVERY = 3;

const params = z
  .object({
    every: z.coerce.number('must be a whole number').int().min(2, 'must be at least 2 (every packet lost: that is host-crash or partition)').max(1000).optional().describe(`lose every n-th data segment (deterministic; default ${DEFAULT_EVERY} unless probability is given)`),
    probability: z.coerce.number('must be a number between 0 and 1').gt(0, 'must be above 0 (0 loses nothing)').lt(1, 'must be below 1 (1 loses everything: that is host-crash or partition)').optional().describe('lose each data segment with this probability, 0 < p < 1 (random)'),
    direction: z.enum(['to-server', 'to-client']).default('to-server').describe('which way data is lost: to-server (requests) or to-client (answers)'),
    rounds: z.coerce.number().int().min(1).max(200).default(6).describe('requests, each on a fresh connection, one segment each way'),
    bytes: z.coerce.number().int().min(MIN_BYTES).max(1400).default(100).describe(`bytes per request (${MIN_BYTES}-1400: one segment longer than any bare ACK)`),
  })
  .superRefine((p, ctx) => {
    if (p.every !== undefined && p.probability !== undefined) ctx.addIssue({ code: 'custom', path: ['probability'], message: 'excludes every: choose random (probability) or every-n-th (every) loss' });
  });

type Params = z.infer<typeof params>;

function lossRule({ params: p, endpoints }: FaultContext<Params>): Rule {
  const pick = p.probability !== undefined ? { probability: p.probability } : { every: p.every ?? DEFAULT_EVERY };
  const base = { hook: 'INPUT' as const, proto: 'tcp' as const, length: [LONGEST_BARE_ACK + 1, 65535] as const, ...pick, target: { kind: 'DROP' as const } };
  return p.direction === 'to-server'
    ? { name: 'loss-to-server', side: 'server', src: endpoints.clientAddress, tcp: { dport: endpoints.port }, ...base }
    : { name: 'loss-to-client', side: 'client', src: endpoints.address, tcp: { sport: endpoints.port }, ...base };
}

/** The firings of a lost segment's sender on a fresh veth connection (loss probe, RTOs), as windows. */
function firingsOf({ sysctls, clock }: FaultContext<Params>) {
  const data = dataSysctlsFrom(sysctls.client, sysctls.server);
  return firingRanges(firingWindows(data, { rtoJiffies: initialRtoJiffies(data.rtoMinMs, clock), srttUs: 1_000_000 / clock.hz - 1 }, clock));
}

const ordinal = (n: number) => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')}`;

const sender = (p: Params) => (p.direction === 'to-server' ? 'client' : 'server');

export const loss = defineFault({
  name: 'loss',
  summary: 'data segments on one direction are lost: every n-th, or each with a probability (iptables -m statistic in the receiving namespace)',
  observes: 'each lost segment is resent once: a tail loss probe one RTO later (0.2 s), an RTO if that is lost too; the sender\'s retransmissions equal the rule\'s hits',
  shapedBy: { client: DATA_SYSCTLS, server: ['net.ipv4.tcp_sack', 'net.ipv4.tcp_early_retrans'] },
  params,
  needs: () => 'any',
  // Its rounds write a request and wait for an answer: the built-in echo server or an HTTP server gives one.
  refuseTarget: ({ traits }) => answersRequests(traits),
  mechanisms: () => ['iptables-statistic', 'iptables-length'],
  server: () => ({ mode: 'echo' }),
  fastSysctls: () => ({}),
  plan: (ctx) => ({ rules: [lossRule(ctx)] }),
  expect: (ctx) => {
    const { params: p, clock } = ctx;
    const wake = wakeupSlackMs(clock);
    const rule = lossRule(ctx);
    const firings = firingsOf(ctx);
    const who = sender(p);
    // (No state checks: a connection that loses nothing lives well under a watcher's poll.)
    const e: Expectation = { steps: {} };
    const retrans: CountRef = { side: who, counter: 'TcpRetransSegs' };
    const hits: CountRef = { rule: rule.name };
    // Every loss is sent again exactly once (nothing else is lost, nothing retransmitted in vain).
    e.same = [{ name: `${who} retransmits each loss once`, left: [retrans], right: [hits] }];
    if (p.direction === 'to-server') {
      e.same.push({ name: 'client loss probes + RTOs = losses', left: [{ side: 'client', counter: 'TcpExtTCPLossProbes' }, { side: 'client', counter: 'TcpExtTCPTimeouts' }], right: [hits] });
    }
    const fmtW = (w: readonly [number, number]) => `${w[0].toFixed(0)}..${w[1].toFixed(0)} ms`;
    if (p.probability === undefined) {
      const every = p.every ?? DEFAULT_EVERY;
      const m = predictNthLoss(every, p.rounds, firings);
      m.rounds.forEach((r, i) => {
        const k = i + 1;
        e.steps[`connect-${k}`] = { ok: true };
        e.steps[`write-${k}`] = { ok: true, bytes: p.bytes };
        // The answer comes a wake-up or two after the segment gets through (the server's, the probe's).
        const atMs: [number, number] = p.direction === 'to-server' ? r.atMs : [0, r.atMs[1]];
        // From the write's start (the request's send), as the retransmission timers count.
        e.steps[`round-${k}`] = { ok: true, errno: null, windowMs: r.drops ? [atMs[0], atMs[1] + 2 * wake] : [0, 2 * wake], fromStep: `write-${k}` };
      });
      e.rulesHit = { [rule.name]: m.drops };
      e.counters =
        p.direction === 'to-server'
          ? { client: { TcpRetransSegs: m.drops, TcpExtTCPLossProbes: m.probes, TcpExtTCPTimeouts: m.rtos }, server: { TcpRetransSegs: 0 } }
          : { server: { TcpRetransSegs: m.drops }, client: { TcpRetransSegs: { min: 0, max: m.drops } } };
      e.because = [
        `every ${ordinal(every)} data segment ${p.direction}: rounds ${m.rounds.map((r, i) => (r.drops ? `${i + 1} (${r.drops}×)` : '')).filter(Boolean).join(', ') || 'none'} lose theirs; ${m.drops} losses`,
        `${who} resends each: ${m.probes} loss probe(s)${m.rtos ? `, ${m.rtos} RTO(s)` : ''}` +
          (firings[0] ? `; a lost ${p.direction === 'to-server' ? 'request is answered' : 'answer arrives at most'} ${fmtW(firings[0].atMs)} late` : ''),
      ];
    } else {
      const d = randomLossBounds(p.rounds, p.probability);
      const most = randomLossPerRound(p.rounds, p.probability);
      const worst = most ? firings[Math.min(most, firings.length) - 1]!.atMs[1] : 0;
      for (let k = 1; k <= p.rounds; k++) {
        e.steps[`connect-${k}`] = { ok: true };
        e.steps[`write-${k}`] = { ok: true, bytes: p.bytes };
        e.steps[`round-${k}`] = { ok: true, errno: null, windowMs: [0, worst + 2 * wake], fromStep: `write-${k}` };
      }
      e.rulesHit = { [rule.name]: countRange(d) };
      e.counters = { [who]: { TcpRetransSegs: countRange(d) } };
      e.because = [
        `each data segment ${p.direction} lost with p=${p.probability}: ${d[0]}..${d[1]} losses over ${p.rounds} requests (negative binomial; outside with p < 1e-6), at most ${most} in one request`,
        `${who} resends each once: the retransmissions must equal the rule's hits`,
      ];
    }
    return e;
  },
  script: (ctx, expected) => {
    const { params: p, watchIntervalMs } = ctx;
    const steps: ClientStep[] = [];
    for (let k = 1; k <= p.rounds; k++) {
      const w = expected.steps[`round-${k}`]?.windowMs;
      steps.push(
        { op: 'connect', label: `connect-${k}`, timeoutMs: 5000 },
        { op: 'write', label: `write-${k}`, bytes: p.bytes, timeoutMs: 1000 },
        { op: 'read', label: `round-${k}`, timeoutMs: Math.ceil(w ? w[1] : 0) + 1000 },
        { op: 'close' },
      );
    }
    // Let the watchers and the last FINs settle before the counters are read.
    steps.push({ op: 'sleep', ms: settleMs(watchIntervalMs) });
    return steps;
  },
});
