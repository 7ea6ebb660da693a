/**
 * fin-drop — the FIN of the active closer is lost (a firewall or a path that drops it).
 *
 * A client sees: close() returns at once (the socket is orphaned), but the kernel keeps the
 * connection in FIN_WAIT1 and retransmits the FIN — a tail loss probe after one RTO, then RTO
 * retransmissions with backoff — until the time since the first RTO retransmission reaches
 * tcp_model_timeout(tcp_orphan_retries, 200 ms); then it destroys the socket silently (no RST).
 * The server never sees the FIN: its socket stays ESTABLISHED (no EOF) for as long as it lives.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7): the expiry is a time, not a count,
 * and its clock starts at the first RTO retransmission, not at close(); the first retransmission
 * is a TLP that the retry budget does not count; the RTO on a veth is 204 ms (51 jiffies at
 * HZ=250), not 200 ms; tcp_rto_min_us (6.11+) shortens the RTO — and so adds retransmissions —
 * without moving the boundary. tcp_orphan_retries=0 still means 8 here: the FIN_WAIT1 lasts
 * ≈104.4 s (TLP + 8 RTO retransmissions), not the ≈102 s / "9 retransmissions" the seeds saw.
 */
import { z } from 'zod';
import { countRange, ORPHAN_FIN_SYSCTLS, orphanFinBecause, orphanFinCounters, orphanFinSysctlsFrom, predictOrphanFin } from '../harness/model/teardown.js';
import { observeUntilMs, watchedWindowMs } from '../harness/model/watch.js';
import { defineFault, type FaultContext } from './define.js';

/**
 * The client's orphan, from its sysctls: the model's prediction, and when the watcher reports it
 * gone, in ms from the start of close() (the `stateLeft` window; the script observes past it).
 */
export function finWait1Orphan({ sysctls, clock, watchIntervalMs }: FaultContext<unknown>) {
  const s = orphanFinSysctlsFrom(sysctls.client, sysctls.server);
  const p = predictOrphanFin(s, clock);
  return { s, p, goneSeenMs: watchedWindowMs(p.windowMs, clock, watchIntervalMs) };
}

export const finDrop = defineFault({
  name: 'fin-drop',
  summary: "the target's namespace drops every inbound FIN (iptables --tcp-flags FIN FIN -j DROP)",
  observes: 'close() returns at once; the client stays in FIN_WAIT1 retransmitting the FIN (tcp_orphan_retries), then vanishes; the server stays ESTABLISHED',
  shapedBy: { client: ORPHAN_FIN_SYSCTLS, server: ['net.ipv4.tcp_sack'] },
  params: z.object({}),
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_orphan_retries': '2' } }),
  plan: ({ endpoints }) => ({
    rules: [
      {
        name: 'drop-fin',
        side: 'server',
        hook: 'INPUT',
        proto: 'tcp',
        tcp: { dport: endpoints.port, flags: { mask: ['FIN'], set: ['FIN'] } },
        target: { kind: 'DROP' },
      },
    ],
  }),
  expect: (ctx) => {
    const { s, p, goneSeenMs } = finWait1Orphan(ctx);
    return {
      steps: {
        connect: { ok: true, errno: null },
        'before-close': { tcpState: 'ESTABLISHED', rtoUs: p.rtoMs * 1000 },
        close: { ok: true, errno: null },
      },
      states: { client: ['FIN_WAIT1'], server: ['ESTABLISHED'] },
      statesAbsent: { client: ['FIN_WAIT2', 'TIME_WAIT'], server: ['CLOSE_WAIT', 'LAST_ACK'] },
      stateLeft: [{ side: 'client', state: 'FIN_WAIT1', to: 'GONE', fromStep: 'close', windowMs: goneSeenMs }],
      spans: [
        { side: 'client', state: 'FIN_WAIT1', sockets: 1, then: 'GONE', retrans: countRange(p.rtoRetransmits) },
        { side: 'server', state: 'ESTABLISHED', sockets: 1, then: 'held' },
      ],
      counters: {
        client: orphanFinCounters(p),
        server: { TcpExtTCPAbortOnTimeout: 0 },
      },
      rulesHit: { 'drop-fin': countRange(p.finsSent) },
      because: [`client (tcp_rto_min_us ${s.rtoMinUs}, veth RTT < 1 jiffy): ${orphanFinBecause(p, s)}; FIN_WAIT1 gone ${(p.windowMs[0] / 1000).toFixed(3)}–${(p.windowMs[1] / 1000).toFixed(3)} s after close() (${p.goneAtMs / 1000} s of timers, rounded up by the wheel)`],
    };
  },
  script: (ctx) => {
    const { goneSeenMs } = finWait1Orphan(ctx);
    return [
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      { op: 'tcpinfo', label: 'before-close' },
      { op: 'close', label: 'close' },
      // close() returned; the orphan lives on in the kernel: keep observing until it must be gone.
      { op: 'sleep', ms: observeUntilMs(goneSeenMs[1], ctx.clock, ctx.watchIntervalMs) },
    ];
  },
});
