/**
 * syn-queue-full — half-open connections fill the listener's SYN queue (a SYN flood, or clients
 * that vanish after their SYN), then a fresh client connects.
 *
 * How: the client opens `halfOpens` connections from fixed local ports; its own OUTPUT rules drop
 * everything but the SYN from those ports (`--tcp-flags SYN NONE`), so each leaves a request socket in SYN_RECV on the server (the client itself
 * is ESTABLISHED). Then a fresh connect from an unfiltered port. It sees, by tcp_syncookies:
 * - 1 (default): the queue is full when it holds more than the listen backlog; the fresh SYN gets
 *   a cookie SYN-ACK, its ACK is validated (SyncookiesSent/Recv, TCPReqQFullDoCookies) and the
 *   connection completes and is accepted: the client notices nothing;
 * - 0: the fresh SYN and its retransmissions are dropped (TCPReqQFullDrop, ListenDrops): connect()
 *   times out with ETIMEDOUT;
 * - 2: every SYN gets a cookie and nothing is stored: the "half-opens" leave no SYN_RECV at all,
 *   the fresh connect completes through a cookie.
 * With cookies off, tcp_max_syn_backlog limits too: the last quarter of it is reserved for peers
 * the kernel has already seen alive, so with backlog 16 and tcp_max_syn_backlog 4 the 5th SYN is
 * dropped (only ListenDrops moves).
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7, 3.10): there the SYN queue was a
 * table sized from tcp_max_syn_backlog, and a SYN was dropped on a full accept queue only if more
 * than one request was "young". On 6.x the SYN queue limit is the listen backlog itself —
 * inet_csk_reqsk_queue_is_full is qlen > sk_max_ack_backlog (>= before 6.14, so backlog + 1
 * half-opens fit, not backlog) — and tcp_max_syn_backlog only matters when syncookies are off.
 */
import { z } from 'zod';
import {
  halfOpenLimit,
  maxAckBacklog,
  simulateListener,
  synAckSysctlsFrom,
  synQueueSysctlsFrom,
  synVerdict,
  type ListenerRun,
  type SynVerdict,
} from '../harness/model/handshake.js';
import { predictSynTimeout, synSysctlsFrom, SYN_SYSCTLS } from '../harness/model/tcp.js';
import { jiffiesToMs } from '../harness/model/timer-wheel.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { DEFAULT_SOMAXCONN } from './accept-queue-full.js';
import type { Rule } from './iptables.js';
import { defineFault, stepTimeoutMs, type Expectation, type FaultContext, type StepExpectation } from './define.js';

/** Local port of the first half-open connection: above the default ephemeral range (32768-60999). */
export const HALF_OPEN_BASE_PORT = 61100;
const BYTES = 100;

const params = z.object({
  backlog: z.coerce.number().int().min(1).max(64).default(2).describe('listen() backlog of the server: the SYN queue limit with cookies on'),
  halfOpens: z.coerce
    .number()
    .int()
    .min(0)
    .max(64)
    .optional()
    .describe('half-open connections made before the fresh connect (default: as many as the SYN queue stores, per the model)'),
});
type Params = z.infer<typeof params>;

/** What each half-open SYN and then the fresh SYN meet at first, in order, per the model (an empty queue to start with). */
export function plannedSyns(ctx: FaultContext<Params>): { halfOpens: SynVerdict[]; fresh: SynVerdict; stored: number; limit: number } {
  const s = synQueueSysctlsFrom(ctx.sysctls.server);
  const maxAck = maxAckBacklog(ctx.params.backlog, Number(ctx.sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN));
  const { limit } = halfOpenLimit(maxAck, s);
  // With syncookies=2 nothing is ever stored: make backlog + 1 of them, to show it.
  const n = ctx.params.halfOpens ?? (limit > 0 ? limit : maxAck + 1);
  let qlen = 0;
  const halfOpens: SynVerdict[] = [];
  for (let i = 0; i < n; i++) {
    const v = synVerdict({ qlen, acceptQueue: 0, maxAck }, s);
    if (v === 'request') qlen++;
    halfOpens.push(v);
  }
  return { halfOpens, fresh: synVerdict({ qlen, acceptQueue: 0, maxAck }, s), stored: qlen, limit };
}

/**
 * The whole run on the model's clock (simulateListener): every half-open, then the fresh connect,
 * each SYN and retransmission against the queue as the request timers leave it — pruned and
 * expired requests included. Where a SYN could race a request's expiry (their windows overlap and
 * the order changes what the SYN meets), the script waits before that connect until the SYN is
 * clear of it, so the outcome is decided instead of spanning both: those pauses are part of the
 * plan, and `because` says why.
 */
export function listenerRun(ctx: FaultContext<Params>): { run: ListenerRun; pausesMs: Record<number, number>; maxAck: number } {
  const { sysctls, clock } = ctx;
  const maxAck = maxAckBacklog(ctx.params.backlog, Number(sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN));
  const kinds = [...plannedSyns(ctx).halfOpens.map(() => 'half-open' as const), 'fresh' as const];
  const input = {
    connects: kinds,
    maxAck,
    queue: synQueueSysctlsFrom(sysctls.server),
    synackRetries: synAckSysctlsFrom(sysctls.server).synackRetries,
    syn: predictSynTimeout(synSysctlsFrom(sysctls.client), clock),
    clock,
    holdMs: settleMs(ctx.watchIntervalMs),
  };
  const pausesMs: Record<number, number> = {};
  for (let i = 0; i < 64; i++) {
    const run = simulateListener({ ...input, pausesMs });
    if (!run.race) return { run, pausesMs, maxAck };
    const { connect, clearAfterMs, startMs } = run.race;
    // Start that connect later, so the racing SYN comes a jiffy after the firing's latest time.
    pausesMs[connect] = (pausesMs[connect] ?? 0) + Math.ceil(clearAfterMs - startMs[0] + jiffiesToMs(1, clock.hz));
  }
  throw new RangeError('syn-queue-full: could not plan the connects clear of every request expiry');
}

const isDrop = (v: SynVerdict) => v.startsWith('drop');
const labelOf = (i: number, n: number) => (i === n ? 'connect-fresh' : `half-open-${i}`);
const secs = (w: readonly [number, number]) => `${(w[0] / 1000).toFixed(2)}–${(w[1] / 1000).toFixed(2)} s`;

export const synQueueFull = defineFault({
  name: 'syn-queue-full',
  summary: 'half-open connections (final ACK dropped) fill the SYN queue, then a fresh client connects',
  observes: 'the fresh connect completes through a SYN cookie (tcp_syncookies 1/2) or times out with ETIMEDOUT (0); counters prove which',
  shapedBy: {
    client: SYN_SYSCTLS,
    server: ['net.ipv4.tcp_syncookies', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.tcp_synack_retries', 'net.core.somaxconn'],
  },
  params,
  server: (p) => ({ mode: 'no-close', backlog: p.backlog }),
  // The SYN queue is sized by a small backlog the harness sets (one iptables rule per half-open).
  needs: () => ({ mode: 'no-close', why: 'its listen backlog (--set backlog) sizes the SYN queue, one iptables rule per half-open connection' }),
  serverParams: ['backlog'],
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_syn_retries': '1' } }),
  plan: (ctx) => {
    const { halfOpens } = plannedSyns(ctx);
    const rules: Rule[] = halfOpens.map((_, i) => ({
      name: `half-open-${i}`,
      side: 'client',
      hook: 'OUTPUT',
      proto: 'tcp',
      // Every segment but the SYN: the bare ACK, the answers to resent SYN-ACKs, and the FIN when
      // the probe exits (a FIN carries the ACK too and would complete the handshake at the end).
      tcp: { sport: HALF_OPEN_BASE_PORT + i, dport: ctx.endpoints.port, flags: { mask: ['SYN'], set: 'NONE' } },
      target: { kind: 'DROP' },
    }));
    return { rules };
  },
  expect: (ctx): Expectation => {
    const { sysctls } = ctx;
    const s = synQueueSysctlsFrom(sysctls.server);
    const { limit } = plannedSyns(ctx);
    const { run, pausesMs, maxAck } = listenerRun(ctx);
    const syn = predictSynTimeout(synSysctlsFrom(sysctls.client), ctx.clock);
    const n = run.connects.length - 1;
    const steps: Record<string, StepExpectation> = {};
    run.connects.forEach((c, i) => {
      steps[labelOf(i, n)] =
        c.result === 'timeout'
          ? { ok: false, errno: 'ETIMEDOUT', windowMs: c.durationMs, tcpState: 'CLOSE', totalRetrans: syn.retransmits }
          : { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: c.durationMs, totalRetrans: c.retransmits };
    });
    const fresh = run.connects[n]!;
    const freshOk = fresh.result !== 'timeout';
    if (freshOk) steps['write-fresh'] = { ok: true, errno: null, bytes: BYTES };
    const attempts = run.connects.flatMap((c) => c.attempts);
    const count = (v: SynVerdict) => attempts.filter((x) => x === v).length;
    const cookies = count('cookie');
    const stored = run.requests.filter((r) => r.connect < n);
    // Each half-open's rule sees its ACK, the FIN when the probe exits, and (stored requests only:
    // a cookie is never resent) one answer per SYN-ACK the server surely resent before the run
    // ended. Requests made together fire together and the kernel picks which one a pruning
    // drops (the timer wheel's bucket order), so each counts as the least of its batch.
    const resends = (r: (typeof stored)[number]) => r.firings.filter((f) => f.action === 'resend').length;
    // Batches: requests whose creation windows overlap, transitively (made one after another, at once).
    const batch = new Map<number, number>();
    stored.forEach((r, i) => {
      const prev = stored[i - 1];
      batch.set(i, prev && r.createdMs[0] <= prev.createdMs[1] ? batch.get(i - 1)! : i);
    });
    const batchMin = (r: (typeof stored)[number]) => {
      const b = batch.get(stored.indexOf(r));
      return Math.min(...stored.filter((_, i) => batch.get(i) === b).map(resends));
    };
    const rulesHit: Record<string, { min: number; max?: number }> = {};
    run.connects.slice(0, n).forEach((c, i) => {
      const req = stored.find((r) => r.connect === i);
      // A minimum, not an exact count: after the ACK and the FIN at exit, the half-open socket keeps
      // retransmitting its FIN (and a stored request keeps drawing answers) until the counters are read.
      rulesHit[`half-open-${i}`] = c.result === 'timeout' ? { min: 0, max: 0 } : { min: 2 + (req ? batchMin(req) : 0) };
    });
    const pruned = run.requests.filter((r) => r.end === 'pruned');
    const expired = run.requests.filter((r) => r.end === 'expired');
    const pauses = Object.entries(pausesMs).map(([k, ms]) => `${ms} ms before ${labelOf(Number(k), n)}`);
    return {
      steps,
      states: {
        client: ['ESTABLISHED', ...(run.connects.some((c) => c.attempts.some(isDrop)) ? ['SYN_SENT'] : [])],
        server: [...(stored.length ? ['SYN_RECV'] : []), ...(freshOk ? ['ESTABLISHED'] : [])],
      },
      statesAbsent: { server: [...(stored.length ? [] : ['SYN_RECV']), ...(freshOk ? [] : ['ESTABLISHED'])] },
      counters: {
        server: {
          TcpExtSyncookiesSent: cookies,
          // Only the fresh client's ACK gets through; the half-opens' ACKs are dropped.
          TcpExtSyncookiesRecv: fresh.result === 'cookie' ? 1 : 0,
          TcpExtSyncookiesFailed: 0,
          // tcp_syn_flood_action counts every cookie it decides on (each SYN when syncookies=2).
          TcpExtTCPReqQFullDoCookies: cookies,
          TcpExtTCPReqQFullDrop: count('drop-queue-full'),
          TcpExtListenOverflows: 0,
          TcpExtListenDrops: count('drop-queue-full') + count('drop-max-syn-backlog'),
          TcpPassiveOpens: freshOk ? 1 : 0,
        },
        client: { TcpExtTCPSynRetrans: run.connects.reduce((a, c) => a + c.retransmits, 0) },
      },
      rulesHit,
      because: [
        `tcp_syncookies ${s.syncookies}, tcp_max_syn_backlog ${s.maxSynBacklog}, backlog ${ctx.params.backlog}: ` +
          `the listener stores ${limit} half-open requests, then a SYN ${limit === 0 ? 'always gets a cookie' : `meets ${synVerdict({ qlen: limit, acceptQueue: 0, maxAck }, s)}`}`,
        `${n} half-opens (${stored.length} stored), then the fresh SYN: ${fresh.attempts.join(' → ')}`,
        ...pruned.map((r) => {
          const mates = stored.filter((_, i) => batch.get(i) === batch.get(stored.indexOf(r)));
          const who = mates.length > 1 ? `one request of ${labelOf(mates[0]!.connect, n)}..${labelOf(mates.at(-1)!.connect, n)} (the first its timer bucket runs)` : `the request of ${labelOf(r.connect, n)}`;
          return (
            `${who} is pruned at ${secs(r.firings.at(-1)!.atMs)} (reqsk_timer_handler: the queue more than half full, ` +
            `none young → tcp_synack_retries ${synAckSysctlsFrom(sysctls.server).synackRetries} → ${r.firings.at(-1)!.retries}): a slot frees, and the queue is no longer more than half full`
          );
        }),
        ...expired.map((r) => `the request of ${labelOf(r.connect, n)} expires at ${secs(r.firings.at(-1)!.atMs)} (tcp_synack_retries)`),
        ...run.connects.flatMap((c, i) =>
          c.result !== 'timeout' && c.retransmits > 0 ? [`${labelOf(i, n)} gets through at its SYN retransmission ${c.retransmits} (${c.attempts.join(' → ')})`] : [],
        ),
        ...(pauses.length ? [`the script waits ${pauses.join(', ')}: otherwise a SYN would race a request's expiry, and the order is the timer wheel's phase, not arithmetic`] : []),
      ],
    };
  },
  script: (ctx, expected) => {
    const { run, pausesMs } = listenerRun(ctx);
    const n = run.connects.length - 1;
    const steps: ClientStep[] = [];
    run.connects.forEach((_, i) => {
      const label = labelOf(i, n);
      if (pausesMs[i]) steps.push({ op: 'sleep', ms: pausesMs[i]!, label: `await-expiry-${i}` });
      const e = expected.steps[label];
      steps.push({
        op: 'connect',
        sock: i,
        label,
        ...(i < n ? { bindPort: HALF_OPEN_BASE_PORT + i } : {}),
        timeoutMs: e?.ok && e.totalRetrans === 0 ? 2000 : stepTimeoutMs(e),
      });
    });
    if (expected.steps['write-fresh']) {
      steps.push(
        { op: 'write', sock: n, label: 'write-fresh', bytes: BYTES, timeoutMs: 2000 },
        // Hold the connection until the watcher saw the server side ESTABLISHED.
        { op: 'sleep', ms: settleMs(ctx.watchIntervalMs) },
      );
    }
    return steps;
  },
});
