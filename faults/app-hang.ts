/**
 * app-hang — the server's application hangs mid-connection (a deadlock, a GC pause, a stopped
 * process) while its kernel carries on. The harness freezes the server's processes after the
 * handshake (SIGSTOP to its process group, or the cgroup freezer for a container): a real
 * mechanism that works on any server.
 *
 * A client sees nothing wrong at the TCP level, which is the point of the seeds' lesson: TCP
 * keepalive is answered by the kernel, so it cannot see a hung application; only an application
 * heartbeat (a read with a timeout) or TCP_USER_TIMEOUT can. Variants (`--set variant=`):
 * - `write` (default): the client keeps writing. The server's receive queue fills to its receive
 *   buffer and its window goes to zero (TcpExtTCPToZeroWindowAdv), the client's send queue fills
 *   to its send buffer, and write() stops — EAGAIN on the non-blocking probe — after as many bytes
 *   as the two buffers hold (harness/model/hang.ts predictFill). Zero-window probes go out with
 *   backoff (TcpExtTCPWinProbe, tcpi_backoff) and each is answered: the connection stays
 *   ESTABLISHED for ever.
 * - `user-timeout`: the same with TCP_USER_TIMEOUT: measured on 6.18, the abort comes the user
 *   timeout after the *first* zero-window probe, answered or not (tcp_probe_timer keeps
 *   icsk_probes_tstamp until the window opens): the blocked write fails with ETIMEDOUT.
 * - `keepalive`: the client sends a request and waits with SO_KEEPALIVE: more probes than
 *   TCP_KEEPCNT go out, every one answered, and the connection is never dropped.
 * - `heartbeat`: the client sends a ping and reads with a timeout: the read times out — the
 *   application notices — while TCP still says ESTABLISHED.
 * In every variant a new connect completes at once (the kernel finishes the handshake) and piles
 * up in the accept queue of the frozen server.
 *
 * Where this kernel differs from the seeds: keepalive is not armed while data waits to be sent
 * (tcp_keepalive_timer: "it is alive without keepalive"), so a writer stuck on a zero window
 * sends only zero-window probes; and before 5.11 TCP_USER_TIMEOUT never fired against an
 * answered zero window (icsk_probes_out was reset by every answer), now it does.
 */
import { z } from 'zod';
import {
  bufferSysctlsFrom,
  predictFill,
  predictKeepaliveAnswered,
  predictZeroWindowUserTimeout,
  countBy,
  zeroWindowSchedule,
} from '../harness/model/hang.js';
import { predictIdleWait } from '../harness/model/data.js';
import { answeredWindowMs } from '../harness/model/handshake.js';
import { TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, stepTimeoutMs, type Expectation, type FaultContext } from './define.js';

const VARIANTS = ['write', 'user-timeout', 'keepalive', 'heartbeat'] as const;

/** More than any send and receive buffer together (tcp_wmem/tcp_rmem maxima are 4 and 32 MiB): the write can only stop. */
export const FILL_BYTES = 64 << 20;
/** The write that fills the buffers gives up after this (ms): long after the window closed (at most TCP_DELACK_MAX). */
export const FILL_TIMEOUT_MS = 1000;
/** MSS on a veth or a Docker bridge: MTU 1500 − 40 − 12 bytes of timestamps. */
export const VETH_MSS = 1448;
const REQUEST_BYTES = 100;

const params = z.object({
  variant: z.enum(VARIANTS).default('write').describe('write: fill the buffers; user-timeout: the same with TCP_USER_TIMEOUT; keepalive: wait with SO_KEEPALIVE; heartbeat: a read with a timeout'),
  sndbuf: z.coerce.number().int().min(1024).max(4 << 20).default(65536).describe('SO_SNDBUF of the client (the kernel doubles it; variants write, user-timeout)'),
  observeMs: z.coerce.number().int().min(0).max(600_000).default(2000).describe('how long the client stays blocked after the fill, ms (variant write)'),
  userTimeoutMs: z.coerce.number().int().min(1).max(600_000).default(2000).describe('TCP_USER_TIMEOUT in ms (variant user-timeout)'),
  keepIdleS: z.coerce.number().int().min(1).max(3600).default(1).describe('TCP_KEEPIDLE in s (variant keepalive)'),
  keepIntvlS: z.coerce.number().int().min(1).max(3600).default(1).describe('TCP_KEEPINTVL in s (variant keepalive)'),
  keepCnt: z.coerce.number().int().min(1).max(127).default(3).describe('TCP_KEEPCNT (variant keepalive)'),
  heartbeatMs: z.coerce.number().int().min(1).max(600_000).default(1000).describe('how long the heartbeat waits for an answer, ms (variant heartbeat)'),
});
type Params = z.infer<typeof params>;

/** The persist timer's schedule from the client's sysctls. */
function schedule({ sysctls, clock }: FaultContext<Params>) {
  const rtoMinUs = Number(sysctls.client['net.ipv4.tcp_rto_min_us'] ?? TCP_RTO_MIN_MS * 1000);
  const rtoMaxMs = Number(sysctls.client['net.ipv4.tcp_rto_max_ms'] ?? TCP_RTO_MAX_MS);
  return zeroWindowSchedule(rtoMinUs, rtoMaxMs, clock);
}

/** How long the keepalive variant waits: until an unanswered keepalive would have dropped the connection, one interval more, and half a second. */
export function keepaliveWaitMs(p: Params): number {
  return (p.keepIdleS + (p.keepCnt + 1) * p.keepIntvlS) * 1000 + 500;
}

/** The user-timeout variant's prediction (expect() and script() both size the write's timeout from it). */
function userTimeout(ctx: FaultContext<Params>) {
  return predictZeroWindowUserTimeout(ctx.params.userTimeoutMs, schedule(ctx), ctx.clock);
}

export const appHang = defineFault({
  name: 'app-hang',
  summary: "the server's application hangs mid-connection (its processes frozen) while its kernel keeps answering",
  observes: 'writes stop when both buffers are full (zero window, probes answered); keepalive never fires; only TCP_USER_TIMEOUT or a heartbeat notices; new connects pile up in the accept queue',
  shapedBy: {
    client: ['net.ipv4.tcp_rto_min_us', 'net.ipv4.tcp_rto_max_ms', 'net.core.wmem_max'],
    server: ['net.ipv4.tcp_rmem', 'net.core.rmem_max'],
  },
  params,
  // The echo server, frozen before the client writes: nothing is ever read or echoed.
  server: () => ({ mode: 'echo' }),
  needs: () => 'freeze',
  fastSysctls: () => ({}),
  plan: () => ({}),
  triggers: {
    freeze: () => ({ kind: 'freeze-server' }),
  },
  expect: (ctx): Expectation => {
    const { params: p, sysctls, clock } = ctx;
    // A frozen server's kernel answers at once: one exchange on the veth and the probe's wake-up.
    const now = answeredWindowMs(clock);
    const e: Expectation = {
      steps: {
        connect: { ok: true, errno: null },
        // The frozen server's kernel completes the handshake: the connection waits in its accept queue.
        'connect-queued': { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: now },
      },
      states: { client: ['ESTABLISHED'], server: ['ESTABLISHED'] },
      listen: { server: { rqMax: { min: 1 } } },
      because: [],
    };
    const client: Record<string, number | { min?: number; max?: number }> = {};
    const server: Record<string, number | { min?: number; max?: number }> = {};
    const buffers = bufferSysctlsFrom(sysctls.client, sysctls.server);
    const fill = predictFill(buffers, p.sndbuf, VETH_MSS);
    const range = (r: [number, number], plus = 0) => ({ min: r[0] + plus, max: r[1] + plus });
    switch (p.variant) {
      case 'write': {
        const s = schedule(ctx);
        // Zero-window probes by the snapshot after the observation (tcpi_backoff counts them: an answer that keeps the window shut does not reset it).
        const snapshotMs = FILL_TIMEOUT_MS + p.observeMs;
        const probes = countBy((k) => s.probeAtMs(k), snapshotMs, snapshotMs + 3 * wakeupSlackMs(clock));
        e.steps.fill = { ok: false, errno: null, timedOut: true, bytes: range(fill.writtenBytes) };
        e.steps.stalled = {
          tcpState: 'ESTABLISHED',
          // The server's kernel holds what it acknowledged (+1: the SYN), the rest waits behind a zero window.
          tcp: { bytesAcked: range(fill.acceptedBytes, 1), notsentBytes: range(fill.queuedBytes), sndWnd: 0 },
        };
        e.steps.still = { tcpState: 'ESTABLISHED', tcp: { backoff: { min: probes[0], max: probes[1] }, sndWnd: 0 } };
        client.TcpExtTCPWinProbe = { min: probes[0] };
        // Keepalive is not even armed while data waits (tcp_keepalive_timer): it could not help.
        client.TcpExtTCPKeepAlive = 0;
        client.TcpExtTCPAbortOnTimeout = 0;
        server.TcpExtTCPToZeroWindowAdv = { min: 1 };
        e.because!.push(
          fill.because,
          `zero-window probes every ${s.baseMs[0]}..${s.baseMs[1]} ms, doubling, each answered: ${probes[0] === probes[1] ? probes[0] : `${probes[0]}..${probes[1]}`} by ${(snapshotMs / 1000).toFixed(1)} s, and the connection stays ESTABLISHED`,
        );
        break;
      }
      case 'user-timeout': {
        const u = userTimeout(ctx);
        e.steps.fill = { ok: false, errno: 'ETIMEDOUT', bytes: range(fill.writtenBytes), windowMs: u.windowMs };
        e.steps.after = { tcpState: 'CLOSE' };
        client.TcpExtTCPWinProbe = { min: u.probes[0], max: u.probes[1] };
        client.TcpExtTCPAbortOnTimeout = 1;
        server.TcpExtTCPToZeroWindowAdv = { min: 1 };
        e.because!.push(fill.because, u.because);
        break;
      }
      case 'keepalive': {
        const waitMs = keepaliveWaitMs(p);
        const k = predictKeepaliveAnswered(p.keepIdleS, p.keepIntvlS, p.keepCnt, waitMs, clock);
        e.steps.request = { ok: true, bytes: REQUEST_BYTES };
        // Nothing happens: no answer, no error — the wait runs out.
        e.steps.idle = { ok: false, timedOut: true, windowMs: predictIdleWait(waitMs, clock) };
        e.steps.alive = { tcpState: 'ESTABLISHED' };
        client.TcpExtTCPKeepAlive = { min: k.probes[0], max: k.probes[1] };
        client.TcpExtTCPAbortOnTimeout = 0;
        e.because!.push(k.because);
        break;
      }
      case 'heartbeat': {
        e.steps.ping = { ok: true, bytes: 16 };
        e.steps.pong = { ok: false, timedOut: true, errno: null, windowMs: predictIdleWait(p.heartbeatMs, clock) };
        e.steps['tcp-view'] = { tcpState: 'ESTABLISHED' };
        client.TcpExtTCPKeepAlive = 0;
        e.because!.push(`the heartbeat's read gives up after ${p.heartbeatMs} ms: the application notices the hang, while TCP still says ESTABLISHED`);
        break;
      }
    }
    // The abort by TCP_USER_TIMEOUT takes the socket from ESTABLISHED to CLOSE (tcp_done): counted as a reset.
    client.TcpEstabResets = p.variant === 'user-timeout' ? 1 : 0;
    server.TcpEstabResets = 0;
    e.counters = { client, server };
    e.because!.push('a new connect completes at once: the frozen server\'s kernel finishes the handshake and queues it for an accept() that never comes');
    return e;
  },
  // Any client: the frozen server's kernel keeps every connection; only the client can end it.
  connection: () => ({
    state: 'ESTABLISHED',
    from: 'strike',
    because: "the frozen server's kernel answers everything (ACKs, zero-window and keepalive probes): it never ends the connection — only the client's own timeout, TCP_USER_TIMEOUT or an application heartbeat can",
  }),
  script: (ctx, expected) => {
    const { params: p, watchIntervalMs } = ctx;
    const steps: ClientStep[] = [];
    if (p.variant === 'write' || p.variant === 'user-timeout') steps.push({ op: 'setsockopt', opt: 'SNDBUF', value: p.sndbuf });
    if (p.variant === 'user-timeout') steps.push({ op: 'setsockopt', opt: 'USER_TIMEOUT', value: p.userTimeoutMs });
    if (p.variant === 'keepalive') {
      steps.push(
        { op: 'setsockopt', opt: 'KEEPIDLE', value: p.keepIdleS },
        { op: 'setsockopt', opt: 'KEEPINTVL', value: p.keepIntvlS },
        { op: 'setsockopt', opt: 'KEEPCNT', value: p.keepCnt },
        { op: 'setsockopt', opt: 'KEEPALIVE', value: 1 },
      );
    }
    steps.push(
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      // Hold ESTABLISHED until the watchers saw it (and a server of the user's own accepted it).
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
      { op: 'barrier', name: 'freeze' },
      { op: 'connect', sock: 1, label: 'connect-queued', timeoutMs: 2000 },
    );
    switch (p.variant) {
      case 'write':
        steps.push(
          { op: 'write', label: 'fill', bytes: FILL_BYTES, timeoutMs: FILL_TIMEOUT_MS },
          { op: 'tcpinfo', label: 'stalled' },
          { op: 'sleep', ms: p.observeMs },
          { op: 'tcpinfo', label: 'still' },
        );
        break;
      case 'user-timeout':
        steps.push({ op: 'write', label: 'fill', bytes: FILL_BYTES, timeoutMs: stepTimeoutMs(expected.steps.fill) }, { op: 'tcpinfo', label: 'after' });
        break;
      case 'keepalive':
        steps.push(
          { op: 'write', label: 'request', bytes: REQUEST_BYTES, timeoutMs: 2000 },
          { op: 'wait', label: 'idle', timeoutMs: keepaliveWaitMs(p) },
          { op: 'tcpinfo', label: 'alive' },
        );
        break;
      case 'heartbeat':
        steps.push(
          { op: 'write', label: 'ping', bytes: 16, timeoutMs: 2000 },
          { op: 'read', label: 'pong', timeoutMs: p.heartbeatMs },
          { op: 'tcpinfo', label: 'tcp-view' },
        );
        break;
    }
    return steps;
  },
});
