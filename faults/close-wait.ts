/**
 * close-wait — the target never calls close() (a leaked connection in the server).
 *
 * A client sees: its close() (or shutdown(SHUT_WR)) succeeds and the server's kernel ACKs the FIN
 * — after its delayed-ACK timer, ≈40 ms — so the client moves FIN_WAIT1 → FIN_WAIT2, but no FIN
 * ever comes back. The server's socket sits in CLOSE_WAIT (Recv-Q 0: the app read everything,
 * EOF included) for as long as the process lives. After close() the client's orphan gives up
 * after tcp_fin_timeout and vanishes without a packet; after shutdown(SHUT_WR) the socket is not
 * an orphan and stays in FIN_WAIT2 with no timer at all, for as long as the client holds it.
 *
 * On a server of the user's own (or a built-in mode that closes) the scenario asks a question
 * instead: does the server close when the client closes? The Result's `answers` says what it did,
 * with times — closed its side N ms after the client's close (no leak), or held the connection
 * until the end (a CLOSE_WAIT leak) — and the verdict follows the documented expectation: a
 * server of its own must close; the built-in no-close server is the leak, reproduced.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7: "FIN_WAIT2 ≈ tcp_fin_timeout = 60 s,
 * seen in netstat"): with tcp_fin_timeout ≤ 60 s the orphan is no longer a full socket but a
 * timewait sock in the FIN_WAIT2 substate (sock_diag still shows FIN_WAIT2, with no owner and
 * no timers of a full socket), counted in TcpExtTWKilled (≤ 4 s) or TcpExtTW; tcp_fin_timeout
 * below 3.5 × RTO (728 ms on a veth: the RTO after the FIN's delayed ACK, 208 ms) is raised to
 * it; above 60 s the full socket waits (fin_timeout - 60 s) and then a timewait sock waits as long again (modelled, not measured).
 */
import { z } from 'zod';
import { predictFinWait2, rtoAfterDelayedFinAckMs } from '../harness/model/teardown.js';
import { TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { settleMs, watchedSpanMs, watchLagMs } from '../harness/model/watch.js';
import { defineFault, type Expectation, type FaultContext, type ServerQuestion } from './define.js';

/**
 * The question close-wait (and last-ack-drop) asks of the server: after the client's close (step `fromStep`), does the
 * server's socket leave ESTABLISHED/CLOSE_WAIT? `leak`: the documented answer is no (the built-in
 * no-close server); otherwise yes.
 */
export function closesQuestion(leak: boolean, fromStep = 'end'): ServerQuestion {
  return {
    question: 'does the server close when the client closes?',
    side: 'server',
    holding: ['ESTABLISHED', 'CLOSE_WAIT'],
    fromStep,
    fromWhat: "the client's close",
    expect: leak ? 'holds' : 'leaves',
    leaves: 'closed its side (no CLOSE_WAIT leak)',
    holds: 'held the connection (a CLOSE_WAIT leak)',
  };
}

/** The server under the fault is the built-in no-close server (the leak reproduced), not a server that may close. */
const isLeaker = (ctx: FaultContext<unknown>) => ctx.server.mode === 'no-close';

/** What the client writes before it closes: 1000 bytes to the built-in server; nothing to one that would answer garbage (nginx: a 400 and its own close first). */
const bytesOf = (ctx: FaultContext<{ bytes?: number | undefined }>) => ctx.params.bytes ?? (isLeaker(ctx) ? 1000 : 0);

/**
 * The client's orphaned FIN_WAIT2, from its sysctls: the model's prediction, and how long the
 * watcher sees it (the span's `lastsMs`; the script observes past its end).
 */
export function finWait2Orphan(ctx: FaultContext<{ bytes?: number | undefined }>) {
  const { sysctls, clock, watchIntervalMs } = ctx;
  const num = (k: string, d: number) => Number(sysctls.client[k] ?? d);
  // The FIN's own ACK (the server's delayed ACK) is the last RTT sample before tcp_fin_time() reads the RTO.
  const [rtoLo, rtoHi] = rtoAfterDelayedFinAckMs(num('net.ipv4.tcp_rto_min_us', TCP_RTO_MIN_MS * 1000), num('net.ipv4.tcp_rto_max_ms', TCP_RTO_MAX_MS), clock, bytesOf(ctx) > 0 ? 1 : 0);
  const finTimeoutS = num('net.ipv4.tcp_fin_timeout', 60);
  const lo = predictFinWait2(finTimeoutS, rtoLo, clock);
  const p = predictFinWait2(finTimeoutS, rtoHi, clock);
  const windowMs: [number, number] = [lo.windowMs[0], p.windowMs[1]];
  const rtoMs = rtoLo === rtoHi ? `${rtoHi}` : `${rtoLo}–${rtoHi}`;
  return { rtoMs, finTimeoutS, p: { ...p, windowMs }, lastsSeenMs: watchedSpanMs(windowMs, clock, watchIntervalMs) };
}

/**
 * How long the script watches after the client's close: until the orphan must be gone; for
 * shutdown(), as long again as tcp_fin_timeout, to show nothing happens.
 */
function closeWaitObserveMs(ctx: FaultContext<{ how: 'close' | 'shutdown'; bytes?: number | undefined }>): number {
  const { finTimeoutS, lastsSeenMs } = finWait2Orphan(ctx);
  return ctx.params.how === 'close' ? lastsSeenMs[1] + 200 : finTimeoutS * 1000 + 500 + watchLagMs(ctx.clock, ctx.watchIntervalMs);
}

export const closeWait = defineFault({
  name: 'close-wait',
  summary: 'the target accepts and reads but never calls close() (built-in server mode no-close)',
  observes: 'server CLOSE_WAIT for ever; client FIN_WAIT2 until tcp_fin_timeout after close(), or for ever after shutdown(SHUT_WR)',
  shapedBy: { client: ['net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_rto_min_us', 'net.ipv4.tcp_rto_max_ms'] },
  params: z.object({
    how: z.enum(['close', 'shutdown']).default('close').describe('how the client ends its side: close() (orphan, tcp_fin_timeout applies) or shutdown(SHUT_WR) (no timeout)'),
    bytes: z.coerce
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .describe('bytes the client writes before it closes (default 1000 for the built-in server, which reads and discards them; 0 for a server of your own, whose protocol would answer bytes it cannot parse)'),
  }),
  server: () => ({ mode: 'no-close' }),
  // On a server of the user's own it asks: does the server close when the client closes?
  needs: () => 'any',
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_fin_timeout': '2' } }),
  plan: () => ({}),
  expect: (ctx): Expectation => {
    const { params } = ctx;
    const { rtoMs, finTimeoutS, p, lastsSeenMs } = finWait2Orphan(ctx);
    const closing = params.how === 'close';
    if (!isLeaker(ctx)) {
      return {
        steps: { connect: { ok: true, errno: null }, write: { ok: true, bytes: bytesOf(ctx) }, end: { ok: true } },
        asks: [closesQuestion(false)],
        because: [
          `a server that may close: the harness asks whether it closes its side when the client ${closing ? 'closes' : 'shuts down its sending side'}, ` +
            `watching its socket for ${(closeWaitObserveMs(ctx) / 1000).toFixed(1)} s; a server that holds the connection in CLOSE_WAIT leaks it`,
        ],
      };
    }
    return {
      asks: [closesQuestion(true)],
      // The built-in no-close server reports its syscalls: it read the client's EOF and never closed.
      serverCalls: [
        { op: 'read', eof: true },
        { op: 'close', absent: true },
      ],
      steps: {
        connect: { ok: true, errno: null },
        write: { ok: true, bytes: bytesOf(ctx) },
        // The server ACKs the FIN only when its delayed-ACK timer fires: right after shutdown() it is FIN_WAIT1.
        end: closing ? { ok: true } : { ok: true, tcpState: 'FIN_WAIT1' },
        // After the observation: the orphan is gone, the socket of a shutdown() is still in FIN_WAIT2.
        ...(closing ? {} : { after: { ok: true, tcpState: 'FIN_WAIT2' } }),
      },
      states: { client: ['FIN_WAIT1', 'FIN_WAIT2'], server: ['CLOSE_WAIT'] },
      statesAbsent: { client: ['TIME_WAIT', 'CLOSING'], server: ['LAST_ACK', 'TIME_WAIT'] },
      spans: [
        closing
          ? { side: 'client', state: 'FIN_WAIT2', sockets: 1, then: 'GONE', lastsMs: lastsSeenMs }
          : { side: 'client', state: 'FIN_WAIT2', sockets: 1, then: 'held' },
        { side: 'server', state: 'CLOSE_WAIT', sockets: 1, then: 'held' },
      ],
      // The orphan's timewait sock is counted when it is made. (A shutdown() socket becomes one too, but only
      // when the probe exits and closes it — before the counters are read — so it is not asserted.)
      counters: { client: closing ? { [p.counter]: 1, TcpRetransSegs: 0 } : { TcpRetransSegs: 0 }, server: { TcpRetransSegs: 0 } },
      because: closing
        ? [
            `tcp_fin_timeout ${finTimeoutS} s, RTO ${rtoMs} ms (after the delayed ACK of the FIN) → orphan FIN_WAIT2 for ${p.timeoutMs} ms (${p.limitedBy}), held by a ${p.holder}; ` +
              `counted in ${p.counter}`,
          ]
        : ['shutdown(SHUT_WR): the socket is not orphaned, so no FIN_WAIT2 timer: it stays while the client holds it'],
    };
  },
  script: (ctx) => {
    const { params, watchIntervalMs } = ctx;
    const leaker = isLeaker(ctx);
    return [
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      { op: 'write', label: 'write', bytes: bytesOf(ctx), timeoutMs: 5000 },
      // A server that may close: let the watcher see its socket ESTABLISHED first, or a quick close goes unseen.
      ...(leaker ? [] : [{ op: 'sleep' as const, ms: settleMs(watchIntervalMs) }]),
      params.how === 'close' ? { op: 'close', label: 'end' } : { op: 'shutdown', how: 'wr', label: 'end' },
      { op: 'sleep', ms: Math.ceil(closeWaitObserveMs(ctx)) },
      ...(params.how === 'close' || !leaker ? [] : [{ op: 'tcpinfo' as const, label: 'after' }]),
    ];
  },
});
