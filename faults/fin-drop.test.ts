import { describe, expect, it } from 'vitest';
import { finDrop } from './fin-drop.js';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';

const ctx = (client: Record<string, string> = {}) =>
  faultContext(finDrop, { sysctls: { client: { 'net.ipv4.tcp_orphan_retries': '2', ...client }, server: {} } });

describe('fin-drop', () => {
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
    expect(e.stateLeft?.[0]?.windowMs[0]).toBe(3264);
    expect(e.rulesHit).toEqual({ 'drop-fin': 5 });
    expect(e.counters?.client).toMatchObject({ TcpRetransSegs: 4, TcpExtTCPLossProbes: 1, TcpExtTCPAbortOnTimeout: 1 });
    expect(e.steps['before-close']).toEqual({ tcpState: 'ESTABLISHED', rtoUs: 204_000 });
    expect(e.spans).toContainEqual({ side: 'server', state: 'ESTABLISHED', sockets: 1, then: 'held' });
  });

  it('follows the sysctls: no TLP with tcp_early_retrans=0, one FIN fewer', () => {
    const e = finDrop.expect(ctx({ 'net.ipv4.tcp_early_retrans': '0' }));
    expect(e.rulesHit).toEqual({ 'drop-fin': 4 });
    expect(e.counters?.client?.TcpExtTCPLossProbes).toBe(0);
  });

  it('keeps observing after close() until the orphan must be gone', () => {
    const c = ctx();
    const script = finDrop.script(c, finDrop.expect(c));
    expect(script.map((s) => s.op)).toEqual(['connect', 'tcpinfo', 'close', 'sleep']);
    const sleep = script[3] as { ms: number };
    expect(sleep.ms).toBeGreaterThan(finDrop.expect(c).stateLeft![0]!.windowMs[1]);
  });
});
