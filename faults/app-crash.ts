/**
 * app-crash — the target process dies (SIGKILL) while a client holds a connection to it.
 *
 * The kernel outlives the process: it closes every descriptor of the dead process as if the
 * process had called close(), so the peer still gets a clean TCP goodbye. What a client sees
 * depends on what was left in the server socket:
 * - `idle` (nothing unread): the server's socket sends a FIN (FIN_WAIT1, then FIN_WAIT2 as an
 *   orphan/timewait). The client sits in CLOSE_WAIT and a read returns EOF (0). A write still
 *   succeeds — the data goes out, the dead socket answers it with a RST, which lands before
 *   send() even returns (the veth delivers it in the same softirq). Order measured on 6.18: EOF,
 *   write ok, EOF *again* (not ECONNRESET), EPIPE, EPIPE. Why: tcp_reset() maps a RST received in
 *   CLOSE_WAIT to sk_err = EPIPE (not ECONNRESET), and tcp_recvmsg returns 0 on a socket marked
 *   SOCK_DONE (FIN seen) before it looks at sk_err — so a reader never sees the reset at all; the
 *   next write reports the pending EPIPE, the one after it EPIPE from SEND_SHUTDOWN.
 * - `unread` (the server never read what the client sent: the built-in server in mode `sink`, or
 *   any other server frozen before the client writes, then killed): close() with
 *   unread data sends a RST instead of a FIN (net/ipv4/tcp.c __tcp_close, RFC 2525 2.17,
 *   TcpExtTCPAbortOnClose), so the client's very next read fails with ECONNRESET at once — no
 *   EOF ever — and the next write with EPIPE.
 * - `after-death`: the listener died with the process, so a new connect() is answered by a RST
 *   from the kernel: ECONNREFUSED with no timer involved (a round trip on the veth).
 *
 * Where this kernel differs from the seeds: the seeds expect the read after the RST to fail with
 * ECONNRESET; on 6.18 a CLOSE_WAIT socket reports the RST as EPIPE on the next write and reads
 * keep returning EOF. The seeds describe the crashed side's socket as
 * lingering in FIN_WAIT2 for tcp_fin_timeout. On 6.18 (tcp_fin_timeout = 60 = TCP_TIMEWAIT_LEN)
 * the orphan that receives the ACK of its FIN is turned into a timewait socket in substate
 * FIN_WAIT2 at once (tcp_rcv_state_process → tcp_time_wait), and the client's later data kills it
 * with a RST from tcp_timewait_state_process — so TcpExtTCPAbortOnData stays 0 and the RST is only
 * seen in TcpOutRsts (unless the client's data carries its ACK of the FIN and finds the orphan
 * still in FIN_WAIT1: then tcp_rcv_state_process aborts it, TcpExtTCPAbortOnData 1, the same
 * RST). The client counts the RST it receives in CLOSE_WAIT as TcpEstabResets.
 */
import { z } from 'zod';
import { immediateWindowMs } from '../harness/model/tcp.js';
import { settleMs } from '../harness/model/watch.js';
import { defineFault, type Expectation } from './define.js';

const VARIANTS = ['idle', 'unread', 'after-death'] as const;

export const appCrash = defineFault({
  name: 'app-crash',
  summary: 'the target process is SIGKILLed mid-connection (idle, or with unread data); then a new connect',
  observes: 'idle: EOF, a write that succeeds, ECONNRESET, EPIPE; unread data: ECONNRESET at once; after death: ECONNREFUSED',
  shapedBy: { server: ['net.ipv4.tcp_fin_timeout'] },
  params: z.object({
    variant: z.enum(VARIANTS).default('idle').describe('idle: crash on an idle connection; unread: the server holds unread data; after-death: connect after the crash'),
    bytes: z.coerce.number().int().min(1).max(65536).default(1000).describe('bytes the client writes (before the crash for unread, after it for idle)'),
  }),
  server: (p) => ({ mode: p.variant === 'unread' ? 'sink' : 'echo' }),
  // unread: a server that reads (any but the built-in sink) is frozen before the client writes, so the bytes are still unread when it is killed.
  needs: (p) => (p.variant === 'unread' ? 'freeze' : 'kill'),
  fastSysctls: () => ({}),
  plan: () => ({}),
  triggers: {
    hold: ({ params, server }) => (params.variant === 'unread' && server.mode !== 'sink' ? { kind: 'freeze-server' } : { kind: 'all', triggers: [] }),
    crash: () => ({ kind: 'kill-server', signal: 'SIGKILL' }),
  },
  expect: ({ params, clock, server }) => {
    // Nothing here waits on a timer: each outcome is one packet exchange on a veth (µs) plus the
    // probe noticing it, so the window is the wake-up allowance of the model.
    const now = immediateWindowMs(clock);
    const e: Expectation = { steps: { connect: { ok: true } } };
    switch (params.variant) {
      case 'idle':
        e.steps['read-eof'] = { ok: true, eof: true, bytes: 0, windowMs: now, tcpState: 'CLOSE_WAIT' };
        // The RST is processed before send() returns: the socket is CLOSE right after the write.
        e.steps['write-after-fin'] = { ok: true, bytes: params.bytes, tcpState: 'CLOSE' };
        e.steps['read-after-rst'] = { ok: true, eof: true, bytes: 0, windowMs: now, tcpState: 'CLOSE' };
        e.steps['write-epipe'] = { ok: false, errno: 'EPIPE', bytes: 0 };
        e.steps['write-again'] = { ok: false, errno: 'EPIPE', bytes: 0 };
        e.states = { client: ['ESTABLISHED', 'CLOSE_WAIT', 'GONE'], server: ['ESTABLISHED', 'FIN_WAIT2', 'GONE'] };
        e.statesAbsent = { client: ['TIME_WAIT', 'LAST_ACK'] };
        e.counters = {
          // The dead socket's RST to the client's data, and the listener gone: no RST on close.
          // TCPAbortOnData: 0 when the client's ACK of the FIN arrives before its data (the
          // timewait sock answers the data); 1 when the data itself carries that ACK and finds the
          // orphan still in FIN_WAIT1 (tcp_rcv_state_process: data after close() → tcp_done,
          // LINUX_MIB_TCPABORTONDATA) — seen on nginx with 9 container runs at once. One RST either way.
          server: { TcpOutRsts: 1, TcpExtTCPAbortOnClose: 0, TcpExtTCPAbortOnData: { min: 0, max: 1 } },
          client: { TcpEstabResets: 1, TcpInErrs: 0 },
        };
        e.because = ['no unread data: close() at exit sends a FIN → EOF; the data written after it meets a dead socket → RST, which a CLOSE_WAIT socket turns into EPIPE (reads stay EOF)'];
        break;
      case 'unread':
        e.steps['write-before'] = { ok: true, bytes: params.bytes };
        e.steps['read-reset'] = { ok: false, errno: 'ECONNRESET', windowMs: now, tcpState: 'CLOSE' };
        e.steps['write-epipe'] = { ok: false, errno: 'EPIPE' };
        e.states = { client: ['ESTABLISHED', 'GONE'], server: ['ESTABLISHED', 'GONE'] };
        e.statesAbsent = { client: ['CLOSE_WAIT'], server: ['FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT'] };
        // Both sides count the abort: the server's socket went ESTABLISHED → CLOSE by its own RST.
        e.counters = {
          server: {
            // A server of its own may not have accepted the connection before it was frozen: then the
            // listener's death resets it from the accept queue (inet_csk_listen_stop → tcp_disconnect),
            // a RST all the same but not counted as an abort on close.
            TcpExtTCPAbortOnClose: server.mode === 'sink' ? 1 : { min: 0, max: 1 },
            TcpOutRsts: 1,
            TcpEstabResets: 1,
          },
          client: { TcpEstabResets: 1 },
        };
        e.because = [`${params.bytes} unread bytes in the server's receive queue: close() at exit sends a RST, not a FIN (tcp_close, TcpExtTCPAbortOnClose)`];
        break;
      case 'after-death':
        e.steps['connect-after'] = { ok: false, errno: 'ECONNREFUSED', windowMs: now };
        e.states = { client: ['ESTABLISHED', 'CLOSE_WAIT'], server: ['ESTABLISHED', 'LISTEN', 'FIN_WAIT2', 'GONE'] };
        e.statesAbsent = { server: ['SYN_RECV'] };
        e.counters = { server: { TcpOutRsts: 1, TcpAttemptFails: 0 }, client: { TcpAttemptFails: 1 } };
        e.because = ['the listener died with the process: the SYN meets no socket and the kernel answers RST → ECONNREFUSED'];
        break;
    }
    return e;
  },
  // Any client: the crash closes the server's sockets at once (FIN, or RST with unread data), so
  // an ESTABLISHED connection leaves it within a round trip; a later connect is refused at once.
  connection: ({ clock }) => ({
    state: 'ESTABLISHED',
    from: 'strike',
    endsMs: immediateWindowMs(clock),
    because: 'the killed server\'s kernel closes its sockets: FIN (or RST with unread data) at once; connects after it are refused',
    // Nothing listens any more: the server's kernel answers a new SYN with a RST.
    afterStrike: { state: 'SYN_SENT', endsMs: immediateWindowMs(clock), errno: 'ECONNREFUSED', then: 'GONE', retrans: 0, fleeting: true, because: 'a connect after the crash: nothing listens, the SYN gets a RST' },
  }),
  script: ({ params, watchIntervalMs }) => {
    const connect = { op: 'connect' as const, label: 'connect', timeoutMs: 5000 };
    // Hold each state until both watchers sampled it: without it a CLOSE_WAIT that lasts a few
    // hundred µs is never seen.
    const settle = { op: 'sleep' as const, ms: settleMs(watchIntervalMs) };
    const crash = { op: 'barrier' as const, name: 'crash' };
    switch (params.variant) {
      case 'idle':
        return [
          connect,
          settle,
          crash,
          settle,
          { op: 'read', label: 'read-eof', timeoutMs: 2000 },
          { op: 'write', label: 'write-after-fin', bytes: params.bytes, timeoutMs: 2000 },
          { op: 'read', label: 'read-after-rst', timeoutMs: 2000 },
          { op: 'write', label: 'write-epipe', bytes: params.bytes, timeoutMs: 2000 },
          { op: 'write', label: 'write-again', bytes: params.bytes, timeoutMs: 2000 },
        ];
      case 'unread':
        return [
          connect,
          // A server that reads is frozen first (nothing happens on the built-in sink server).
          settle,
          { op: 'barrier', name: 'hold' },
          { op: 'write', label: 'write-before', bytes: params.bytes, timeoutMs: 2000 },
          settle,
          crash,
          settle,
          { op: 'read', label: 'read-reset', timeoutMs: 2000 },
          { op: 'write', label: 'write-epipe', bytes: params.bytes, timeoutMs: 2000 },
        ];
      case 'after-death':
        return [connect, settle, crash, settle, { op: 'connect', sock: 1, label: 'connect-after', timeoutMs: 2000 }];
    }
  },
});
