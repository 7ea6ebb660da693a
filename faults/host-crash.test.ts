import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { hostCrash } from './host-crash.js';
import { faultContext } from './context.js';

const ctx = (params: Record<string, unknown>, client: Record<string, string> = { 'net.ipv4.tcp_retries2': '3' }) =>
  faultContext(hostCrash, { params: params, sysctls: { client, server: {} } });

describe('host-crash', () => {
  it('drops everything the client sends, in the target namespace, from the crash barrier on', () => {
    const c = ctx({});
    expect(hostCrash.plan(c)).toEqual({});
    const t = hostCrash.triggers!.crash!(c);
    expect(t.kind).toBe('rules');
    if (t.kind !== 'rules') return;
    const argv = planRules('abc123', t.rules).map((s) => [s.side, ...s.apply]);
    expect(argv).toContainEqual([
      'server', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.2', '--dport', '9000',
      '-m', 'comment', '--comment', 'harness:abc123:drop-in', '-j', 'DROP',
    ]);
  });
  it('retries2: ETIMEDOUT in the modelled window, counters and rule hits from the model', () => {
    const c = ctx({});
    const e = hostCrash.expect(c);
    expect(e.steps.dies).toMatchObject({ errno: 'ETIMEDOUT', tcpState: 'CLOSE', totalRetrans: 5 });
    expect(e.steps.dies!.windowMs![0]).toBeGreaterThan(6400);
    expect(e.counters!.client).toMatchObject({ TcpRetransSegs: 5, TcpExtTCPTimeouts: 5, TcpExtTCPLossProbes: 1, TcpExtTCPAbortOnTimeout: 1 });
    expect(e.rulesHit).toEqual({ 'drop-in': 6 });
    const script = hostCrash.script(c, e);
    expect(script.map((s) => s.op)).toEqual(['connect', 'sleep', 'barrier', 'write', 'read']);
    expect(script.at(-1)!).toMatchObject({ label: 'dies', timeoutMs: Math.ceil(e.steps.dies!.windowMs![1]) + 1000 });
  });
  it('the window follows tcp_retries2', () => {
    const w3 = hostCrash.expect(ctx({})).steps.dies!.windowMs!;
    const w5 = hostCrash.expect(ctx({}, { 'net.ipv4.tcp_retries2': '5' })).steps.dies!.windowMs!;
    expect(w5[0]).toBeGreaterThan(w3[1]);
  });
  it('user-timeout: sets TCP_USER_TIMEOUT before connecting and expects ETIMEDOUT ~0.4 s after it', () => {
    const c = ctx({ variant: 'user-timeout', userTimeoutMs: '1500' });
    const e = hostCrash.expect(c);
    expect(hostCrash.script(c, e)[0]).toEqual({ op: 'setsockopt', opt: 'USER_TIMEOUT', value: 1500 });
    expect(e.steps.dies!.windowMs![0]).toBeCloseTo(404 + 1500, 0);
  });
  it('keepalive: options set after the crash, SO_KEEPALIVE last (arms the timer), ETIMEDOUT after idle + cnt × intvl', () => {
    const c = ctx({ variant: 'keepalive', keepIdleS: '2', keepIntvlS: '1', keepCnt: '2' });
    const e = hostCrash.expect(c);
    const opts = hostCrash.script(c, e).flatMap((s) => (s.op === 'setsockopt' ? [s.opt] : []));
    expect(opts).toEqual(['KEEPIDLE', 'KEEPINTVL', 'KEEPCNT', 'KEEPALIVE']);
    expect(e.steps.dies!.windowMs![0]).toBeGreaterThanOrEqual(3996);
    expect(e.counters!.client!.TcpExtTCPKeepAlive).toBe(2);
    expect(e.rulesHit).toEqual({ 'drop-in': 3 });
  });
  it('idle: the wait must time out with no error and the socket stay ESTABLISHED', () => {
    const e = hostCrash.expect(ctx({ variant: 'idle', idleWaitMs: '2000' }));
    expect(e.steps['idle-wait']).toEqual({ ok: false, timedOut: true, errno: null, windowMs: [2000, 2008] });
    expect(e.steps['still-established']).toMatchObject({ tcpState: 'ESTABLISHED', totalRetrans: 0 });
    expect(e.statesAbsent!.client).toContain('GONE');
  });
  it('validates its parameters', () => {
    expect(hostCrash.params.safeParse({ variant: 'meteor' }).success).toBe(false);
    expect(hostCrash.params.safeParse({ bytes: '5000' }).success).toBe(false);
    expect(hostCrash.params.safeParse({ keepCnt: '0' }).success).toBe(false);
  });
});
