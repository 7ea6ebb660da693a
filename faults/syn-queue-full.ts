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
  FIRST_SYN_WINDOW_MS,
  halfOpenLimit,
  maxAckBacklog,
  predictSynAckExpiry,
  synAckSysctlsFrom,
  synQueueSysctlsFrom,
  synVerdict,
  type SynVerdict,
} from '../harness/model/handshake.js';
import { predictSynTimeout, synSysctlsFrom, SYN_SYSCTLS } from '../harness/model/tcp.js';
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

/** What each half-open SYN and then the fresh SYN meet, in order, per the model. */
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

const isDrop = (v: SynVerdict) => v.startsWith('drop');

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
    const { sysctls, clock } = ctx;
    const s = synQueueSysctlsFrom(sysctls.server);
    const { halfOpens, fresh, stored, limit } = plannedSyns(ctx);
    const syn = predictSynTimeout(synSysctlsFrom(sysctls.client), clock);
    const ok: StepExpectation = { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: FIRST_SYN_WINDOW_MS, totalRetrans: 0 };
    const dropped: StepExpectation = { ok: false, errno: 'ETIMEDOUT', windowMs: syn.windowMs, tcpState: 'CLOSE', totalRetrans: syn.retransmits };
    const steps: Record<string, StepExpectation> = {};
    halfOpens.forEach((v, i) => (steps[`half-open-${i}`] = isDrop(v) ? dropped : ok));
    steps['connect-fresh'] = isDrop(fresh) ? dropped : ok;
    if (!isDrop(fresh)) steps['write-fresh'] = { ok: true, errno: null, bytes: BYTES };

    const all = [...halfOpens, fresh];
    const count = (v: SynVerdict) => all.filter((x) => x === v).length;
    // A dropped SYN is dropped again at each retransmission.
    const drops = (v: SynVerdict) => count(v) * syn.synsSent;
    const cookies = count('cookie');
    const freshCookie = fresh === 'cookie' ? 1 : 0;
    // Each half-open's rule sees its ACK, the FIN when the probe exits, and (stored requests only:
    // a cookie is never resent) one answer per SYN-ACK the server resent before the run ended.
    // The run ends when the fresh connect times out, or a settle after it connected.
    const resend = predictSynAckExpiry(synAckSysctlsFrom(sysctls.server).synackRetries, clock).retransmitWindowsMs;
    const hold = settleMs(ctx.watchIntervalMs);
    const end: [number, number] = isDrop(fresh) ? syn.windowMs : [hold, hold];
    const resentSure = resend.filter((w) => w[1] < end[0]).length;
    const rulesHit: Record<string, { min: number; max?: number }> = {};
    halfOpens.forEach(
      // A minimum, not an exact count: after the ACK and the FIN at exit, the half-open
      // socket keeps retransmitting its FIN (and a stored request keeps drawing SYN-ACK answers)
      // until the counters are read, which is later the busier the machine is.
      (v, i) => (rulesHit[`half-open-${i}`] = v === 'request' ? { min: 2 + resentSure } : isDrop(v) ? { min: 0, max: 0 } : { min: 2 }),
    );
    return {
      steps,
      states: {
        client: ['ESTABLISHED', ...(isDrop(fresh) ? ['SYN_SENT'] : [])],
        server: [...(stored ? ['SYN_RECV'] : []), ...(isDrop(fresh) ? [] : ['ESTABLISHED'])],
      },
      statesAbsent: { server: [...(stored ? [] : ['SYN_RECV']), ...(isDrop(fresh) ? ['ESTABLISHED'] : [])] },
      counters: {
        server: {
          TcpExtSyncookiesSent: cookies,
          // Only the fresh client's ACK gets through; the half-opens' ACKs are dropped.
          TcpExtSyncookiesRecv: freshCookie,
          TcpExtSyncookiesFailed: 0,
          // tcp_syn_flood_action counts every cookie it decides on (each SYN when syncookies=2).
          TcpExtTCPReqQFullDoCookies: cookies,
          TcpExtTCPReqQFullDrop: drops('drop-queue-full'),
          TcpExtListenOverflows: 0,
          TcpExtListenDrops: drops('drop-queue-full') + drops('drop-max-syn-backlog'),
          TcpPassiveOpens: isDrop(fresh) ? 0 : 1,
        },
        client: { TcpExtTCPSynRetrans: all.filter(isDrop).length * syn.retransmits },
      },
      rulesHit,
      because: [
        `tcp_syncookies ${s.syncookies}, tcp_max_syn_backlog ${s.maxSynBacklog}, backlog ${ctx.params.backlog}: ` +
          `the listener stores ${limit} half-open requests, then a SYN ${limit === 0 ? 'always gets a cookie' : `meets ${synVerdict({ qlen: limit, acceptQueue: 0, maxAck: maxAckBacklog(ctx.params.backlog, Number(ctx.sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN)) }, s)}`}`,
        `${halfOpens.length} half-opens (${stored} stored), then the fresh SYN: ${fresh}`,
      ],
    };
  },
  script: (ctx, expected) => {
    const { halfOpens } = plannedSyns(ctx);
    const steps: ClientStep[] = halfOpens.map((_, i) => ({
      op: 'connect',
      sock: i,
      label: `half-open-${i}`,
      bindPort: HALF_OPEN_BASE_PORT + i,
      timeoutMs: expected.steps[`half-open-${i}`]?.ok ? 2000 : stepTimeoutMs(expected.steps[`half-open-${i}`]),
    }));
    const fresh = halfOpens.length;
    const e = expected.steps['connect-fresh'];
    steps.push({ op: 'connect', sock: fresh, label: 'connect-fresh', timeoutMs: e?.ok ? 2000 : stepTimeoutMs(e) });
    if (expected.steps['write-fresh']) {
      steps.push(
        { op: 'write', sock: fresh, label: 'write-fresh', bytes: BYTES, timeoutMs: 2000 },
        // Hold the connection until the watcher saw the server side ESTABLISHED.
        { op: 'sleep', ms: settleMs(ctx.watchIntervalMs) },
      );
    }
    return steps;
  },
});
