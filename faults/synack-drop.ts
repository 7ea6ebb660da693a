/**
 * synack-drop — the client's final bare ACK of the handshake never reaches the server (the target
 * drops `--tcp-flags ALL ACK` to its port: a client host that vanished after its SYN, or a SYN
 * flood).
 *
 * A client sees: connect() succeeds at once (ESTABLISHED on the SYN-ACK). The server keeps a
 * request socket in SYN_RECV, resends the SYN-ACK after 1, 3, 7 … s (tcp_synack_retries), and
 * drops the request at 2^(retries+1) - 1 s. The client answers every resent SYN-ACK with another
 * bare ACK (a challenge ACK, RFC 5961), which is dropped too. A later write:
 * - after the request expired: the data meets the bare listener, which answers RST; the next
 *   read() fails with ECONNRESET, the write after it with EPIPE, a read after that sees EOF;
 * - before it expired: the data segment carries ACK *and* PSH, so `ALL ACK` does not match it; it
 *   completes the handshake (the server goes ESTABLISHED and accepts) and nothing fails.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7, 3.10): the expiry is the same
 * 2^(R+1) - 1 s (63 s at the default R = 5); the seeds did not say that the client re-ACKs every
 * SYN-ACK retransmission (each one hits the DROP rule: the rule counts 1 + R packets), nor that
 * data sent before the expiry silently completes the connection. On 6.x the retransmissions
 * count in the server's TcpExtTCPSynRetrans and TcpRetransSegs; the client counts its answers in
 * TcpExtTCPSYNChallenge / TcpExtTCPChallengeACK.
 */
import { z } from 'zod';
import { answeredWindowMs, predictSynAckExpiry, synAckSysctlsFrom } from '../harness/model/handshake.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';
import { watchedWindowMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, type Expectation } from './define.js';

const BYTES = 100;

export const synackDrop = defineFault({
  name: 'synack-drop',
  summary: "the target drops the client's final bare ACK of the handshake (--tcp-flags ALL ACK)",
  observes: 'connect() succeeds at once; the server sits in SYN_RECV resending SYN-ACKs, then drops the request; a later write is answered with RST',
  shapedBy: { server: ['net.ipv4.tcp_synack_retries'] },
  params: z.object({
    write: z
      .enum(['after', 'before'])
      .default('after')
      .describe('when the client writes: after the server dropped the request (RST), or before it (the data completes the handshake)'),
  }),
  server: () => ({ mode: 'no-close' }),
  // Data before the expiry completes the handshake: the server must then hold it unanswered.
  needs: (p) => (p.write === 'before' ? { mode: 'no-close', why: 'the server must hold the connection the data completes without answering' } : 'any'),
  fastSysctls: () => ({ server: { 'net.ipv4.tcp_synack_retries': '2' } }),
  plan: ({ endpoints }) => ({
    rules: [
      {
        name: 'drop-ack',
        side: 'server',
        hook: 'INPUT',
        proto: 'tcp',
        tcp: { dport: endpoints.port, flags: { mask: 'ALL', set: ['ACK'] } },
        target: { kind: 'DROP' },
      },
    ],
  }),
  expect: ({ sysctls, params, clock, watchIntervalMs }): Expectation => {
    const { synackRetries } = synAckSysctlsFrom(sysctls.server);
    const p = predictSynAckExpiry(synackRetries, clock);
    const expire = watchedWindowMs(p.expireWindowMs, clock, watchIntervalMs);
    const connect = { ok: true, errno: null, tcpState: 'ESTABLISHED', windowMs: answeredWindowMs(clock), totalRetrans: 0 };
    const because = [
      `tcp_synack_retries ${synackRetries}: SYN-ACK resent at ${p.retransmitAtMs.map((t) => t / 1000).join(', ') || '(never)'} s, ` +
        `request dropped at ${p.expireAtMs / 1000} s (window ${p.expireWindowMs.map((t) => t.toFixed(0)).join('..')} ms)`,
    ];
    if (params.write === 'after') {
      return {
        steps: {
          connect,
          write: { ok: true, errno: null, bytes: BYTES },
          read: { ok: false, errno: 'ECONNRESET' },
          'write-again': { ok: false, errno: 'EPIPE' },
          'read-again': { ok: true, eof: true, bytes: 0 },
        },
        states: { client: ['ESTABLISHED'], server: ['SYN_RECV'] },
        statesAbsent: { server: ['ESTABLISHED'] },
        stateLeft: [{ side: 'server', state: 'SYN_RECV', to: 'GONE', windowMs: expire }],
        counters: {
          // Each firing of the request timer counts a timeout (tcp_syn_ack_timeout): R resends + the drop.
          server: { TcpExtTCPSynRetrans: p.retransmits, TcpRetransSegs: p.retransmits, TcpExtTCPTimeouts: p.retransmits + 1, TcpPassiveOpens: 0, TcpOutRsts: 1 },
          client: { TcpExtTCPSYNChallenge: p.retransmits, TcpEstabResets: 1 },
        },
        // The handshake's ACK and one answer per resent SYN-ACK.
        rulesHit: { 'drop-ack': 1 + p.retransmits },
        because: [...because, 'the write comes after the drop: the listener answers the data with RST'],
      };
    }
    // Write after the first resend was answered (so the re-ACK is seen), before the expiry.
    const resent = Math.min(1, p.retransmits);
    return {
      steps: {
        connect,
        write: { ok: true, errno: null, bytes: BYTES },
        read: { ok: false, timedOut: true, errno: null },
      },
      states: { client: ['ESTABLISHED'], server: ['SYN_RECV', 'ESTABLISHED'] },
      stateLeft: [{ side: 'server', state: 'SYN_RECV', to: 'ESTABLISHED', fromStep: 'write', windowMs: watchedWindowMs(answeredWindowMs(clock), clock, watchIntervalMs) }],
      counters: {
        server: { TcpExtTCPSynRetrans: resent, TcpRetransSegs: resent, TcpExtTCPTimeouts: resent, TcpPassiveOpens: 1, TcpOutRsts: 0 },
        // The first data segment completed the handshake: it was never retransmitted.
        client: { TcpExtTCPSYNChallenge: resent, TcpEstabResets: 0, TcpRetransSegs: 0 },
      },
      rulesHit: { 'drop-ack': 1 + resent },
      because: [...because, 'the write (ACK+PSH, not matched by ALL ACK) comes before the drop and completes the handshake'],
    };
  },
  script: ({ params, sysctls, clock }) => {
    const p = predictSynAckExpiry(synAckSysctlsFrom(sysctls.server).synackRetries, clock);
    // `after`: sleep past the end of the expiry window; `before`: past the first resend's window
    // (or not at all when there is none), which ends before the expiry window begins.
    const sleepMs =
      params.write === 'after'
        ? Math.ceil(p.expireWindowMs[1] + wakeupSlackMs(clock))
        : p.retransmitWindowsMs[0]
          ? Math.ceil(p.retransmitWindowsMs[0][1] + wakeupSlackMs(clock))
          : 0;
    const steps: ClientStep[] = [
      { op: 'connect', label: 'connect', timeoutMs: 2000 },
      { op: 'sleep', ms: sleepMs },
      { op: 'write', label: 'write', bytes: BYTES, timeoutMs: 2000 },
      { op: 'read', label: 'read', timeoutMs: params.write === 'after' ? 2000 : 300 },
    ];
    if (params.write === 'after') {
      steps.push({ op: 'write', label: 'write-again', bytes: BYTES, timeoutMs: 2000 }, { op: 'read', label: 'read-again', timeoutMs: 2000 });
    }
    return steps;
  },
});
