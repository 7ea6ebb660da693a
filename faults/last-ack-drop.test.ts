import { describe, expect, it } from 'vitest';
import { lastAckDrop } from './last-ack-drop.js';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';
import { modelTimeoutMs, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { rtoAfterHandshakeMs } from '../harness/model/teardown.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';
import { watchedSpanMs } from '../harness/model/watch.js';

/**
 * The server orphan's schedule, by hand from the timer helpers (as in fin-drop.test.ts): RTO r
 * after a veth handshake; its FIN, a TLP after r, RTO retransmissions r, 2r, 4r … apart while the
 * time since the first stays below tcp_model_timeout(tcp_orphan_retries, TCP_RTO_MIN).
 */
const clock = { hz: 250 };
const r = rtoAfterHandshakeMs(TCP_RTO_MIN_MS * 1000, TCP_RTO_MAX_MS, clock);

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
    // tcp_orphan_retries=2: retransmissions at 0, 2r, 6r since the first (< the boundary), the expiry at 14r.
    expect(6 * r).toBeLessThan(modelTimeoutMs(2, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS));
    expect(14 * r).toBeGreaterThanOrEqual(modelTimeoutMs(2, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS));
    const span = e.spans?.find((s) => s.state === 'LAST_ACK');
    expect(span).toMatchObject({ side: 'server', then: 'GONE', retrans: 3 });
    expect(span?.lastsMs).toEqual(watchedSpanMs(chainWindowMs([r, r, 2 * r, 4 * r, 8 * r], clock), clock));
    expect(e.spans).toContainEqual({ side: 'client', state: 'TIME_WAIT', sockets: 1, then: 'held' });
    // Each server FIN — the first, the TLP, 3 RTO retransmissions — draws one ACK the rule drops.
    expect(e.rulesHit).toEqual({ 'drop-last-ack': 1 + 1 + 3 });
    expect(e.counters?.server).toMatchObject({ TcpExtTCPAbortOnTimeout: 1, TcpRetransSegs: 1 + 3 });
    // A client-side tcp_orphan_retries changes nothing: the server is the orphan.
    expect(lastAckDrop.expect({ ...ctx(), sysctls: { client: { 'net.ipv4.tcp_orphan_retries': '1' }, server: { 'net.ipv4.tcp_orphan_retries': '2' } } }).rulesHit).toEqual({ 'drop-last-ack': 1 + 1 + 3 });
    // tcp_orphan_retries=1: retransmissions at 0, 2r since the first (< the boundary), the expiry at 6r.
    expect(2 * r).toBeLessThan(modelTimeoutMs(1, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS));
    expect(6 * r).toBeGreaterThanOrEqual(modelTimeoutMs(1, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS));
    expect(lastAckDrop.expect(ctx({ 'net.ipv4.tcp_orphan_retries': '1' })).rulesHit).toEqual({ 'drop-last-ack': 1 + 1 + 2 });
  });
});
