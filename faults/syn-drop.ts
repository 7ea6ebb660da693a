/**
 * syn-drop — the target never answers a SYN (a host that is down, a firewall that drops).
 *
 * A client sees: connect() hangs in SYN_SENT while the kernel retransmits the SYN, then fails
 * with ETIMEDOUT; no RST, nothing reaches the server. On Linux >= 6.7 the first
 * `tcp_syn_linear_timeouts` (default 4) retransmissions are 1 s apart instead of doubling, and the
 * connect expires at whichever comes first: `tcp_syn_retries + tcp_syn_linear_timeouts`
 * retransmissions, or (2^(retries+1) - 1) s since the first SYN. So the default
 * (retries=6) gives up after 131 s here, not the 127 s the seeds measured on CentOS 7.
 */
import { z } from 'zod';
import { predictSynTimeout, synSysctlsFrom, SYN_SYSCTLS } from '../harness/model/tcp.js';
import { defineFault, stepTimeoutMs } from './define.js';

export const synDrop = defineFault({
  name: 'syn-drop',
  summary: 'the target drops every inbound SYN (iptables --syn -j DROP in its namespace)',
  observes: 'connect() stays in SYN_SENT while SYNs are retransmitted, then ETIMEDOUT; no RST',
  shapedBy: { client: SYN_SYSCTLS },
  params: z.object({
    syncnt: z.coerce.number().int().min(1).max(127).optional().describe('TCP_SYNCNT on the client socket (overrides tcp_syn_retries)'),
  }),
  server: () => ({ mode: 'echo' }),
  needs: () => 'any',
  fastSysctls: () => ({ client: { 'net.ipv4.tcp_syn_retries': '2' } }),
  plan: ({ endpoints }) => ({
    rules: [
      { name: 'drop-syn', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: endpoints.port, syn: true }, target: { kind: 'DROP' } },
    ],
  }),
  expect: ({ sysctls, params, clock }) => {
    const s = synSysctlsFrom(sysctls.client, params.syncnt);
    const p = predictSynTimeout(s, clock);
    return {
      steps: { connect: { ok: false, errno: p.errno, windowMs: p.windowMs, tcpState: 'CLOSE', totalRetrans: p.retransmits } },
      states: { client: ['SYN_SENT'] },
      statesAbsent: { client: ['ESTABLISHED'], server: ['SYN_RECV', 'ESTABLISHED'] },
      counters: { client: { TcpExtTCPSynRetrans: p.retransmits, TcpExtTCPAbortOnTimeout: 1 } },
      rulesHit: { 'drop-syn': p.synsSent },
      because: [
        `syn retries ${s.synRetries}${params.syncnt ? ' (TCP_SYNCNT)' : ''} + ${s.synLinearTimeouts} linear timeouts: ` +
          `${p.retransmits} retransmissions at ${p.retransmitAtMs.map((t) => t / 1000).join(', ')} s, ` +
          `ETIMEDOUT at ${p.timeoutMs / 1000} s (limited by ${p.limitedBy})`,
      ],
    };
  },
  // Any client's connect: SYN_SENT for the kernel's whole SYN schedule, then ETIMEDOUT.
  connection: (_ctx, expected) => ({
    state: 'SYN_SENT',
    from: 'enter',
    endsMs: expected.steps.connect!.windowMs!,
    errno: 'ETIMEDOUT',
    then: 'GONE',
    retrans: expected.steps.connect!.totalRetrans!,
    because: expected.because![0]!,
  }),
  script: ({ params }, expected) => [
    ...(params.syncnt ? [{ op: 'setsockopt' as const, opt: 'SYNCNT' as const, value: params.syncnt }] : []),
    { op: 'connect', label: 'connect', timeoutMs: stepTimeoutMs(expected.steps.connect) },
  ],
});
