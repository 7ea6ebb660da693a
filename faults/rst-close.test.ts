import { describe, expect, it } from 'vitest';
import { chainWindowMs } from '../harness/model/timer-wheel.js';
import { planRules } from './iptables.js';
import { rstClose } from './rst-close.js';
import { faultContext } from './context.js';
import { immediateWindowMs } from '../harness/model/tcp.js';

const ctx = (params: Record<string, unknown>, client: Record<string, string> = {}) =>
  faultContext(rstClose, { params: params, sysctls: { client: { 'net.ipv4.tcp_retries2': '15', 'net.ipv4.tcp_orphan_retries': '1', ...client }, server: {} } });

const labels = (c: ReturnType<typeof ctx>) => rstClose.script(c, rstClose.expect(c)).flatMap((s) => (s.label ? [s.label] : []));

describe('rst-close', () => {
  it('counts RSTs and FINs on the closer\'s OUTPUT (client: --dport, server: --sport)', () => {
    const argv = planRules('abc123', rstClose.plan(ctx({})).rules!).map((s) => s.apply);
    expect(argv).toContainEqual(['iptables', '-w', '5', '-A', 'harness-abc123-out', '-p', 'tcp', '--dport', '9000', '--tcp-flags', 'RST', 'RST', '-m', 'comment', '--comment', 'harness:abc123:rst-sent', '-j', 'ACCEPT']);
    expect(argv).toContainEqual(['iptables', '-w', '5', '-A', 'harness-abc123-out', '-p', 'tcp', '--dport', '9000', '--tcp-flags', 'FIN', 'FIN', '-m', 'comment', '--comment', 'harness:abc123:fin-sent', '-j', 'ACCEPT']);
    const server = rstClose.plan(ctx({ side: 'server' })).rules!;
    expect(server.every((r) => r.side === 'server' && r.hook === 'OUTPUT' && r.tcp?.sport === 9000)).toBe(true);
  });
  it('picks the server: echo for client-side closes, close-unread / linger0 for server-side ones', () => {
    expect(rstClose.server(rstClose.params.parse({})).mode).toBe('echo');
    expect(rstClose.server(rstClose.params.parse({ side: 'server' })).mode).toBe('close-unread');
    expect(rstClose.server(rstClose.params.parse({ side: 'server', how: 'linger0' })).mode).toBe('linger0');
  });
  it('default (client, unread): the echo comes back unread, close() sends one RST and no FIN, no TIME_WAIT', () => {
    const c = ctx({});
    const e = rstClose.expect(c);
    expect(labels(c)).toEqual(['connect', 'write', 'before-close', 'close']);
    expect(rstClose.script(c, e).some((s) => s.op === 'read')).toBe(false);
    expect(e.steps.close).toEqual({ ok: true, errno: null, windowMs: immediateWindowMs(c.clock) });
    expect(e.counters!.client).toMatchObject({ TcpExtTCPAbortOnClose: 1, TcpExtTCPAbortOnData: 0, TcpOutRsts: 1 });
    expect(e.counters!.server).toMatchObject({ TcpEstabResets: 1, TcpOutRsts: 0 });
    expect(e.rulesHit).toEqual({ 'rst-sent': 1, 'fin-sent': 0 });
    expect(e.statesAbsent!.client).toEqual(expect.arrayContaining(['TIME_WAIT', 'FIN_WAIT1', 'FIN_WAIT2']));
    expect(e.spans).toContainEqual({ side: 'client', state: 'ESTABLISHED', sockets: 1, then: 'GONE' });
    expect(rstClose.fastSysctls(c.params)).toEqual({});
  });
  it('client linger0: SO_LINGER {1,0} before connect, the echo read back, RST counted as AbortOnData', () => {
    const c = ctx({ how: 'linger0' });
    const script = rstClose.script(c, rstClose.expect(c));
    expect(script[0]).toEqual({ op: 'setsockopt', opt: 'LINGER', value: 0, onoff: 1 });
    expect(labels(c)).toEqual(['connect', 'write', 'read-echo', 'before-close', 'close']);
    expect(rstClose.expect(c).counters!.client).toMatchObject({ TcpExtTCPAbortOnClose: 0, TcpExtTCPAbortOnData: 1 });
  });
  it('server side: the client reads ECONNRESET once, then EOF, then EPIPE on write; the server counts the abort', () => {
    for (const how of ['unread', 'linger0'] as const) {
      const c = ctx({ side: 'server', how });
      const e = rstClose.expect(c);
      expect(labels(c)).toEqual(['connect', 'write', 'read-reset', 'read-after', 'write-epipe']);
      expect(e.steps['read-reset']).toMatchObject({ errno: 'ECONNRESET', tcpState: 'CLOSE' });
      expect(e.steps['read-after']).toMatchObject({ ok: true, eof: true });
      expect(e.steps['write-epipe']!.errno).toBe('EPIPE');
      expect(e.counters!.server).toMatchObject({ TcpOutRsts: 1, [how === 'unread' ? 'TcpExtTCPAbortOnClose' : 'TcpExtTCPAbortOnData']: 1 });
      expect(e.counters!.client).toMatchObject({ TcpEstabResets: 1, TcpOutRsts: 0 });
      expect(e.statesAbsent!.server).toContain('TIME_WAIT');
      expect(e.statesAbsent!.client).toContain('CLOSE_WAIT');
    }
  });
  it('linger: SO_LINGER {1,N}, a drop rule at a barrier before the write, close() for N s, then an orphan', () => {
    const c = ctx({ how: 'linger', lingerS: '2' });
    const e = rstClose.expect(c);
    const script = rstClose.script(c, e);
    expect(script[0]).toEqual({ op: 'setsockopt', opt: 'LINGER', value: 2, onoff: 1 });
    const iBarrier = script.findIndex((s) => s.op === 'barrier');
    expect(iBarrier).toBeLessThan(script.findIndex((s) => s.label === 'write'));
    expect(script.at(-2)).toEqual({ op: 'close', label: 'close' });
    expect(rstClose.triggers!.dead!(c)).toEqual({
      kind: 'rules',
      rules: [{ name: 'drop-in', side: 'server', hook: 'INPUT', proto: 'tcp', src: '198.18.0.2', tcp: { dport: 9000 }, target: { kind: 'DROP' } }],
    });
    expect(e.steps.close!.errno).toBeNull();
    // SO_LINGER 2 s: 2·HZ jiffies on a wheel timer armed from the syscall (never early).
    expect(e.steps.close!.windowMs![0]).toBe(chainWindowMs([2 * 1000], c.clock)[0]);
    expect(e.rulesHit).toMatchObject({ 'rst-sent': 0 });
    expect(e.counters!.client).toMatchObject({ TcpOutRsts: 0, TcpExtTCPAbortOnTimeout: 1 });
    expect(e.stateLeft![0]).toMatchObject({ side: 'client', state: 'FIN_WAIT1', to: 'GONE', fromStep: 'write' });
    // The sleep after close() outlasts the orphan's latest death.
    const sleep = script.at(-1)!;
    expect(sleep.op === 'sleep' && e.steps.close!.windowMs![0] + sleep.ms).toBeGreaterThan(e.stateLeft![0]!.windowMs[1]);
    expect(rstClose.fastSysctls(c.params)).toEqual({ client: { 'net.ipv4.tcp_orphan_retries': '1' } });
  });
  it('the prediction follows tcp_retries2: small enough, the connection dies under the linger and close() returns early', () => {
    const e = rstClose.expect(ctx({ how: 'linger', lingerS: '3' }, { 'net.ipv4.tcp_retries2': '1' }));
    expect(e.steps.close!.windowMs![1]).toBeLessThan(3000);
  });
  it('rejects linger on the server side, unknown values and out-of-range sizes', () => {
    const r = rstClose.params.safeParse({ side: 'server', how: 'linger' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['how']);
    expect(rstClose.params.safeParse({ how: 'abort' }).success).toBe(false);
    expect(rstClose.params.safeParse({ side: 'both' }).success).toBe(false);
    expect(rstClose.params.safeParse({ bytes: '0' }).success).toBe(false);
    expect(rstClose.params.safeParse({ how: 'linger', lingerS: '0' }).success).toBe(false);
  });
});
