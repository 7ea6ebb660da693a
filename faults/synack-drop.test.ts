import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { synackDrop } from './synack-drop.js';
import { faultContext } from './context.js';

const ctx = (raw: Record<string, unknown> = {}, server: Record<string, string> = { 'net.ipv4.tcp_synack_retries': '2' }) =>
  faultContext(synackDrop, { params: raw, sysctls: { client: {}, server } });

describe('synack-drop', () => {
  it('drops bare ACKs to the target port in the server namespace', () => {
    const { rules } = synackDrop.plan(ctx());
    const steps = planRules('abc123', rules ?? []);
    expect(steps[1]!.apply).toEqual([
      'iptables', '-w', '5', '-A', 'harness-abc123-in',
      '-p', 'tcp', '--dport', '9000', '--tcp-flags', 'ALL', 'ACK', '-m', 'comment', '--comment', 'harness:abc123:drop-ack', '-j', 'DROP',
    ]);
    expect(steps.every((s) => s.side === 'server')).toBe(true);
  });

  it('after the expiry: RST → ECONNRESET, then EPIPE, then EOF; one ACK per SYN-ACK hits the rule', () => {
    const e = synackDrop.expect(ctx());
    expect(e.steps.read).toMatchObject({ errno: 'ECONNRESET' });
    expect(e.steps['write-again']).toMatchObject({ errno: 'EPIPE' });
    expect(e.steps['read-again']).toMatchObject({ eof: true });
    expect(e.rulesHit).toEqual({ 'drop-ack': 3 });
    expect(e.counters?.server).toMatchObject({ TcpExtTCPSynRetrans: 2, TcpExtTCPTimeouts: 3, TcpOutRsts: 1 });
    expect(e.stateLeft).toEqual([{ side: 'server', state: 'SYN_RECV', to: 'GONE', windowMs: [7000, 7333] }]);
  });

  it('sleeps past the expiry window before writing, and follows tcp_synack_retries', () => {
    const script = synackDrop.script(ctx(), synackDrop.expect(ctx()));
    expect(script.map((s) => s.op)).toEqual(['connect', 'sleep', 'write', 'read', 'write', 'read']);
    expect(script[1]).toEqual({ op: 'sleep', ms: 7328 });
    const three = ctx({}, { 'net.ipv4.tcp_synack_retries': '3' });
    expect(synackDrop.expect(three).rulesHit).toEqual({ 'drop-ack': 4 });
    expect(synackDrop.script(three, synackDrop.expect(three))[1]).toMatchObject({ ms: 15_000 + 32 + 32 + 256 + 256 + 8 });
  });

  it('before the expiry: the data completes the handshake; nothing fails', () => {
    const c = ctx({ write: 'before' });
    const e = synackDrop.expect(c);
    expect(e.steps.read).toMatchObject({ timedOut: true });
    expect(e.states?.server).toContain('ESTABLISHED');
    expect(e.rulesHit).toEqual({ 'drop-ack': 2 });
    const script = synackDrop.script(c, e);
    // Past the first resend's window (1032 ms) and before the expiry window opens (7000 ms).
    expect(script[1]).toEqual({ op: 'sleep', ms: 1040 });
  });

  it('rejects an unknown write mode', () => {
    expect(synackDrop.params.safeParse({ write: 'never' }).success).toBe(false);
  });
});
