/**
 * host-crash — the target host stops answering mid-connection: at a barrier after the handshake,
 * the target's namespace starts dropping everything the client sends (INPUT, tcp to the port), as
 * a powered-off host or a cut cable would. Nothing comes back: no FIN, no RST, no ICMP.
 *
 * A client sees (variants, `--set variant=`):
 * - `retries2`: a write succeeds (it only queues); the segment is retransmitted with a doubling
 *   RTO until the time since the first RTO retransmission passes
 *   tcp_model_timeout(tcp_retries2, TCP_RTO_MIN); then the next read fails with ETIMEDOUT.
 * - `user-timeout`: TCP_USER_TIMEOUT (ms) replaces that limit; the last timer is clamped to it,
 *   so the read fails about one RTO-pair + the user timeout after the write.
 * - `keepalive`: an idle socket with SO_KEEPALIVE notices after idle + cnt × intvl (cnt probes,
 *   then a RST into the void) and fails with ETIMEDOUT.
 * - `idle`: an idle socket without keepalive never notices: a wait times out, the socket is still
 *   ESTABLISHED.
 * The server side never changes state: its socket stays ESTABLISHED, it hears nothing.
 *
 * Where this kernel differs from the seeds (CentOS 7 / 3.10): (1) a tail loss probe
 * (tcp_early_retrans=3) goes out one RTO after the write, before the first RTO retransmission, and
 * counts in TcpRetransSegs and TCP_INFO totalRetrans; (2) tp->retrans_stamp is taken at the first
 * RTO retransmission, so the tcp_retries2 clock starts two RTOs after the write and with the 204 ms
 * RTO of a veth (rto_min + µs, rounded up a jiffy) tcp_retries2=3 means 4 RTO retransmissions and
 * ETIMEDOUT at ~6.5 s, not the seeds' "N retries"; (3) TCP_USER_TIMEOUT also counts from that first
 * retransmission, so ETIMEDOUT comes ~0.4 s after the user timeout, not at it. Keepalive is as the
 * seeds describe (idle + cnt × intvl), each timer up to a wheel granule late.
 */
import { z } from 'zod';
import { DATA_SYSCTLS, predictSynTimeout, SYN_SYSCTLS, synSysctlsFrom } from '../harness/model/tcp.js';
import { dataSysctlsFrom, predictDataTimeout, predictIdleWait, predictKeepalive } from '../harness/model/data.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, stepTimeoutMs, type Expectation } from './define.js';

const VARIANTS = ['retries2', 'user-timeout', 'keepalive', 'idle'] as const;

export const hostCrash = defineFault({
  name: 'host-crash',
  summary: 'the target host stops answering mid-connection (its namespace drops everything from the client)',
  observes: 'a write succeeds, retransmissions go unanswered, then ETIMEDOUT (tcp_retries2, TCP_USER_TIMEOUT, or keepalive); an idle socket never notices',
  // The SYN sysctls too: a client that reconnects after the crash meets the SYN schedule.
  shapedBy: {
    client: [...DATA_SYSCTLS, ...SYN_SYSCTLS],
    server: ['net.ipv4.tcp_sack'],
  },
  params: z.object({
    variant: z.enum(VARIANTS).default('retries2').describe('retries2 | user-timeout | keepalive | idle (see the doc comment)'),
    bytes: z.coerce.number().int().min(1).max(1400).default(1000).describe('bytes written after the crash (one segment: at most 1400)'),
    userTimeoutMs: z.coerce.number().int().min(1).max(600_000).default(2000).describe('TCP_USER_TIMEOUT in ms (variant user-timeout)'),
    keepIdleS: z.coerce.number().int().min(1).max(32767).default(1).describe('TCP_KEEPIDLE in s (variant keepalive)'),
    keepIntvlS: z.coerce.number().int().min(1).max(32767).default(1).describe('TCP_KEEPINTVL in s (variant keepalive)'),
    keepCnt: z.coerce.number().int().min(1).max(127).default(3).describe('TCP_KEEPCNT (variant keepalive)'),
    idleWaitMs: z.coerce.number().int().min(1).max(600_000).default(3000).describe('how long the idle socket waits (variant idle)'),
  }),
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  // tcp_retries2=3: ETIMEDOUT after ~6.5 s instead of the default 15's ~15 min; tcp_syn_retries=2:
  // a client that reconnects after the crash gives up after ~7 s instead of ~131 s (as syn-drop).
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_retries2': '3', 'net.ipv4.tcp_syn_retries': '2' } }),
  plan: () => ({}),
  triggers: {
    crash: ({ endpoints }) => ({
      kind: 'rules',
      rules: [{ name: 'drop-in', side: 'server', hook: 'INPUT', proto: 'tcp', src: endpoints.clientAddress, tcp: { dport: endpoints.port }, target: { kind: 'DROP' } }],
    }),
  },
  expect: ({ params, sysctls, clock }) => {
    const e: Expectation = {
      steps: { connect: { ok: true } },
      states: { client: ['ESTABLISHED'], server: ['ESTABLISHED'] },
      // The server hears nothing, so it never leaves ESTABLISHED and sends no RST.
      statesAbsent: { server: ['CLOSE_WAIT', 'FIN_WAIT1', 'GONE'] },
    };
    const serverQuiet = { TcpOutRsts: 0, TcpEstabResets: 0, TcpRetransSegs: 0 };
    switch (params.variant) {
      case 'retries2':
      case 'user-timeout': {
        const ut = params.variant === 'user-timeout' ? params.userTimeoutMs : 0;
        const p = predictDataTimeout(dataSysctlsFrom(sysctls.client, sysctls.server), clock, ut);
        const exact = (r: [number, number]) => (r[0] === r[1] ? r[0] : { min: r[0], max: r[1] });
        e.steps.write = { ok: true, bytes: params.bytes };
        e.steps.dies = { ok: false, errno: p.errno, windowMs: p.windowMs, tcpState: 'CLOSE' };
        if (p.retransSegs[0] === p.retransSegs[1]) e.steps.dies.totalRetrans = p.retransSegs[0];
        e.states!.client!.push('GONE');
        e.counters = {
          client: {
            TcpRetransSegs: exact(p.retransSegs),
            TcpExtTCPTimeouts: exact(p.timeouts),
            TcpExtTCPLossProbes: p.lossProbes,
            TcpExtTCPAbortOnTimeout: 1,
            TcpEstabResets: 1,
            TcpOutRsts: 0,
          },
          server: serverQuiet,
        };
        e.rulesHit = { 'drop-in': exact(p.segments) };
        e.because = [
          `RTO ${p.rtoMs} ms; ${p.lossProbes ? 'a loss probe, then ' : ''}RTO retransmissions at ` +
            `${p.onTime.retransmitAtMs.map((t) => (t / 1000).toFixed(3)).join(', ')} s; ` +
            `${p.limitedBy} limits the time since the first to ${p.limitMs} ms → ETIMEDOUT at ${(p.onTime.deadMs / 1000).toFixed(3)} s`,
        ];
        break;
      }
      case 'keepalive': {
        const p = predictKeepalive({ idleS: params.keepIdleS, intvlS: params.keepIntvlS, cnt: params.keepCnt }, clock);
        e.steps.dies = { ok: false, errno: p.errno, windowMs: p.windowMs, tcpState: 'CLOSE' };
        e.states!.client!.push('GONE');
        e.counters = {
          client: { TcpExtTCPKeepAlive: p.probes, TcpExtTCPAbortOnTimeout: 1, TcpOutRsts: 1, TcpRetransSegs: 0, TcpEstabResets: 1 },
          server: serverQuiet,
        };
        e.rulesHit = { 'drop-in': p.segments };
        e.because = [`keepalive idle ${params.keepIdleS} s + ${params.keepCnt} × ${params.keepIntvlS} s: ${p.probes} probes, a RST, ETIMEDOUT at ${p.nominalMs / 1000} s`];
        break;
      }
      case 'idle':
        e.steps['idle-wait'] = { ok: false, timedOut: true, errno: null, windowMs: predictIdleWait(params.idleWaitMs, clock) };
        e.steps['still-established'] = { ok: true, tcpState: 'ESTABLISHED', totalRetrans: 0 };
        e.steps['probe-write'] = { ok: true, bytes: 1 };
        e.statesAbsent!.client = ['GONE', 'CLOSE_WAIT'];
        e.counters = { client: { TcpExtTCPKeepAlive: 0, TcpExtTCPAbortOnTimeout: 0, TcpEstabResets: 0 }, server: serverQuiet };
        // Nothing crosses the wire while idle; the write at the end proves the drop is in place.
        e.rulesHit = { 'drop-in': { min: 1 } };
        e.because = [`no keepalive, nothing to send: nothing tells the client the host is gone; the wait times out after ${params.idleWaitMs} ms`];
        break;
    }
    return e;
  },
  // Any client: the connection stays ESTABLISHED after the crash; a write the host never answers
  // is retransmitted until the retries2 budget (or TCP_USER_TIMEOUT) ends it with ETIMEDOUT. When
  // the client writes is its own business, so the kernel's end is a lower bound from the strike.
  connection: ({ params, sysctls, clock }, expected) => {
    const dies = expected.steps.dies;
    // A connection opened after the crash: its SYNs are dropped with everything else.
    const syn = predictSynTimeout(synSysctlsFrom(sysctls.client), clock);
    return {
      state: 'ESTABLISHED',
      from: 'strike',
      ...(dies?.windowMs && params.variant !== 'idle' ? { endsMs: [dies.windowMs[0], Infinity] as [number, number], errno: dies.errno! } : {}),
      because: expected.because?.[0] ?? 'nothing comes back from the host',
      afterStrike: {
        state: 'SYN_SENT',
        endsMs: syn.windowMs,
        errno: syn.errno,
        then: 'GONE',
        retrans: syn.retransmits,
        because: `a connect after the crash: its SYNs are dropped too; ${syn.retransmits} retransmissions, ETIMEDOUT at ${syn.timeoutMs / 1000} s`,
      },
    };
  },
  script: ({ params, watchIntervalMs }, expected) => {
    const head: ClientStep[] = [
      ...(params.variant === 'user-timeout' ? [{ op: 'setsockopt' as const, opt: 'USER_TIMEOUT' as const, value: params.userTimeoutMs }] : []),
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      // Hold ESTABLISHED until the watchers saw it on both sides.
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
      { op: 'barrier', name: 'crash' },
    ];
    switch (params.variant) {
      case 'retries2':
      case 'user-timeout':
        return [...head, { op: 'write', label: 'write', bytes: params.bytes, timeoutMs: 2000 }, { op: 'read', label: 'dies', timeoutMs: stepTimeoutMs(expected.steps.dies) }];
      case 'keepalive':
        return [
          ...head,
          { op: 'setsockopt', opt: 'KEEPIDLE', value: params.keepIdleS },
          { op: 'setsockopt', opt: 'KEEPINTVL', value: params.keepIntvlS },
          { op: 'setsockopt', opt: 'KEEPCNT', value: params.keepCnt },
          { op: 'setsockopt', opt: 'KEEPALIVE', value: 1 },
          { op: 'wait', label: 'dies', timeoutMs: stepTimeoutMs(expected.steps.dies) },
        ];
      case 'idle':
        return [
          ...head,
          { op: 'wait', label: 'idle-wait', timeoutMs: params.idleWaitMs },
          { op: 'tcpinfo', label: 'still-established' },
          { op: 'write', label: 'probe-write', bytes: 1, timeoutMs: 1000 },
          { op: 'sleep', ms: settleMs(watchIntervalMs) },
        ];
    }
  },
});
