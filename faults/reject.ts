/**
 * reject — the target's firewall REJECTs the client's packets instead of dropping them
 * (`iptables -j REJECT --reject-with …` in the target's namespace), at connect time or on an
 * established connection.
 *
 * A client sees:
 * - at connect (`when=connect`): `tcp-reset` → ECONNREFUSED at once; an ICMP unreachable is a
 *   hard error for a SYN_SENT socket (tcp_v4_err → tcp_done), so connect() fails at once too, with
 *   icmp_err_convert's errno: net-unreachable/net-prohibited → ENETUNREACH, host-unreachable/
 *   host-prohibited/admin-prohibited → EHOSTUNREACH, port-unreachable → ECONNREFUSED,
 *   proto-unreachable → ENOPROTOOPT. No SYN is retransmitted: one SYN, one reject.
 * - on an established connection (`when=established`, rule added at a barrier, then a write):
 *   `tcp-reset` → the RST lands during the write, the next read fails with ECONNRESET at once. An
 *   ICMP error is only *soft* (sk_err_soft): the write succeeds, the segment is retransmitted
 *   (each copy rejected again) until tcp_retries2's time runs out, and only then does the read
 *   fail — with the soft error (EHOSTUNREACH, ECONNREFUSED…), not ETIMEDOUT (tcp_write_err uses
 *   sk_err_soft ?: ETIMEDOUT). For net- and host-unreachable each ICMP also reverts the RTO
 *   backoff (RFC 6069, tcp_ld_RTO_revert): the retransmissions stay one RTO apart (~15 of them
 *   with tcp_retries2=3) instead of doubling; the time limit is the same.
 *
 * Where this kernel differs from the seeds: the seeds treat every REJECT as an immediate error.
 * On 6.18 that is true only before the connection is established; afterwards an ICMP reject looks
 * like a black hole for the whole tcp_retries2 time (~3.5 s here with tcp_retries2=3, ~15 min
 * with the default 15), then surfaces with the ICMP's errno. Only tcp-reset is immediate.
 */
import { z } from 'zod';
import { DATA_SYSCTLS, immediateWindowMs, TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { dataSysctlsFrom, icmpEffect, predictDataTimeout, type IcmpReject } from '../harness/model/data.js';
import { timerSlackMs } from '../harness/model/timer-wheel.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, stepTimeoutMs, type Expectation } from './define.js';
import { REJECT_WITH, type RejectWith, type Rule } from './iptables.js';

function rejectRule(port: number, clientAddress: string, with_: RejectWith): Rule {
  return { name: 'reject', side: 'server', hook: 'INPUT', proto: 'tcp', src: clientAddress, tcp: { dport: port }, target: { kind: 'REJECT', with: with_ } };
}

export const reject = defineFault({
  name: 'reject',
  summary: 'the target REJECTs the client (ICMP unreachable of some kind, or a TCP RST), at connect or mid-connection',
  observes: 'connect: ECONNREFUSED / ENETUNREACH / EHOSTUNREACH at once; established: ECONNRESET at once (RST), or the ICMP errno only after tcp_retries2',
  shapedBy: {
    client: DATA_SYSCTLS,
    server: ['net.ipv4.tcp_sack', 'net.ipv4.icmp_ratelimit'],
  },
  params: z.object({
    with: z.enum(REJECT_WITH as [RejectWith, ...RejectWith[]]).default('icmp-port-unreachable').describe('iptables --reject-with'),
    when: z.enum(['connect', 'established']).default('connect').describe('connect: rule in place from the start; established: added after the handshake, then the client writes'),
    bytes: z.coerce.number().int().min(1).max(1400).default(100).describe('bytes written on the established connection (one segment)'),
  }),
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  // Only the established ICMP case waits on a timer: tcp_retries2=3 makes it seconds, not minutes.
  // icmp_ratelimit=0 on the target lets every retransmission get its ICMP (the default 1000 ms
  // per-host limit, burst 6, drops the later ones, and with them the RFC 6069 reverts).
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_retries2': '3' }, server: { 'net.ipv4.icmp_ratelimit': '0' } }),
  plan: ({ params, endpoints }) => (params.when === 'connect' ? { rules: [rejectRule(endpoints.port, endpoints.clientAddress, params.with)] } : {}),
  triggers: {
    reject: ({ params, endpoints }) => ({ kind: 'rules', rules: [rejectRule(endpoints.port, endpoints.clientAddress, params.with)] }),
  },
  expect: ({ params, sysctls, clock }) => {
    // No timer: one packet and its answer on a veth, plus the probe noticing.
    const now = immediateWindowMs(clock);
    const isRst = params.with === 'tcp-reset';
    const icmp = isRst ? undefined : icmpEffect(params.with as IcmpReject);
    const e: Expectation = { steps: {} };
    if (params.when === 'connect') {
      const errno = isRst ? 'ECONNREFUSED' : icmp!.errno;
      // With an ICMP the socket's fate depends on who holds its lock when the ICMP lands (see the
      // doc comment): the errno and the timing do not, so the state after the step is not checked.
      e.steps.connect = { ok: false, errno, windowMs: now, totalRetrans: 0, ...(isRst ? { tcpState: 'CLOSE' } : {}) };
      e.statesAbsent = { client: ['ESTABLISHED'], server: ['SYN_RECV', 'ESTABLISHED'] };
      e.counters = {
        client: { TcpExtTCPSynRetrans: 0, IcmpInDestUnreachs: icmp ? 1 : 0, TcpRetransSegs: 0, ...(isRst ? { TcpAttemptFails: 1 } : {}) },
        // The RST or ICMP comes from netfilter's REJECT, not from the TCP stack: TcpOutRsts stays 0.
        server: { TcpPassiveOpens: 0, IcmpOutDestUnreachs: icmp ? 1 : 0, TcpOutRsts: 0 },
      };
      e.rulesHit = { reject: 1 };
      e.because = [`one SYN, one ${isRst ? 'RST' : `ICMP unreachable code ${icmp!.code}`}: a SYN_SENT socket fails at once with ${errno}`];
      return e;
    }
    e.steps.connect = { ok: true };
    e.steps.write = { ok: true, bytes: params.bytes };
    e.states = { client: ['ESTABLISHED', 'GONE'], server: ['ESTABLISHED'] };
    if (isRst) {
      e.steps.dies = { ok: false, errno: 'ECONNRESET', windowMs: now, tcpState: 'CLOSE', totalRetrans: 0 };
      e.counters = { client: { TcpEstabResets: 1, TcpRetransSegs: 0 }, server: { TcpOutRsts: 0 } };
      e.rulesHit = { reject: 1 };
      e.because = ['the written segment is answered by a RST: ECONNRESET on the next read'];
      return e;
    }
    const ds = dataSysctlsFrom(sysctls.client, sysctls.server);
    let p = predictDataTimeout(ds, clock, 0, { revertBackoff: icmp!.revertsBackoff });
    const rateLimited = icmp!.revertsBackoff && Number(sysctls.server['net.ipv4.icmp_ratelimit'] ?? '1000') !== 0;
    if (rateLimited) {
      // Some ICMPs will be rate-limited away, some reverts lost: between the all-revert schedule
      // (densest, earliest) and the plain doubling one (sparsest, latest).
      const plain = predictDataTimeout(ds, clock, 0);
      const span = (a: [number, number], b: [number, number]): [number, number] => [Math.min(a[0], b[0]), Math.max(a[1], b[1])];
      p = { ...p, windowMs: span(p.windowMs, plain.windowMs), retransSegs: span(p.retransSegs, plain.retransSegs), segments: span(p.segments, plain.segments) };
    }
    const exact = (r: [number, number]) => (r[0] === r[1] ? r[0] : { min: r[0], max: r[1] });
    e.steps.dies = { ok: false, errno: icmp!.errno, windowMs: p.windowMs, tcpState: 'CLOSE' };
    if (p.retransSegs[0] === p.retransSegs[1]) e.steps.dies.totalRetrans = p.retransSegs[0];
    e.counters = {
      client: {
        TcpRetransSegs: exact(p.retransSegs),
        TcpExtTCPAbortOnTimeout: 1,
        TcpEstabResets: 1,
        IcmpInDestUnreachs: rateLimited ? { min: 1, max: p.segments[1] } : exact(p.segments),
      },
      server: { IcmpOutDestUnreachs: rateLimited ? { min: 1, max: p.segments[1] } : exact(p.segments) },
    };
    e.rulesHit = { reject: exact(p.segments) };
    e.because = [
      `ICMP code ${icmp!.code} on an established socket is a soft error: ${p.retransSegs[0]} retransmissions ` +
        `${icmp!.revertsBackoff ? 'one RTO apart (RFC 6069 backoff revert)' : 'with a doubling RTO'}, ` +
        `tcp_retries2 limit ${p.limitMs} ms since the first → ${icmp!.errno} at ${(p.onTime.deadMs / 1000).toFixed(3)} s`,
    ];
    return e;
  },
  // Any client: at connect, refused at once (the watcher rarely sees so short a SYN_SENT; the rule
  // counts the attempts). A blocking connect() may see an ICMP only when it answers the next SYN
  // retransmission (the first one lands while connect() holds the socket lock): one SYN RTO later.
  connection: ({ params, clock }, expected) => {
    const isRst = params.with === 'tcp-reset';
    if (params.when === 'connect') {
      const errno = expected.steps.connect!.errno!;
      return {
        state: 'SYN_SENT',
        from: 'enter',
        endsMs: [0, (isRst ? 0 : TCP_TIMEOUT_INIT_MS + timerSlackMs(TCP_TIMEOUT_INIT_MS, clock)) + wakeupSlackMs(clock)],
        errno: errno,
        then: 'GONE',
        retrans: isRst ? 0 : 1,
        fleeting: true,
        because: `${expected.because![0]!}${isRst ? '' : `; a blocking connect() fails only when the ICMP answering the next SYN retransmission lands, ${TCP_TIMEOUT_INIT_MS} ms later (the first arrives while connect() holds the socket lock and is kept as a soft error)`}`,
      };
    }
    const dies = expected.steps.dies!;
    return { state: 'ESTABLISHED', from: 'strike', endsMs: [dies.windowMs![0], Infinity], errno: dies.errno!, then: 'GONE', because: expected.because![0]! };
  },
  script: ({ params, watchIntervalMs }, expected) => {
    if (params.when === 'connect') return [{ op: 'connect', label: 'connect', timeoutMs: 5000 }];
    const steps: ClientStep[] = [
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      // Hold ESTABLISHED until the watchers saw it.
      { op: 'sleep', ms: settleMs(watchIntervalMs) },
      { op: 'barrier', name: 'reject' },
      { op: 'write', label: 'write', bytes: params.bytes, timeoutMs: 2000 },
      { op: 'read', label: 'dies', timeoutMs: stepTimeoutMs(expected.steps.dies) },
    ];
    return steps;
  },
});
