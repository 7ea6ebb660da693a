/**
 * rst-close — an abortive close: close() sends a RST instead of a FIN, on either side
 * (`--set side=client|server`), for one of two reasons (`--set how=`):
 * - `unread`: data sits unread in the closer's receive queue (net/ipv4/tcp.c __tcp_close: "Unread
 *   data was tossed, zap the connection", RFC 2525 2.17) → TcpExtTCPAbortOnClose. Client side: the
 *   echo server sends the client's bytes back and the client closes without reading them; server
 *   side: the `close-unread` server closes as soon as the data arrives.
 * - `linger0`: SO_LINGER {1, 0} (and nothing unread — unread data is checked first): close() calls
 *   tcp_disconnect(), which sends the RST → TcpExtTCPAbortOnData (the kernel's name; no data was
 *   lost). Client side: the client reads its echo back first; server side: the `linger0` server
 *   reads the data, then closes.
 * Either way close() returns 0 at once, the closer's socket goes straight from ESTABLISHED to gone
 * (CLOSE is never hashed, so sock_diag never shows it) with no FIN_WAIT1/2 and no TIME_WAIT, the
 * RST is the only thing it sends (a counting rule on its OUTPUT: one RST, no FIN), and the peer —
 * ESTABLISHED → gone too, never CLOSE_WAIT — counts TcpEstabResets. A client peer sees ECONNRESET
 * on its very next read (no EOF first) and EPIPE on the write after it.
 * - `linger` (client only): SO_LINGER {1, N} against a dead peer (a barrier after the handshake
 *   drops everything the client sends), with data unacknowledged: close() blocks N s, then returns
 *   0 — not an error, not EWOULDBLOCK — and the socket is left behind as an orphan in FIN_WAIT1,
 *   retransmitting, until tcp_orphan_retries (counted from the first RTO retransmission) destroys
 *   it silently: no RST at all (TcpExtTCPAbortOnTimeout). If the connection times out under
 *   tcp_retries2 while close() still waits, close() returns then, early — still 0.
 *
 * Where this kernel differs from the seeds: seed 003 says close() with a linger timeout that
 * expires "returns an error, the unsent data is dropped and the socket is forcibly closed". On
 * 6.18 (as on every Linux since inet_release ignores the return of tcp_close) close() returns 0
 * after N s, the unsent data and the FIN stay queued and keep being retransmitted by the orphan,
 * and no RST is ever sent; the non-blocking probe blocks too (Linux ignores O_NONBLOCK for the
 * linger wait). Seed 003's "l_onoff != 0, l_linger = 0 → RST" holds, but the counter that records
 * it is TcpExtTCPAbortOnData, not AbortOnClose, and unread data wins over a zero linger. Seed 001
 * describes the peer's reads after a RST failing with ECONNRESET: true for the first read here,
 * the one after it returns EOF (the socket is closed), and writes fail with EPIPE (SIGPIPE
 * ignored). With data and FIN both in flight the loss probe goes out after ~2·srtt + 2 ms (not one
 * RTO), re-sends the FIN, and the RTO chain still starts from the data's transmission.
 */
import { z } from 'zod';
import { dataSysctlsFrom, predictLingerClose } from '../harness/model/data.js';
import { immediateWindowMs } from '../harness/model/tcp.js';
import type { KernelClock } from '../harness/model/timer-wheel.js';
import { observeUntilMs, settleMs, watchedWindowMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import type { Side } from '../harness/core/sysctl.js';
import { defineFault, type Expectation, type FaultContext } from './define.js';
import type { Rule } from './iptables.js';

const SIDES = ['client', 'server'] as const;
const HOWS = ['unread', 'linger0', 'linger'] as const;

const params = z
  .object({
    side: z.enum(SIDES).default('client').describe('which side closes abortively: client or server'),
    how: z.enum(HOWS).default('unread').describe('unread: close with unread data; linger0: SO_LINGER {1,0}; linger: SO_LINGER {1,N} against a dead peer (client only)'),
    bytes: z.coerce.number().int().min(1).max(65536).default(1000).describe('bytes the client writes (echoed back for side=client)'),
    lingerS: z.coerce.number().int().min(1).max(60).default(1).describe('SO_LINGER l_linger in s (how=linger)'),
  })
  .refine((p) => !(p.how === 'linger' && p.side === 'server'), { path: ['how'], message: 'how=linger is client-side only (use side=client)' });

type Params = z.infer<typeof params>;

const peerOf = (s: Side): Side => (s === 'client' ? 'server' : 'client');

/**
 * how=linger, from the client's sysctls: the model's prediction of the lingering close and its
 * orphan, and when the watcher reports the orphan gone, in ms from the start of the write (the
 * `stateLeft` window; the script observes past it).
 */
export function lingerClose({ params: p, sysctls, clock, watchIntervalMs }: FaultContext<Params>) {
  const orphanRetries = Number(sysctls.client['net.ipv4.tcp_orphan_retries'] ?? 0);
  const retransCollapse = Number(sysctls.client['net.ipv4.tcp_retrans_collapse'] ?? 1) !== 0;
  const m = predictLingerClose(dataSysctlsFrom(sysctls.client, sysctls.server), { lingerS: p.lingerS, orphanRetries, retransCollapse }, clock);
  return { orphanRetries, m, goneSeenMs: watchedWindowMs(m.goneWindowMs, clock, watchIntervalMs) };
}

export const rstClose = defineFault({
  name: 'rst-close',
  summary: 'close() with unread data or SO_LINGER {1,0} sends a RST (either side); SO_LINGER {1,N} against a dead peer',
  observes: 'closer: ESTABLISHED → gone, no TIME_WAIT, one RST; peer: ECONNRESET on the next read. linger N: close() blocks N s, returns 0, orphan in FIN_WAIT1',
  shapedBy: {
    client: [
      'net.ipv4.tcp_retries2',
      'net.ipv4.tcp_orphan_retries',
      'net.ipv4.tcp_rto_min_us',
      'net.ipv4.tcp_rto_max_ms',
      'net.ipv4.tcp_early_retrans',
      'net.ipv4.tcp_sack',
      'net.ipv4.tcp_retrans_collapse',
    ],
    server: ['net.ipv4.tcp_sack'],
  },
  params,
  server: (p) => ({ mode: p.side === 'client' ? 'echo' : p.how === 'unread' ? 'close-unread' : 'linger0' }),
  // The echo of the client's bytes (side=client) or the server's own abortive close (side=server) is a built-in behaviour.
  needs: (p) =>
    p.side === 'client' && p.how === 'linger'
      ? 'any'
      : p.side === 'client'
        ? { mode: 'echo', why: "the client closes with the server's echo of its bytes unread (or read back, for linger0)" }
        : { mode: p.how === 'unread' ? 'close-unread' : 'linger0', why: 'the abortive close is the server\'s own' },
  // The orphan left by a lingering close dies after tcp_orphan_retries (0 = 8: ~100 s); 1: ~1.4 s.
  fastSysctls: (p) => (p.how === 'linger' ? { client: { 'net.ipv4.tcp_orphan_retries': '1' } } : {}),
  // Count what the closer sends: the proof that the close was a RST (and no FIN), or a FIN only.
  plan: ({ params: p, endpoints }) => {
    const port = p.side === 'client' ? { dport: endpoints.port } : { sport: endpoints.port };
    const count = (name: string, flag: 'RST' | 'FIN'): Rule => ({
      name,
      side: p.side,
      hook: 'OUTPUT',
      proto: 'tcp',
      tcp: { ...port, flags: { mask: [flag], set: [flag] } },
      target: { kind: 'ACCEPT' },
    });
    return { rules: [count('rst-sent', 'RST'), count('fin-sent', 'FIN')] };
  },
  triggers: {
    dead: ({ endpoints }) => ({
      kind: 'rules',
      rules: [{ name: 'drop-in', side: 'server', hook: 'INPUT', proto: 'tcp', src: endpoints.clientAddress, tcp: { dport: endpoints.port }, target: { kind: 'DROP' } }],
    }),
  },
  expect: (ctx) => (ctx.params.how === 'linger' ? expectLinger(ctx) : expectRst(ctx.params, ctx.clock)),
  script: (ctx) => {
    const { params: p, clock, watchIntervalMs } = ctx;
    const settle = { op: 'sleep' as const, ms: settleMs(watchIntervalMs) };
    const connect = { op: 'connect' as const, label: 'connect', timeoutMs: 5000 };
    const write = { op: 'write' as const, label: 'write', bytes: p.bytes, timeoutMs: 2000 };
    if (p.how === 'linger') {
      const { m, goneSeenMs } = lingerClose(ctx);
      return [
        { op: 'setsockopt', opt: 'LINGER', value: p.lingerS, onoff: 1 },
        connect,
        settle,
        { op: 'barrier', name: 'dead' },
        write,
        { op: 'close', label: 'close' },
        // close() returned (at the earliest at the start of its window; both from the write);
        // the orphan lives on in the kernel: keep observing until it must be gone.
        { op: 'sleep', ms: observeUntilMs(goneSeenMs[1] - m.closeWindowMs[0], clock, watchIntervalMs) },
      ];
    }
    if (p.side === 'server') {
      // Hold ESTABLISHED before the write: the server closes as soon as the data arrives.
      return [
        connect,
        settle,
        write,
        settle,
        { op: 'read', label: 'read-reset', timeoutMs: 2000 },
        { op: 'read', label: 'read-after', timeoutMs: 2000 },
        { op: 'write', label: 'write-epipe', bytes: p.bytes, timeoutMs: 2000 },
        settle,
      ];
    }
    const steps: ClientStep[] = [];
    if (p.how === 'linger0') steps.push({ op: 'setsockopt', opt: 'LINGER', value: 0, onoff: 1 });
    steps.push(connect, write);
    // linger0: read the echo back so nothing is unread (else unread data decides: AbortOnClose).
    if (p.how === 'linger0') steps.push({ op: 'read', label: 'read-echo', bytes: p.bytes, timeoutMs: 2000 });
    steps.push(settle, { op: 'tcpinfo', label: 'before-close' }, { op: 'close', label: 'close' }, settle);
    return steps;
  },
});

function expectRst(p: Params, clock: KernelClock): Expectation {
  const closer: Side = p.side;
  const peer = peerOf(closer);
  const now = immediateWindowMs(clock);
  const e: Expectation = {
    steps: { connect: { ok: true }, write: { ok: true, bytes: p.bytes } },
    states: { [closer]: ['ESTABLISHED', 'GONE'], [peer]: ['ESTABLISHED', 'GONE'] },
    statesAbsent: {
      [closer]: ['FIN_WAIT1', 'FIN_WAIT2', 'CLOSING', 'TIME_WAIT', 'LAST_ACK'],
      [peer]: ['CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT'],
    },
    // Straight from ESTABLISHED to gone on both sides: no FIN handshake, no TIME_WAIT.
    spans: [
      { side: closer, state: 'ESTABLISHED', sockets: 1, then: 'GONE' },
      { side: peer, state: 'ESTABLISHED', sockets: 1, then: 'GONE' },
    ],
    counters: {
      // tcp_set_state(TCP_CLOSE) from ESTABLISHED counts TcpEstabResets on both sides.
      [closer]: {
        TcpExtTCPAbortOnClose: p.how === 'unread' ? 1 : 0,
        TcpExtTCPAbortOnData: p.how === 'linger0' ? 1 : 0,
        TcpOutRsts: 1,
        TcpEstabResets: 1,
      },
      [peer]: { TcpEstabResets: 1, TcpOutRsts: 0, TcpExtTCPAbortOnClose: 0, TcpExtTCPAbortOnData: 0 },
    },
    rulesHit: { 'rst-sent': 1, 'fin-sent': 0 },
    // The built-in server's own syscalls: the peer's ECONNRESET is an observed read, not an inference.
    serverCalls:
      closer === 'client'
        ? [{ op: 'read', ok: false, errno: 'ECONNRESET' }]
        : p.how === 'unread'
          ? [{ op: 'read', absent: true }, { op: 'close', ok: true }]
          : [{ op: 'read', ok: true }, { op: 'close', ok: true }],
    because: [
      p.how === 'unread'
        ? `${p.bytes} bytes unread in the ${closer}'s receive queue: __tcp_close sends a RST (TcpExtTCPAbortOnClose)`
        : `SO_LINGER {1,0} on the ${closer}, nothing unread: __tcp_close → tcp_disconnect sends a RST (TcpExtTCPAbortOnData)`,
    ],
  };
  if (closer === 'client') {
    e.steps['before-close'] = { tcpState: 'ESTABLISHED' };
    e.steps.close = { ok: true, errno: null, windowMs: now };
    if (p.how === 'linger0') e.steps['read-echo'] = { ok: true, bytes: p.bytes };
  } else {
    // The RST arrived during the settle: the read fails at once, and only that read.
    e.steps['read-reset'] = { ok: false, errno: 'ECONNRESET', windowMs: now, tcpState: 'CLOSE' };
    e.steps['read-after'] = { ok: true, eof: true, bytes: 0, windowMs: now };
    e.steps['write-epipe'] = { ok: false, errno: 'EPIPE' };
  }
  return e;
}

function expectLinger(ctx: FaultContext<Params>): Expectation {
  const p = ctx.params;
  const { orphanRetries, m, goneSeenMs } = lingerClose(ctx);
  const exact = (r: [number, number]) => (r[0] === r[1] ? r[0] : { min: r[0], max: r[1] });
  return {
    steps: {
      connect: { ok: true },
      write: { ok: true, bytes: p.bytes },
      close: { ok: true, errno: m.closeErrno, windowMs: m.closeWindowMs },
    },
    states: { client: ['ESTABLISHED', 'FIN_WAIT1', 'GONE'], server: ['ESTABLISHED'] },
    statesAbsent: { client: ['FIN_WAIT2', 'TIME_WAIT', 'CLOSE_WAIT'], server: ['CLOSE_WAIT', 'GONE'] },
    stateLeft: [{ side: 'client', state: 'FIN_WAIT1', to: 'GONE', fromStep: 'write', windowMs: goneSeenMs }],
    spans: [
      { side: 'client', state: 'ESTABLISHED', sockets: 1, then: 'FIN_WAIT1' },
      { side: 'client', state: 'FIN_WAIT1', sockets: 1, then: 'GONE', retrans: exact(m.rtoRetransmits) },
      { side: 'server', state: 'ESTABLISHED', sockets: 1, then: 'held' },
    ],
    counters: {
      client: {
        TcpOutRsts: 0,
        TcpExtTCPAbortOnClose: 0,
        TcpExtTCPAbortOnData: 0,
        TcpExtTCPAbortOnLinger: 0,
        TcpExtTCPAbortOnTimeout: 1,
        TcpExtTCPLossProbes: m.lossProbes,
        TcpRetransSegs: exact(m.retransSegs),
        TcpExtTCPTimeouts: exact(m.timeouts),
        TcpEstabResets: 0,
      },
      server: { TcpEstabResets: 0, TcpOutRsts: 0, TcpRetransSegs: 0 },
    },
    rulesHit: { 'drop-in': exact(m.segments), 'rst-sent': 0, 'fin-sent': exact(m.finsSent) },
    // Everything the client sent after the handshake was dropped: the server read nothing.
    serverCalls: [{ op: 'read', absent: true }],
    because: [
      `SO_LINGER {1,${p.lingerS}}, FIN unacked: close() sleeps ` +
        {
          linger: `${p.lingerS} s (sk_lingertime, a wheel timer) and returns 0`,
          tcp_retries2: `until tcp_retries2 (${m.retries2LimitMs} ms after the first RTO retransmission) kills the connection under it, before its ${p.lingerS} s — and returns 0`,
          either: `${p.lingerS} s, or until tcp_retries2 (${m.retries2LimitMs} ms after the first RTO retransmission) kills the connection if that comes first (too close to call) — and returns 0`,
        }[m.closeEndedBy],
      (m.closeEndedBy === 'tcp_retries2' ? 'the socket is gone when close() returns' : `then an orphan in FIN_WAIT1: tcp_orphan_retries ${orphanRetries} → gone ${m.orphanLimitMs} ms after the first RTO retransmission`) +
        `; ${m.rtoRetransmits[0] === m.rtoRetransmits[1] ? m.rtoRetransmits[0] : m.rtoRetransmits.join('..')} RTO retransmissions at ` +
        `${m.onTime.retransmitAtMs.map((t) => (t / 1000).toFixed(3)).join(', ')} s (on time); no RST`,
    ],
  };
}
