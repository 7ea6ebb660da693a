import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { DELAY_QUEUE, latency, latencyPrediction } from './latency.js';
import { faultContext } from './context.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';

const clock = { hz: 250 };
const wake = wakeupSlackMs(clock);
const ctx = (params: Record<string, unknown> = {}) => faultContext(latency, { params });

describe('latency', () => {
  it('starts a delayer in each receiving namespace, then NFQUEUE rules on their INPUT', () => {
    const c = ctx({ delayMs: '120', jitterMs: '10' });
    const plan = latency.plan(c);
    expect(plan.processes).toEqual([
      expect.objectContaining({ side: 'server', probeArgs: ['delay', '--queue', String(DELAY_QUEUE), '--delay-us', '120000', '--jitter-us', '10000'], ready: '"event":"delaying"' }),
      expect.objectContaining({ side: 'client', probeArgs: ['delay', '--queue', String(DELAY_QUEUE), '--delay-us', '120000', '--jitter-us', '10000'] }),
    ]);
    const argv = planRules('abc123', plan.rules!).map((s) => [s.side, ...s.apply]);
    expect(argv).toContainEqual([
      'server', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.2', '--dport', '9000',
      '-m', 'comment', '--comment', 'harness:abc123:delay-to-server', '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE),
    ]);
    expect(argv).toContainEqual([
      'client', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.1', '--sport', '9000',
      '-m', 'comment', '--comment', 'harness:abc123:delay-to-client', '-j', 'NFQUEUE', '--queue-num', String(DELAY_QUEUE),
    ]);
    expect(latency.mechanisms!(c.params)).toEqual(['nfqueue']);
  });
  it('one direction: one delayer, one rule', () => {
    const plan = latency.plan(ctx({ direction: 'to-client' }));
    expect(plan.processes!.map((p) => p.side)).toEqual(['client']);
    expect(plan.rules!.map((r) => r.name)).toEqual(['delay-to-client']);
  });
  it('connect and each round take a round trip; TCP_INFO rtt and RTO from the estimator; no retransmission', () => {
    const c = ctx({ rounds: '2' });
    const e = latency.expect(c);
    const window: [number, number] = [200, 200 + 4 * wake];
    expect(e.steps.connect).toMatchObject({ ok: true, windowMs: window, rttUs: [200_000, 200_000 + 3 * wake * 1000], rtoUs: [600_000, 672_000] });
    expect(e.steps['round-1']!.windowMs).toEqual(window);
    expect(e.steps['round-2']!.windowMs).toEqual(window);
    expect(e.counters).toEqual({ client: { TcpRetransSegs: 0, TcpExtTCPLossProbes: 0, TcpExtTCPTimeouts: 0 }, server: { TcpRetransSegs: 0 } });
    // The handshake's SYN and ACK and one request per round, at least, went through each delayer.
    expect(e.rulesHit).toEqual({ 'delay-to-server': { min: 4 }, 'delay-to-client': { min: 3 } });
    expect(latency.script(c, e).map((s) => s.op)).toEqual(['connect', 'sleep', 'write', 'read', 'write', 'read', 'tcpinfo']);
  });
  it('established: the rules come at a barrier after the handshake; spurious retransmissions predicted', () => {
    const c = ctx({ when: 'established', delayMs: '300' });
    const plan = latency.plan(c);
    expect(plan.rules).toBeUndefined();
    expect(plan.processes).toHaveLength(2);
    const t = latency.triggers!.delay!(c);
    expect(t.kind === 'rules' && t.rules.map((r) => r.name)).toEqual(['delay-to-server', 'delay-to-client']);
    const e = latency.expect(c);
    expect(e.steps.connect).toMatchObject({ windowMs: [0, 2 * wake], rtoUs: [204_000, 204_000] });
    // The probe at 204 ms and the RTO at 408 ms beat an answer at 600 ms.
    expect(e.counters!.client).toEqual({ TcpRetransSegs: 2, TcpExtTCPLossProbes: 1, TcpExtTCPTimeouts: 1 });
    expect(latency.script(c, e).map((s) => s.op)).toEqual(['connect', 'sleep', 'barrier', 'write', 'read', 'tcpinfo']);
  });
  it('the windows follow tcp_rto_min_us (the RTO floor)', () => {
    const fast = faultContext(latency, { params: { when: 'established', delayMs: '300' }, sysctls: { client: { 'net.ipv4.tcp_rto_min_us': '50000' } } });
    const p = latencyPrediction(fast);
    // rto_min 50 ms + a veth sample under a jiffy: 13 or 14 jiffies.
    expect(p.rounds[0]!.rtoMs).toEqual([52, 56]);
    expect(p.spurious.firings[0]).toBeGreaterThan(2);
  });
  it('refuses what it cannot model or mean, naming the parameter', () => {
    const bad = (raw: Record<string, unknown>) => {
      const r = latency.params.safeParse(raw);
      return r.success ? undefined : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(bad({ delayMs: '0' })).toMatch(/^delayMs/);
    expect(bad({ delayMs: '-5' })).toMatch(/^delayMs/);
    expect(bad({ delayMs: '10furlongs' })).toMatch(/^delayMs/);
    expect(bad({ delayMs: '100', jitterMs: '150' })).toMatch(/^jitterMs: must not exceed delayMs/);
    expect(bad({ delayMs: '600' })).toMatch(/^delayMs: .*1 s initial RTO/);
    expect(bad({ delayMs: '600', when: 'established' })).toBeUndefined();
    expect(bad({ delayMs: '800', direction: 'to-server' })).toBeUndefined();
    expect(bad({ direction: 'sideways' })).toMatch(/^direction/);
  });
});
