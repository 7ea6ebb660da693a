import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { DEFAULT_OUTAGE_MS, HEAL_BUDGET_MAX_MS, HEAL_BUDGET_MIN_MS, partition, partitionPrediction } from './partition.js';
import { faultContext } from './context.js';
import type { Trigger } from './define.js';
import { predictSynTimeout, synSysctlsFrom, wakeupSlackMs } from '../harness/model/tcp.js';

const wake = wakeupSlackMs({ hz: 250 });
const ctx = (params: Record<string, unknown> = {}, client: Record<string, string> = {}) => faultContext(partition, { params, sysctls: { client, server: {} } });

describe('partition', () => {
  it('cuts both directions at a barrier (each namespace drops what the other sends), then heals outageMs later', () => {
    const c = ctx({ outageMs: '5000' });
    expect(partition.plan(c)).toEqual({});
    const t = partition.triggers!.cut!(c);
    expect(t.kind).toBe('all');
    if (t.kind !== 'all') return;
    const [cut, heal] = t.triggers as [Trigger, Trigger];
    expect(cut.kind === 'rules' && planRules('abc123', cut.rules).map((s) => [s.side, ...s.apply]).filter((a) => a.includes('DROP'))).toEqual([
      ['server', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.2', '--dport', '9000', '-m', 'comment', '--comment', 'harness:abc123:drop-to-server', '-j', 'DROP'],
      ['client', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.1', '--sport', '9000', '-m', 'comment', '--comment', 'harness:abc123:drop-to-client', '-j', 'DROP'],
    ]);
    // The heal may come as late as the RTO at 6.524 s without changing the outcome: capped at 2 s.
    expect(heal).toEqual({ kind: 'after', ms: 5000, budgetMs: 1524, trigger: { kind: 'remove-rules', rules: cut.kind === 'rules' ? cut.rules : [] } });
  });
  it('transfer, 5 s: the request waits for the RTO at ~6.5 s, not 5 s; six retransmissions, six segments dropped', () => {
    const c = ctx({ outageMs: '5000' });
    const e = partition.expect(c);
    expect(e.steps.stall!.ok).toBe(true);
    expect(e.steps.stall!.windowMs![0]).toBe(6524);
    expect(e.steps.stall!.windowMs![0]).toBeGreaterThan(5000 + HEAL_BUDGET_MIN_MS);
    expect(e.counters!.client).toMatchObject({ TcpRetransSegs: 6, TcpExtTCPLossProbes: 1, TcpExtTCPTimeouts: 5, TcpExtTCPAbortOnTimeout: 0 });
    expect(e.rulesHit).toEqual({ 'drop-to-server': 6, 'drop-to-client': 0 });
    expect(partition.script(c, e).map((s) => s.op)).toEqual(['connect', 'sleep', 'barrier', 'write', 'read', 'sleep']);
  });
  it('transfer: tcp_retries2=3 dies before an 8 s heal: ETIMEDOUT, the server half-open', () => {
    const e = partition.expect(ctx({ outageMs: '8000' }, { 'net.ipv4.tcp_retries2': '3' }));
    expect(e.steps.stall).toMatchObject({ ok: false, errno: 'ETIMEDOUT' });
    expect(e.states!.client).toContain('GONE');
    expect(e.counters!.server).toEqual({ TcpRetransSegs: 0, TcpEstabResets: 0 });
  });
  it('idle: keepalive probes 1 s apart; the one after a 3.5 s outage is answered; the wait ends before the next', () => {
    const c = ctx({ variant: 'idle' });
    const e = partition.expect(c);
    expect(e.steps.idle).toMatchObject({ ok: false, timedOut: true, errno: null });
    expect(e.counters!.client!.TcpExtTCPKeepAlive).toBe(4);
    expect(e.rulesHit!['drop-to-server']).toBe(3);
    const ops = partition.script(c, e).flatMap((s) => (s.op === 'setsockopt' ? [s.opt] : [s.op]));
    expect(ops).toEqual(['connect', 'sleep', 'barrier', 'KEEPIDLE', 'KEEPINTVL', 'KEEPCNT', 'KEEPALIVE', 'wait', 'tcpinfo']);
  });
  it('connect: cut before connect(); the SYN at 3 s gets through a 2.5 s outage (6.7+: linear SYN timeouts)', () => {
    const c = ctx({ variant: 'connect' }, { 'net.ipv4.tcp_syn_linear_timeouts': '4' });
    const e = partition.expect(c);
    // The third SYN retransmission (three 1 s timers on the wheel) gets through, then two wake-ups.
    const third = predictSynTimeout(synSysctlsFrom(c.sysctls.client), c.clock).retransmitWindowsMs[2]!;
    expect(e.steps.connect).toMatchObject({ ok: true, windowMs: [third[0], third[1] + 2 * wake] });
    expect(e.counters!.client!.TcpExtTCPSynRetrans).toBe(3);
    expect(partition.script(c, e)[0]).toEqual({ op: 'barrier', name: 'cut' });
  });
  it('each variant has its default outage, chosen between two firings', () => {
    for (const variant of ['transfer', 'idle', 'connect'] as const) {
      const p = partitionPrediction(ctx({ variant }, { 'net.ipv4.tcp_syn_linear_timeouts': '4' }));
      // One firing gets through, well after the heal: the heal may be as late as the budget.
      expect(p.m.through![0], variant).toBe(p.m.through![1]);
      expect(p.budgetMs, variant).toBeGreaterThan(HEAL_BUDGET_MIN_MS);
      expect(p.m.throughMs![0], variant).toBeGreaterThanOrEqual(DEFAULT_OUTAGE_MS[variant] + p.budgetMs);
    }
  });
  it('the heal\'s budget is what the prediction tolerates: up to the next firing, 100 ms..2 s', () => {
    const c = (params: Record<string, unknown>, client: Record<string, string> = {}) => partitionPrediction(ctx(params, client)).budgetMs;
    expect(c({ outageMs: '5000' })).toBe(1524); // the RTO at 6.524 s
    expect(c({ outageMs: '6500' })).toBe(HEAL_BUDGET_MIN_MS); // 24 ms before a firing: the window spans both
    expect(c({ outageMs: '20000' })).toBe(HEAL_BUDGET_MAX_MS);
    expect(c({ outageMs: '8000' }, { 'net.ipv4.tcp_retries2': '3' })).toBe(HEAL_BUDGET_MAX_MS); // dead before: the heal cannot matter
    const amb = partition.expect(ctx({ outageMs: '6500' }));
    expect(amb.counters!.client!.TcpRetransSegs).toEqual({ min: 6, max: 7 });
  });
  it('refuses outages that mean nothing, naming the parameter', () => {
    for (const v of ['0', '-1', '5s', '1e9']) expect(partition.params.safeParse({ outageMs: v }).error?.issues[0]!.path).toEqual(['outageMs']);
    expect(partition.params.safeParse({ variant: 'forever' }).success).toBe(false);
  });
});
