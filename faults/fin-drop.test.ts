import { describe, expect, it } from 'vitest';
import { finDrop } from './fin-drop.js';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';
import { modelTimeoutMs, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { rtoAfterHandshakeMs } from '../harness/model/teardown.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';
import { watchedWindowMs } from '../harness/model/watch.js';

const ctx = (client: Record<string, string> = {}) =>
  faultContext(finDrop, { sysctls: { client: { 'net.ipv4.tcp_orphan_retries': '2', ...client }, server: {} } });

/**
 * The orphan's schedule at tcp_orphan_retries=2, by hand from the timer helpers: the RTO after a
 * veth handshake is r; the FIN, a TLP after r, the first RTO retransmission r later (it starts the
 * clock), then retransmissions 2r, 4r apart while the time since the first stays below
 * tcp_model_timeout(2, TCP_RTO_MIN); the firing 8r later is past it and destroys the socket.
 */
const clock = { hz: 250 };
const r = rtoAfterHandshakeMs(TCP_RTO_MIN_MS * 1000, TCP_RTO_MAX_MS, clock);
const boundary = modelTimeoutMs(2, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS);
const chain = [r, r, 2 * r, 4 * r, 8 * r]; // TLP, RTO #1..#3, the expiry
const RTO_RETRANSMITS = 3;

describe('fin-drop', () => {
  it('the hand schedule: the third RTO retransmission is inside the boundary, the next firing past it', () => {
    expect(2 * r + 4 * r).toBeLessThan(boundary);
    expect(2 * r + 4 * r + 8 * r).toBeGreaterThanOrEqual(boundary);
  });

  it('drops every inbound FIN at the server, in a chain the run owns', () => {
    const steps = planRules('abc123', finDrop.plan(ctx()).rules ?? []);
    const rule = steps.find((s) => s.describe.startsWith('rule drop-fin'))!;
    expect(rule.side).toBe('server');
    expect(rule.apply).toEqual([
      'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '--dport', '9000', '--tcp-flags', 'FIN', 'FIN',
      '-m', 'comment', '--comment', 'harness:abc123:drop-fin', '-j', 'DROP',
    ]);
    expect(rule.revert).toEqual(['iptables', '-w', '5', '-D', ...rule.apply.slice(4)]);
  });

  it('predicts FIN_WAIT1 → GONE from tcp_orphan_retries, with the FINs the rule must count', () => {
    const e = finDrop.expect(ctx());
    expect(e.stateLeft?.[0]).toMatchObject({ side: 'client', state: 'FIN_WAIT1', to: 'GONE', fromStep: 'close' });
    expect(e.stateLeft?.[0]?.windowMs).toEqual(watchedWindowMs(chainWindowMs(chain, clock), clock));
    // The FIN, the TLP, the RTO retransmissions.
    expect(e.rulesHit).toEqual({ 'drop-fin': 1 + 1 + RTO_RETRANSMITS });
    expect(e.counters?.client).toMatchObject({ TcpRetransSegs: 1 + RTO_RETRANSMITS, TcpExtTCPLossProbes: 1, TcpExtTCPTimeouts: RTO_RETRANSMITS + 1, TcpExtTCPAbortOnTimeout: 1 });
    expect(e.steps['before-close']).toEqual({ tcpState: 'ESTABLISHED', rtoUs: r * 1000 });
    expect(e.spans).toContainEqual({ side: 'server', state: 'ESTABLISHED', sockets: 1, then: 'held' });
  });

  it('follows the sysctls: no TLP with tcp_early_retrans=0, one FIN fewer', () => {
    const e = finDrop.expect(ctx({ 'net.ipv4.tcp_early_retrans': '0' }));
    expect(e.rulesHit).toEqual({ 'drop-fin': 1 + RTO_RETRANSMITS });
    expect(e.counters?.client?.TcpExtTCPLossProbes).toBe(0);
    // Gone one RTO earlier: the chain without the TLP.
    expect(e.stateLeft?.[0]?.windowMs).toEqual(watchedWindowMs(chainWindowMs(chain.slice(1), clock), clock));
  });

  it('keeps observing after close() until the orphan must be gone', () => {
    const c = ctx();
    const script = finDrop.script(c, finDrop.expect(c));
    expect(script.map((s) => s.op)).toEqual(['connect', 'tcpinfo', 'close', 'sleep']);
    const sleep = script[3] as { ms: number };
    expect(sleep.ms).toBeGreaterThan(finDrop.expect(c).stateLeft![0]!.windowMs[1]);
  });
});
