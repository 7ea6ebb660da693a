/**
 * accept-queue-full — the server listens with a small backlog and never calls accept() (an
 * overloaded or stuck application); the client opens connections one after another.
 *
 * A client sees: the first backlog + 1 connects succeed at once (the kernel completes the
 * handshake into the accept queue: sk_acceptq_is_full is `>`, not `>=`); every later connect
 * hangs in SYN_SENT — its SYNs are dropped, whatever tcp_abort_on_overflow says — and fails with
 * ETIMEDOUT. The listener shows Recv-Q = backlog + 1, Send-Q = backlog; the server counts
 * TcpExtListenOverflows and TcpExtListenDrops once per dropped SYN.
 *
 * `--set overflow=ack` makes the final ACK (here: the first data segment, which carries the ACK)
 * of one connection arrive when the queue is already full — its SYN came while there was room,
 * its bare ACK is held back by a client rule, and another connect fills the queue. That client
 * believes it is ESTABLISHED and its write succeeds; then
 * - tcp_abort_on_overflow=0: the server drops the segment (ListenOverflows), keeps the request in
 *   SYN_RECV and resends SYN-ACKs; the client's read hangs while its data is retransmitted;
 * - tcp_abort_on_overflow=1: the server answers RST; the client's read fails with ECONNRESET.
 *
 * `--set overflow=cookie` is the SYN-flood variant: half-open connections (all but their SYN
 * dropped by client rules) fill the SYN queue, so every later SYN is answered with a cookie and
 * nothing is stored; one connection's bare ACK is held back, cookie connects fill the accept
 * queue, then it writes. Its data segment carries the cookie's ACK: cookie_v4_check validates it
 * (TcpExtSyncookiesRecv) and tcp_get_cookie_sock asks tcp_v4_syn_recv_sock for a child, which
 * finds the accept queue full (sk_acceptq_is_full → ListenOverflows, ListenDrops) and returns
 * nothing; tcp_v4_do_rcv discards the segment. No request exists to keep or to reset, so
 * tcp_abort_on_overflow (which only tcp_check_req reads) changes nothing: the client believes it
 * is connected, its write succeeds, its read hangs, and each retransmission is dropped the same way.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7, 3.10): there, tcp_v4_conn_request
 * dropped a SYN on a full accept queue only if more than one request was still "young", so a SYN
 * usually got its SYN-ACK and the overflow happened at the final ACK (client ESTABLISHED, then
 * the seeds' 63 s of SYN-ACK resends and a reset on write). On 6.x tcp_conn_request drops the SYN
 * whenever the accept queue is full: sequential connects past backlog + 1 time out in SYN_SENT
 * and never see ESTABLISHED; the final-ACK overflow needs a SYN that got in while there was room.
 *
 * On a server of the user's own (`--target nginx`) the harness cannot make it listen with a small
 * backlog and never accept, so it freezes it (SIGSTOP to its process group, or docker pause) once
 * it listens, reads the backlog it chose from its LISTEN socket (sock_diag: sk_max_ack_backlog,
 * e.g. 511 for nginx and redis), and opens backlog + 1 connections: the next SYN is dropped.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7, 3.10): there, tcp_v4_conn_request
 * dropped a SYN on a full accept queue only if more than one request was still "young", so a SYN
 * usually got its SYN-ACK and the overflow happened at the final ACK (client ESTABLISHED, then
 * the seeds' 63 s of SYN-ACK resends and a reset on write). On 6.x tcp_conn_request drops the SYN
 * whenever the accept queue is full: sequential connects past backlog + 1 time out in SYN_SENT
 * and never see ESTABLISHED; the final-ACK overflow needs a SYN that got in while there was room.
 */
import { z } from 'zod';
import {
  acceptQueueCapacity,
  answeredWindowMs,
  halfOpenLimit,
  maxAckBacklog,
  sequentialConnects,
  synQueueSysctlsFrom,
  synVerdict,
  type SynVerdict,
} from '../harness/model/handshake.js';
import { predictSynTimeout, synSysctlsFrom, SYN_SYSCTLS } from '../harness/model/tcp.js';
import type { ClientStep } from '../harness/core/probe.js';
import type { Rule } from './iptables.js';
import { defineFault, stepTimeoutMs, type CounterExpectation, type Expectation, type FaultContext, type StepExpectation } from './define.js';
import { EnvironmentError } from '../harness/core/errors.js';

/** Local port of the connection whose final ACK is held back: above the default ephemeral range (32768-60999). */
export const LATE_PORT = 61000;
const BYTES = 100;
/** net.core.somaxconn of a fresh namespace (4096 since Linux 5.4): the cap when none is read back. */
export const DEFAULT_SOMAXCONN = 4096;

/** Local port of the first half-open of overflow=cookie (above the ephemeral range, apart from syn-queue-full's). */
export const COOKIE_HALF_OPEN_BASE_PORT = 61200;

type Ctx = FaultContext<{ backlog: number; connects?: number | undefined; overflow: 'syn' | 'ack' | 'cookie' }>;

function halfOpenRule(i: number, port: number): Rule {
  return {
    name: `half-open-${i}`,
    side: 'client',
    hook: 'OUTPUT',
    proto: 'tcp',
    // All but the SYN: the request stays half-open (as in syn-queue-full).
    tcp: { sport: COOKIE_HALF_OPEN_BASE_PORT + i, dport: port, flags: { mask: ['SYN'], set: 'NONE' } },
    target: { kind: 'DROP' },
  };
}

/** overflow=cookie: the half-opens that fill the SYN queue (none when tcp_syncookies=2 answers every SYN with a cookie). */
function cookieHalfOpens(ctx: Ctx): SynVerdict[] {
  const q = synQueueSysctlsFrom(ctx.sysctls.server);
  const maxAck = maxAckBacklog(ctx.params.backlog, Number(ctx.sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN));
  const { limit } = halfOpenLimit(maxAck, q);
  const out: SynVerdict[] = [];
  let qlen = 0;
  for (let i = 0; i < (q.syncookies === 2 ? 0 : limit); i++) {
    const v = synVerdict({ qlen, acceptQueue: 0, maxAck }, q);
    if (v === 'request') qlen++;
    out.push(v);
  }
  return out;
}

/**
 * overflow=cookie, step by step through tcp_conn_request (synVerdict): the half-opens, the late
 * connection (its bare ACK held), backlog + 1 cookie connects that fill the accept queue, the late
 * write and read, then one more connect whose SYN meets the full accept queue. With cookies off
 * the late SYN itself meets a full SYN queue: it is dropped and the scenario ends there.
 */
function cookiePlan(ctx: Ctx) {
  const q = synQueueSysctlsFrom(ctx.sysctls.server);
  const maxAck = maxAckBacklog(ctx.params.backlog, Number(ctx.sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN));
  const cap = acceptQueueCapacity(maxAck);
  const halfOpens = cookieHalfOpens(ctx);
  const qlen = halfOpens.filter((v) => v === 'request').length;
  const floodCheck = q.syncookies === 2 || qlen > maxAck; // tcp_syn_flood_action runs (TCPReqQFullDoCookies or TCPReqQFullDrop)
  const late = synVerdict({ qlen, acceptQueue: 0, maxAck }, q);
  const fillers = Array.from({ length: cap }, (_, j) => synVerdict({ qlen, acceptQueue: j, maxAck }, q));
  const dropped = synVerdict({ qlen, acceptQueue: cap, maxAck }, q);
  return { q, maxAck, cap, halfOpens, qlen, floodCheck, late, fillers, dropped };
}

function cookieOverflow(ctx: Ctx): Expectation {
  const { sysctls, clock } = ctx;
  const p = cookiePlan(ctx);
  const syn = predictSynTimeout(synSysctlsFrom(sysctls.client), clock);
  const answered: StepExpectation = { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: answeredWindowMs(clock), totalRetrans: 0 };
  const timedOut: StepExpectation = { ok: false, errno: 'ETIMEDOUT', windowMs: syn.windowMs, tcpState: 'CLOSE', totalRetrans: syn.retransmits };
  const abort = sysctls.server['net.ipv4.tcp_abort_on_overflow'] === '1';
  const steps: Record<string, StepExpectation> = {};
  p.halfOpens.forEach((v, i) => (steps[`half-open-${i}`] = v.startsWith('drop') ? timedOut : answered));
  const rulesHit: Record<string, CounterExpectation> = {};
  // Each half-open's rule: its ACK and its FIN at exit at least (a stored request draws more).
  p.halfOpens.forEach((_, i) => (rulesHit[`half-open-${i}`] = { min: 2 }));
  const because = [
    `backlog ${ctx.params.backlog}: the SYN queue holds ${p.qlen} half-open requests, the accept queue ${p.cap}; tcp_syncookies ${p.q.syncookies}`,
  ];
  if (p.late !== 'cookie') {
    steps['connect-late'] = p.late.startsWith('drop') ? timedOut : answered;
    return {
      steps,
      states: { client: ['ESTABLISHED'] },
      counters: { server: { TcpExtSyncookiesSent: 0, TcpPassiveOpens: 0 } },
      rulesHit,
      because: [...because, `the late SYN meets ${p.late}: no cookie, so no cookie ACK to overflow the accept queue`],
    };
  }
  steps['connect-late'] = answered;
  p.fillers.forEach((_, j) => (steps[`connect-filler-${j}`] = answered));
  steps['write-late'] = { ok: true, errno: null, bytes: BYTES };
  steps['read-late'] = { ok: false, timedOut: true, errno: null };
  steps['connect-dropped'] = timedOut;
  const cookies = 1 + p.cap;
  return {
    steps,
    states: { client: ['ESTABLISHED', 'SYN_SENT'], server: ['ESTABLISHED', ...(p.qlen ? ['SYN_RECV'] : [])] },
    counters: {
      server: {
        TcpExtSyncookiesSent: cookies,
        // The flood check runs for every SYN while the SYN queue is full: the cookies, and the
        // dropped connect's SYNs before the accept-queue check drops them.
        TcpExtTCPReqQFullDoCookies: p.floodCheck ? cookies + syn.synsSent : 0,
        // The fillers' ACKs, and the late data (each retransmission validates again).
        TcpExtSyncookiesRecv: { min: p.cap + 1 },
        TcpExtSyncookiesFailed: 0,
        // The late data at least once (then each retransmission), and every SYN of the dropped connect.
        TcpExtListenOverflows: { min: 1 + syn.synsSent },
        TcpExtListenDrops: { min: 1 + syn.synsSent },
        TcpPassiveOpens: p.cap,
        // No request to reset: tcp_abort_on_overflow is read only by tcp_check_req.
        TcpOutRsts: 0,
        TcpExtEmbryonicRsts: 0,
      },
      client: { TcpEstabResets: 0, TcpRetransSegs: { min: 1 } },
    },
    listen: { server: { rqMax: p.cap, wq: p.maxAck } },
    // The late connection's handshake ACK: a cookie SYN-ACK is never resent, so exactly once.
    rulesHit: { ...rulesHit, 'hold-ack': 1 },
    because: [
      ...because,
      `every SYN now gets a cookie (nothing stored); ${p.cap} cookie connects fill the accept queue; the late connection's data carries its cookie ACK: ` +
        `validated, then dropped by the full accept queue (tcp_v4_syn_recv_sock) — ${abort ? 'tcp_abort_on_overflow=1 changes nothing: no request to reset' : 'silently'}; the client's read hangs`,
    ],
  };
}

function cookieScript(ctx: Ctx, expected: Expectation, timeout: (label: string) => number): ClientStep[] {
  const p = cookiePlan(ctx);
  const steps: ClientStep[] = p.halfOpens.map((_, i) => ({ op: 'connect', sock: i, label: `half-open-${i}`, bindPort: COOKIE_HALF_OPEN_BASE_PORT + i, timeoutMs: timeout(`half-open-${i}`) }));
  const late = p.halfOpens.length;
  steps.push({ op: 'connect', sock: late, label: 'connect-late', bindPort: LATE_PORT, timeoutMs: timeout('connect-late') });
  if (!expected.steps['write-late']) return steps;
  p.fillers.forEach((_, j) => steps.push({ op: 'connect', sock: late + 1 + j, label: `connect-filler-${j}`, timeoutMs: 2000 }));
  const next = late + 1 + p.fillers.length;
  steps.push(
    { op: 'write', sock: late, label: 'write-late', bytes: BYTES, timeoutMs: 2000 },
    { op: 'read', sock: late, label: 'read-late', timeoutMs: 2000 },
    { op: 'connect', sock: next, label: 'connect-dropped', timeoutMs: timeout('connect-dropped') },
  );
  return steps;
}

/**
 * The accept queue the model fills: sk_max_ack_backlog = min(backlog, somaxconn) (__sys_listen_socket
 * reads somaxconn when the server listens; its sysctls are in force by then). The backlog is the
 * one the harness gave the built-in `no-accept` server, or the one a server of the user's own
 * chose, read from its LISTEN socket. Both expect() and script() size the run with it.
 */
export function listenBacklog({ params, sysctls, server }: Ctx): { maxAck: number; somaxconn: number; why: string; local?: string } {
  const somaxconn = Number(sysctls.server['net.core.somaxconn'] ?? DEFAULT_SOMAXCONN);
  const own = server.mode === 'no-accept' ? undefined : server.listener;
  if (!own) return { maxAck: maxAckBacklog(params.backlog, somaxconn), somaxconn, why: `backlog ${params.backlog}, somaxconn ${somaxconn}` };
  return {
    maxAck: maxAckBacklog(own.backlog, somaxconn),
    somaxconn,
    why: `the server's own backlog ${own.backlog} (its LISTEN socket ${own.local}, read before the freeze), somaxconn ${somaxconn}`,
    local: own.local,
  };
}

/** The probe's socket table holds this many (probe/src/script.h MAX_SOCKS); a backlog that needs more cannot be filled. */
export const MAX_PROBE_SOCKETS = 8192;

export const acceptQueueFull = defineFault({
  name: 'accept-queue-full',
  summary: 'the target never accepts (the built-in no-accept server with a small backlog, or any server frozen); connects pile up in its accept queue',
  observes: 'backlog + 1 connects succeed, later ones time out in SYN_SENT (SYN dropped); with overflow=ack a client is ESTABLISHED but its data is dropped or reset; with overflow=cookie its data is dropped silently whatever tcp_abort_on_overflow says',
  shapedBy: {
    client: SYN_SYSCTLS,
    server: ['net.ipv4.tcp_abort_on_overflow', 'net.core.somaxconn', 'net.ipv4.tcp_synack_retries', 'net.ipv4.tcp_syncookies'],
  },
  params: z.object({
    backlog: z.coerce.number().int().min(0).max(64).default(1).describe('listen() backlog of the server (capped by its somaxconn)'),
    connects: z.coerce
      .number()
      .int()
      .min(1)
      .max(32)
      .optional()
      .describe('sequential connects (overflow=syn; default backlog + 2: one more than the queue holds)'),
    overflow: z
      .enum(['syn', 'ack', 'cookie'])
      .default('syn')
      .describe(
        'where the overflow strikes: at the SYN (sequential connects), at the final ACK of a connection whose SYN got in, or at the ACK of a SYN answered with a cookie (the SYN queue full of half-opens)',
      ),
  }),
  server: (p) => ({ mode: 'no-accept', backlog: p.backlog }),
  // Any other server is frozen, and its own backlog read from its LISTEN socket. The cookie variant
  // sizes the SYN queue with half-open rules from the backlog it sets: the built-in server only.
  needs: (p) => (p.overflow === 'cookie' ? { mode: 'no-accept', why: 'overflow=cookie fills the SYN queue from the backlog it sets, one rule per half-open connection' } : 'freeze'),
  serverParams: ['backlog'],
  readsListener: true,
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_syn_retries': '1' }, server: { 'net.ipv4.tcp_synack_retries': '2' } }),
  plan: (ctx) => {
    const { params, endpoints, server } = ctx;
    // Any server but the built-in no-accept one is frozen once the rules are in: it stops accepting.
    const freeze = server.mode !== 'no-accept' ? { freeze: true } : {};
    if (params.overflow === 'syn') return freeze;
    const rule: Rule = {
      name: 'hold-ack',
      side: 'client',
      hook: 'OUTPUT',
      proto: 'tcp',
      tcp: { sport: LATE_PORT, dport: endpoints.port, flags: { mask: 'ALL', set: ['ACK'] } },
      target: { kind: 'DROP' },
    };
    if (params.overflow === 'cookie') return { rules: [...cookieHalfOpens(ctx).map((_, i) => halfOpenRule(i, endpoints.port)), rule] };
    return { rules: [rule], ...freeze };
  },
  expect: (ctx): Expectation => {
    const { params, sysctls, clock } = ctx;
    if (params.overflow === 'cookie') return cookieOverflow(ctx);
    // The server's sysctls are in force before it listens (the target applies them first), so
    // listen() is capped by the somaxconn read back (__sys_listen_socket reads it then); a server
    // of the user's own chose its backlog, read from its LISTEN socket.
    const { maxAck, why, local } = listenBacklog(ctx);
    const cap = acceptQueueCapacity(maxAck);
    if (cap + 2 > MAX_PROBE_SOCKETS) {
      throw new EnvironmentError('E_BACKLOG', `the server listens with backlog ${maxAck}: filling its accept queue takes ${cap + 1} connections, more than the probe holds (${MAX_PROBE_SOCKETS})`, 'cap it for the run: --sysctl server:net.core.somaxconn=N');
    }
    const syn = predictSynTimeout(synSysctlsFrom(sysctls.client), clock);
    const abort = sysctls.server['net.ipv4.tcp_abort_on_overflow'] === '1';
    const ok: StepExpectation = { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: answeredWindowMs(clock), totalRetrans: 0 };
    const dropped: StepExpectation = { ok: false, errno: 'ETIMEDOUT', windowMs: syn.windowMs, tcpState: 'CLOSE', totalRetrans: syn.retransmits };
    const because = [
      `${why}: sk_max_ack_backlog ${maxAck}, the accept queue holds ${cap} (sk_acceptq_is_full is >)`,
      `a SYN that meets a full accept queue is dropped: the connect times out after ${syn.retransmits} SYN retransmissions (${syn.timeoutMs / 1000} s)`,
      ...(local ? ['the server is frozen before the first connect: it accepts nothing, its kernel still completes every handshake that fits'] : []),
    ];
    if (params.overflow === 'syn') {
      const n = params.connects ?? cap + 1;
      const kinds = sequentialConnects(n, maxAck);
      const nDropped = kinds.filter((k) => k === 'syn-dropped').length;
      const steps: Record<string, StepExpectation> = {};
      kinds.forEach((k, i) => (steps[`connect-${i}`] = k === 'ok' ? ok : dropped));
      return {
        steps,
        states: { client: nDropped ? ['ESTABLISHED', 'SYN_SENT'] : ['ESTABLISHED'], server: ['ESTABLISHED'] },
        counters: {
          server: {
            TcpExtListenOverflows: nDropped * syn.synsSent,
            TcpExtListenDrops: nDropped * syn.synsSent,
            TcpPassiveOpens: n - nDropped,
            TcpExtTCPReqQFullDrop: 0,
            TcpOutRsts: 0,
          },
          client: { TcpExtTCPSynRetrans: nDropped * syn.retransmits, TcpExtTCPAbortOnTimeout: nDropped },
        },
        listen: { server: { rqMax: Math.min(n, cap), wq: maxAck, ...(local ? { local } : {}) } },
        because: [...because, `${n} sequential connects: ${n - nDropped} complete, ${nDropped} time out${abort ? ' (tcp_abort_on_overflow=1 does not matter at the SYN)' : ''}`],
      };
    }
    // overflow=ack: fill maxAck, `late` (SYN in, ACK held), `filler` fills the last place, `late` writes.
    const steps: Record<string, StepExpectation> = {};
    for (let i = 0; i < maxAck; i++) steps[`connect-${i}`] = ok;
    steps['connect-late'] = ok;
    steps['connect-filler'] = ok;
    steps['write-late'] = { ok: true, errno: null, bytes: BYTES };
    steps['read-late'] = abort ? { ok: false, errno: 'ECONNRESET', windowMs: answeredWindowMs(clock) } : { ok: false, timedOut: true, errno: null };
    steps['connect-dropped'] = dropped;
    return {
      steps,
      // With abort=1 the late request lives for microseconds: too short for the watcher to see.
      states: { client: ['ESTABLISHED', 'SYN_SENT'], server: abort ? ['ESTABLISHED'] : ['SYN_RECV', 'ESTABLISHED'] },
      counters: {
        server: abort
          ? {
              // The data segment overflows once and is answered with RST; then the dropped connect's SYNs.
              TcpExtListenOverflows: 1 + syn.synsSent,
              TcpExtListenDrops: 1 + syn.synsSent,
              TcpExtEmbryonicRsts: 1,
              TcpOutRsts: 1,
              TcpPassiveOpens: cap,
            }
          : {
              // The data segment and each of its retransmissions overflow again; the request stays.
              TcpExtListenOverflows: { min: 1 + syn.synsSent },
              TcpExtListenDrops: { min: 1 + syn.synsSent },
              TcpOutRsts: 0,
              TcpPassiveOpens: cap,
            },
        client: abort ? { TcpEstabResets: 1 } : { TcpEstabResets: 0, TcpRetransSegs: { min: 1 } },
      },
      listen: { server: { rqMax: cap, wq: maxAck, ...(local ? { local } : {}) } },
      // The handshake's ACK of the late connection (at least; more if the server resent its SYN-ACK).
      rulesHit: { 'hold-ack': abort ? 1 : { min: 1 } },
      because: [
        ...because,
        `the late connection's data reaches a full queue: ${abort ? 'tcp_abort_on_overflow=1 → RST' : 'tcp_abort_on_overflow=0 → dropped, request kept, the read hangs'}`,
      ],
    };
  },
  script: (ctx, expected) => {
    const { params } = ctx;
    const steps: ClientStep[] = [];
    const timeout = (label: string) => (expected.steps[label]?.ok ? 2000 : stepTimeoutMs(expected.steps[label]));
    if (params.overflow === 'cookie') return cookieScript(ctx, expected, timeout);
    if (params.overflow === 'syn') {
      const n = Object.keys(expected.steps).length;
      for (let i = 0; i < n; i++) steps.push({ op: 'connect', sock: i, label: `connect-${i}`, timeoutMs: timeout(`connect-${i}`) });
      return steps;
    }
    const { maxAck } = listenBacklog(ctx);
    for (let i = 0; i < maxAck; i++) steps.push({ op: 'connect', sock: i, label: `connect-${i}`, timeoutMs: 2000 });
    const late = maxAck;
    steps.push(
      { op: 'connect', sock: late, label: 'connect-late', bindPort: LATE_PORT, timeoutMs: 2000 },
      { op: 'connect', sock: late + 1, label: 'connect-filler', timeoutMs: 2000 },
      { op: 'write', sock: late, label: 'write-late', bytes: BYTES, timeoutMs: 2000 },
      { op: 'read', sock: late, label: 'read-late', timeoutMs: 2000 },
      { op: 'connect', sock: late + 2, label: 'connect-dropped', timeoutMs: timeout('connect-dropped') },
    );
    return steps;
  },
});
