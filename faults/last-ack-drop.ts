/**
 * last-ack-drop — the final ACK of a close is lost: the passive closer is stuck in LAST_ACK.
 *
 * A client sees: nothing wrong — its close() returns, the server's FIN arrives and its socket
 * sits in TIME_WAIT (60 s) as usual. Its last ACK never reaches the server (dropped at the server,
 * armed once the handshake is done so only ACKs of the close match). The server, whose app has
 * already closed (an orphan), stays in LAST_ACK retransmitting its FIN — a tail loss probe, then
 * RTO retransmissions with backoff — and each retransmitted FIN draws another ACK from the
 * client's TIME_WAIT, dropped again. The server gives up when the time since its first RTO
 * retransmission reaches tcp_model_timeout(the server's tcp_orphan_retries, 200 ms), silently.
 *
 * Where this kernel (6.18) differs from the seeds (CentOS 7: "9 retransmissions, ≈103 s, first at
 * 200 ms — the same as FIN_WAIT1"): it is indeed the same orphan-FIN schedule as fin-drop, but a
 * time budget counted from the first RTO retransmission (the TLP is free), with a 204 ms RTO on a
 * veth; tcp_orphan_retries=0 (the default) still means 8 → LAST_ACK for ≈104.4 s. It is the
 * SERVER's sysctls that decide. Each FIN retransmission also restarts the client's 60 s TIME_WAIT.
 */
import { z } from 'zod';
import { countRange, ORPHAN_FIN_SYSCTLS, orphanFinBecause, orphanFinCounters, orphanFinSysctlsFrom, predictOrphanFin } from '../harness/model/teardown.js';
import { observeUntilMs, watchedSpanMs } from '../harness/model/watch.js';
import { closesQuestion } from './close-wait.js';
import { defineFault, type FaultContext } from './define.js';

/**
 * The server's orphan, from the server's sysctls: the model's prediction, and how long the
 * watcher sees it in LAST_ACK (the span's `lastsMs`; the script observes past its end).
 */
export function lastAckOrphan({ sysctls, clock, watchIntervalMs }: FaultContext<unknown>) {
  const s = orphanFinSysctlsFrom(sysctls.server, sysctls.client);
  const p = predictOrphanFin(s, clock);
  return { s, p, lastsSeenMs: watchedSpanMs(p.windowMs, clock, watchIntervalMs) };
}

export const lastAckDrop = defineFault({
  name: 'last-ack-drop',
  summary: "once connected, the target's namespace drops the client's bare ACKs (--tcp-flags ALL ACK), so the ACK of the server's FIN is lost",
  observes: 'client TIME_WAIT as usual; server stuck in LAST_ACK retransmitting its FIN (its tcp_orphan_retries), then gone',
  shapedBy: { server: ORPHAN_FIN_SYSCTLS, client: ['net.ipv4.tcp_sack'] },
  params: z.object({}),
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  fastSysctls: () => ({ server: { 'net.ipv4.tcp_orphan_retries': '2' } }),
  plan: () => ({}),
  triggers: {
    // After the handshake: from now on every bare ACK from the client is lost — the first one it sends is the last ACK.
    'arm-ack-drop': ({ endpoints }) => ({
      kind: 'rules',
      rules: [
        {
          name: 'drop-last-ack',
          side: 'server',
          hook: 'INPUT',
          proto: 'tcp',
          tcp: { dport: endpoints.port, flags: { mask: 'ALL', set: ['ACK'] } },
          target: { kind: 'DROP' },
        },
      ],
    }),
  },
  expect: (ctx) => {
    const { s, p, lastsSeenMs } = lastAckOrphan(ctx);
    return {
      steps: { connect: { ok: true, errno: null }, close: { ok: true, errno: null } },
      states: { client: ['TIME_WAIT'], server: ['LAST_ACK'] },
      statesAbsent: { client: ['CLOSE_WAIT', 'LAST_ACK'], server: ['TIME_WAIT', 'FIN_WAIT1', 'FIN_WAIT2'] },
      spans: [
        { side: 'server', state: 'LAST_ACK', sockets: 1, then: 'GONE', lastsMs: lastsSeenMs, retrans: countRange(p.rtoRetransmits) },
        { side: 'client', state: 'TIME_WAIT', sockets: 1, then: 'held' },
      ],
      counters: {
        server: orphanFinCounters(p),
        // One TIME_WAIT, scheduled for 60 s (> 4 s: "TW"); the retransmitted FINs only reschedule it.
        client: { TcpExtTW: 1, TcpRetransSegs: 0 },
      },
      // Each FIN of the server (first, TLP, RTO retransmissions) draws one ACK from the client.
      rulesHit: { 'drop-last-ack': countRange(p.finsSent) },
      // The scenario needs a server that closes when the client does (the built-in echo server, nginx, redis do): asked, and answered with its time.
      asks: [closesQuestion(false, 'close')],
      because: [`server: ${orphanFinBecause(p, s)}; LAST_ACK gone ${(p.windowMs[0] / 1000).toFixed(3)}–${(p.windowMs[1] / 1000).toFixed(3)} s after its FIN (${p.goneAtMs / 1000} s of timers, rounded up by the wheel)`],
    };
  },
  script: (ctx) => {
    const { lastsSeenMs } = lastAckOrphan(ctx);
    return [
      { op: 'connect', label: 'connect', timeoutMs: 5000 },
      { op: 'barrier', name: 'arm-ack-drop' },
      { op: 'close', label: 'close' },
      // Keep observing until the server's orphan must be gone (its FIN follows our close within a wake-up).
      { op: 'sleep', ms: observeUntilMs(lastsSeenMs[1], ctx.clock, ctx.watchIntervalMs) },
    ];
  },
});
