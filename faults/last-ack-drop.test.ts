import { describe, expect, it } from 'vitest';
import { lastAckDrop } from './last-ack-drop.js';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';

const ctx = (server: Record<string, string> = { 'net.ipv4.tcp_orphan_retries': '2' }) =>
  faultContext(lastAckDrop, { sysctls: { client: {}, server } });

describe('last-ack-drop', () => {
  it('plans nothing up front: the ACK drop is armed at the barrier, after the handshake', () => {
    expect(lastAckDrop.plan(ctx()).rules ?? []).toEqual([]);
    const c = ctx();
    const script = lastAckDrop.script(c, lastAckDrop.expect(c));
    expect(script.map((s) => s.op)).toEqual(['connect', 'barrier', 'close', 'sleep']);
    const t = lastAckDrop.triggers!['arm-ack-drop']!(c);
    expect(t.kind).toBe('rules');
    const rules = t.kind === 'rules' ? t.rules : [];
    const rule = planRules('abc123', rules).find((s) => s.describe.startsWith('rule drop-last-ack'))!;
    expect(rule.side).toBe('server');
    expect(rule.apply).toContain('--tcp-flags');
    expect(rule.apply.slice(rule.apply.indexOf('--tcp-flags'), rule.apply.indexOf('--tcp-flags') + 3)).toEqual(['--tcp-flags', 'ALL', 'ACK']);
  });

  it("derives the server's LAST_ACK from the server's sysctls, and the client's TIME_WAIT", () => {
    const e = lastAckDrop.expect(ctx());
    const span = e.spans?.find((s) => s.state === 'LAST_ACK');
    expect(span).toMatchObject({ side: 'server', then: 'GONE', retrans: 3 });
    expect(span?.lastsMs?.[0]).toBeLessThan(3264);
    expect(e.spans).toContainEqual({ side: 'client', state: 'TIME_WAIT', sockets: 1, then: 'held' });
    expect(e.rulesHit).toEqual({ 'drop-last-ack': 5 });
    expect(e.counters?.server).toMatchObject({ TcpExtTCPAbortOnTimeout: 1, TcpRetransSegs: 4 });
    // A client-side tcp_orphan_retries changes nothing: the server is the orphan.
    expect(lastAckDrop.expect({ ...ctx(), sysctls: { client: { 'net.ipv4.tcp_orphan_retries': '1' }, server: { 'net.ipv4.tcp_orphan_retries': '2' } } }).rulesHit).toEqual({ 'drop-last-ack': 5 });
    expect(lastAckDrop.expect(ctx({ 'net.ipv4.tcp_orphan_retries': '1' })).rulesHit).toEqual({ 'drop-last-ack': 4 });
  });
});
