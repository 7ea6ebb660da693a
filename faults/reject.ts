/**
 * reject — the target's firewall REJECTs the client's packets instead of dropping them
 * (`iptables -j REJECT --reject-with …` in the target's namespace), at connect time or on an
 * established connection.
 *
 * A client sees:
 * - at connect (`when=connect`): `tcp-reset` → ECONNREFUSED at once, for any client (the RST
 *   waits in the socket's backlog until connect() releases the lock, then tcp_reset). An ICMP
 *   unreachable carries icmp_err_convert's errno — net-unreachable/net-prohibited → ENETUNREACH,
 *   host-unreachable/host-prohibited/admin-prohibited → EHOSTUNREACH, port-unreachable →
 *   ECONNREFUSED, proto-unreachable → ENOPROTOOPT — but *when* the client sees it depends on its
 *   API. On a veth the SYN reaches the target, and the ICMP comes back, in the softirq that runs
 *   inside connect()'s own transmit (dev_queue_xmit → local_bh_enable → do_softirq), while connect()
 *   holds the socket lock; tcp_v4_err then only stores it as a *soft* error (sk_err_soft,
 *   TcpExtLockDroppedIcmps) and leaves the socket in SYN_SENT:
 *   - a non-blocking client (`connect()` + poll/epoll, the probe's default): EPOLLERR at once, and
 *     SO_ERROR hands out the soft error (sock_getsockopt falls back to sk_err_soft) while the socket
 *     is still SYN_SENT — one SYN, one ICMP;
 *   - a blocking client (`--blocking`; Python's socket.create_connection, Java, most database
 *     drivers): connect() sleeps in inet_wait_for_connect, which only a state change wakes; the
 *     soft error changes nothing. The SYN is retransmitted when its timer fires (TCP_TIMEOUT_INIT,
 *     1000 → 1024 ms through the timer wheel), the ICMP answering it finds the socket unlocked: a
 *     hard error (tcp_done, TcpAttemptFails), and connect() fails then — two SYNs, two ICMPs.
 *   The target's ICMP rate limit (icmp_ratelimit) lets both out: its bucket is new with the run's
 *   namespace and starts with a burst of 6.
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
import { dataSysctlsFrom, IcmpBucket, icmpEffect, predictDataTimeout, XRLIM_BURST_FACTOR, type IcmpReject } from '../harness/model/data.js';
import { chainFiringWindowsMs, msToJiffies, type KernelClock } from '../harness/model/timer-wheel.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, stepTimeoutMs, type ConnectionPrediction, type Expectation } from './define.js';
import { REJECT_WITH, type RejectWith, type Rule } from './iptables.js';

/** net.ipv4.icmp_ratelimit of the target, ms (1000 on a fresh namespace). */
export function icmpRatelimitMs(server: Record<string, string | undefined>): number {
  return Number(server['net.ipv4.icmp_ratelimit'] ?? '1000');
}

/** What a connect() meets when every SYN is answered by an ICMP unreachable, by API. */
export interface IcmpAtConnect {
  windowMs: [number, number];
  /** SYNs on the wire (the rule's hits), retransmissions among them, ICMPs that got out. */
  syns: number;
  synRetransmits: number;
  icmps: number;
  tcpState: 'SYN_SENT' | 'CLOSE';
  because: string;
}

/**
 * The ICMP at connect, modelled per API (see the doc comment): non-blocking — the first ICMP, a
 * soft error, is reported at once (EPOLLERR + SO_ERROR) while the socket stays SYN_SENT; blocking —
 * connect() returns with the ICMP that answers the first SYN retransmission, when the SYN timer
 * fires (TCP_TIMEOUT_INIT through the wheel). Both ICMPs must get past the target's rate limit.
 */
export function icmpAtConnect(w: IcmpReject, blocking: boolean, server: Record<string, string | undefined>, clock: KernelClock): IcmpAtConnect {
  const { code, errno } = icmpEffect(w);
  if (!blocking) {
    return {
      windowMs: immediateWindowMs(clock),
      syns: 1,
      synRetransmits: 0,
      icmps: 1,
      tcpState: 'SYN_SENT',
      because: `one SYN, one ICMP unreachable code ${code}, which lands while connect() holds the socket lock: a soft error, reported at once by EPOLLERR and SO_ERROR (${errno}) with the socket still SYN_SENT`,
    };
  }
  const first = chainFiringWindowsMs([TCP_TIMEOUT_INIT_MS], clock)[0]!;
  // The two ICMPs are a SYN timer apart: the new namespace's bucket (a burst of 6) lets both out.
  const bucket = new IcmpBucket(msToJiffies(icmpRatelimitMs(server), clock.hz));
  const icmps = [0, msToJiffies(first[0], clock.hz)].filter((t) => bucket.allow(t)).length;
  if (icmps < 2) throw new RangeError('the target rate limit swallows the second ICMP: not modelled');
  return {
    windowMs: [first[0], first[1] + wakeupSlackMs(clock)],
    syns: 2,
    synRetransmits: 1,
    icmps,
    tcpState: 'CLOSE',
    because:
      `a blocking connect(): the first ICMP (code ${code}) lands while connect() holds the socket lock and is only a soft error, which does not wake it; ` +
      `the SYN retransmission ${first[0].toFixed(0)}..${first[1].toFixed(0)} ms later draws a second ICMP that finds the socket unlocked: a hard error, connect() fails with ${errno}`,
  };
}

/**
 * A connect() the rule refuses, for any client: at once (the watcher rarely sees so short a
 * SYN_SENT; the rule counts the attempts). A blocking connect() may see an ICMP only when it
 * answers the next SYN retransmission (the first one lands while connect() holds the socket lock):
 * one SYN RTO later.
 */
function refusedConnect(with_: RejectWith, server: Record<string, string | undefined>, clock: KernelClock): Omit<ConnectionPrediction, 'from' | 'afterStrike'> {
  if (with_ === 'tcp-reset') {
    return { state: 'SYN_SENT', endsMs: [0, wakeupSlackMs(clock)], errno: 'ECONNREFUSED', then: 'GONE', retrans: 0, fleeting: true, because: 'one SYN, one RST: connect() fails at once with ECONNREFUSED, blocking or not' };
  }
  const b = icmpAtConnect(with_ as IcmpReject, true, server, clock);
  const nb = icmpAtConnect(with_ as IcmpReject, false, server, clock);
  return {
    state: 'SYN_SENT',
    endsMs: [0, b.windowMs[1]],
    errno: icmpEffect(with_ as IcmpReject).errno,
    then: 'GONE',
    retrans: 1,
    fleeting: true,
    because: `non-blocking: ${nb.because}; blocking: ${b.because}`,
  };
}

function rejectRule(port: number, clientAddress: string, with_: RejectWith): Rule {
  return { name: 'reject', side: 'server', hook: 'INPUT', proto: 'tcp', src: clientAddress, tcp: { dport: port }, target: { kind: 'REJECT', with: with_ } };
}

export const reject = defineFault({
  name: 'reject',
  summary: 'the target REJECTs the client (ICMP unreachable of some kind, or a TCP RST), at connect or mid-connection',
  observes: 'connect: RST → ECONNREFUSED at once; ICMP → ENETUNREACH / EHOSTUNREACH / ECONNREFUSED at once if non-blocking (socket still SYN_SENT), after the first SYN retransmission (~1 s) if blocking; established: ECONNRESET at once (RST), or the ICMP errno only after tcp_retries2',
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
  expect: ({ params, sysctls, clock, blocking }) => {
    // No timer: one packet and its answer on a veth, plus the probe noticing.
    const now = immediateWindowMs(clock);
    const isRst = params.with === 'tcp-reset';
    const icmp = isRst ? undefined : icmpEffect(params.with as IcmpReject);
    const e: Expectation = { steps: {} };
    if (params.when === 'connect') {
      const errno = isRst ? 'ECONNREFUSED' : icmp!.errno;
      e.statesAbsent = { client: ['ESTABLISHED'], server: ['SYN_RECV', 'ESTABLISHED'] };
      if (isRst) {
        e.steps.connect = { ok: false, errno, windowMs: now, totalRetrans: 0, tcpState: 'CLOSE' };
        e.counters = {
          client: { TcpExtTCPSynRetrans: 0, IcmpInDestUnreachs: 0, TcpRetransSegs: 0, TcpAttemptFails: 1 },
          // The RST comes from netfilter's REJECT, not from the TCP stack: TcpOutRsts stays 0.
          server: { TcpPassiveOpens: 0, IcmpOutDestUnreachs: 0, TcpOutRsts: 0 },
        };
        e.rulesHit = { reject: 1 };
        e.because = [`one SYN, one RST: connect() fails at once with ${errno}, blocking or not`];
        return e;
      }
      const c = icmpAtConnect(params.with as IcmpReject, blocking, sysctls.server, clock);
      // A failed blocking connect() is disconnected (forBlockingApi): TCP_INFO shows 0 retransmissions.
      e.steps.connect = { ok: false, errno, windowMs: c.windowMs, totalRetrans: 0, tcpState: c.tcpState };
      e.counters = {
        client: {
          TcpExtTCPSynRetrans: c.synRetransmits,
          TcpRetransSegs: c.synRetransmits,
          IcmpInDestUnreachs: c.icmps,
          // The first ICMP lands while connect() holds the lock; a later one finds it unlocked.
          TcpExtLockDroppedIcmps: 1,
          TcpAttemptFails: c.synRetransmits,
        },
        server: { TcpPassiveOpens: 0, IcmpOutDestUnreachs: c.icmps, TcpOutRsts: 0 },
      };
      e.rulesHit = { reject: c.syns };
      e.because = [c.because];
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
    // Every segment is answered by an ICMP as long as the target's per-destination rate limit
    // (icmp_ratelimit, a token bucket that starts full in the run's new namespace) lets it out:
    // the model plays the bucket along the schedule, so the outcome is one schedule, not a range.
    const ratelimitMs = icmpRatelimitMs(sysctls.server);
    const p = predictDataTimeout(ds, clock, 0, { revertBackoff: icmp!.revertsBackoff, icmpRatelimitMs: ratelimitMs });
    const exact = (r: [number, number]) => (r[0] === r[1] ? r[0] : { min: r[0], max: r[1] });
    e.steps.dies = { ok: false, errno: icmp!.errno, windowMs: p.windowMs, tcpState: 'CLOSE' };
    if (p.retransSegs[0] === p.retransSegs[1]) e.steps.dies.totalRetrans = p.retransSegs[0];
    e.counters = {
      client: {
        TcpRetransSegs: exact(p.retransSegs),
        TcpExtTCPAbortOnTimeout: 1,
        TcpEstabResets: 1,
        IcmpInDestUnreachs: exact(p.icmps),
      },
      server: { IcmpOutDestUnreachs: exact(p.icmps) },
    };
    e.rulesHit = { reject: exact(p.segments) };
    const limited = p.icmps[1] < p.segments[1];
    e.because = [
      `ICMP code ${icmp!.code} on an established socket is a soft error: ${p.retransSegs[0]} retransmissions ` +
        `${icmp!.revertsBackoff ? `one RTO apart (RFC 6069 backoff revert)${limited ? ' while the ICMPs get out, doubling after' : ''}` : 'with a doubling RTO'}, ` +
        `tcp_retries2 limit ${p.limitMs} ms since the first → ${icmp!.errno} at ${(p.onTime.deadMs / 1000).toFixed(3)} s`,
      `icmp_ratelimit ${ratelimitMs} ms on the target: ${p.icmps[0]} of ${p.segments[0]} segments answered` +
        (ratelimitMs > 0 ? ` (a full bucket of ${XRLIM_BURST_FACTOR} in the run's new namespace, then one per ${ratelimitMs} ms)` : ''),
    ];
    return e;
  },
  // Any client: at connect, refused at once (refusedConnect); with the rule added once the client is
  // established, the same rule refuses any connection opened after the strike.
  connection: ({ params, sysctls, clock }, expected) => {
    const refused = refusedConnect(params.with, sysctls.server, clock);
    if (params.when === 'connect') return { ...refused, from: 'enter' };
    const dies = expected.steps.dies!;
    return { state: 'ESTABLISHED', from: 'strike', endsMs: [dies.windowMs![0], Infinity], errno: dies.errno!, then: 'GONE', because: expected.because![0]!, afterStrike: refused };
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
