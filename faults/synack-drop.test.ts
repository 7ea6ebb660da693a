import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { synackDrop } from './synack-drop.js';
import { faultContext } from './context.js';
import { TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';
import { watchedWindowMs } from '../harness/model/watch.js';

/**
 * The request timer by hand: intervals TCP_TIMEOUT_INIT << n (1, 2, 4 … s); with
 * tcp_synack_retries R the SYN-ACK is resent R times and the request dropped at the next firing.
 */
const clock = { hz: 250 };
const reqskChain = (firings: number) => Array.from({ length: firings }, (_, n) => TCP_TIMEOUT_INIT_MS << n);

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
    expect(e.stateLeft).toEqual([{ side: 'server', state: 'SYN_RECV', to: 'GONE', windowMs: watchedWindowMs(chainWindowMs(reqskChain(3), clock), clock) }]);
  });

  it('sleeps past the expiry window before writing, and follows tcp_synack_retries', () => {
    const script = synackDrop.script(ctx(), synackDrop.expect(ctx()));
    expect(script.map((s) => s.op)).toEqual(['connect', 'sleep', 'write', 'read', 'write', 'read']);
    // Past the latest drop (2 resends, then the drop), plus a wake-up.
    expect(script[1]).toEqual({ op: 'sleep', ms: Math.ceil(chainWindowMs(reqskChain(3), clock)[1] + wakeupSlackMs(clock)) });
    const three = ctx({}, { 'net.ipv4.tcp_synack_retries': '3' });
    expect(synackDrop.expect(three).rulesHit).toEqual({ 'drop-ack': 4 });
    expect(synackDrop.script(three, synackDrop.expect(three))[1]).toMatchObject({ ms: Math.ceil(chainWindowMs(reqskChain(4), clock)[1] + wakeupSlackMs(clock)) });
  });

  it('before the expiry: the data completes the handshake; nothing fails', () => {
    const c = ctx({ write: 'before' });
    const e = synackDrop.expect(c);
    expect(e.steps.read).toMatchObject({ timedOut: true });
    expect(e.states?.server).toContain('ESTABLISHED');
    expect(e.rulesHit).toEqual({ 'drop-ack': 2 });
    const script = synackDrop.script(c, e);
    // Past the first resend's window (and a wake-up), before the expiry window opens.
    const firstResend = chainWindowMs(reqskChain(1), clock);
    expect(script[1]).toEqual({ op: 'sleep', ms: Math.ceil(firstResend[1] + wakeupSlackMs(clock)) });
    expect((script[1] as { ms: number }).ms).toBeLessThan(chainWindowMs(reqskChain(3), clock)[0]);
  });

  it('rejects an unknown write mode', () => {
    expect(synackDrop.params.safeParse({ write: 'never' }).success).toBe(false);
  });
});
