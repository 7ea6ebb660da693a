import { describe, expect, it } from 'vitest';
import { timeWait } from './time-wait.js';
import { faultContext } from './context.js';
import { immediateWindowMs } from '../harness/model/tcp.js';

const ctx = (params: Record<string, unknown> = {}, client: Record<string, string> = {}) =>
  faultContext(timeWait, { params: params, sysctls: { client: { 'net.ipv4.ip_local_port_range': '40000\t40009', 'net.ipv4.tcp_tw_reuse': '2', ...client }, server: {} } });

describe('time-wait', () => {
  it('needs no rule: a narrowed port range (fast sysctl) is the fault', () => {
    expect(timeWait.plan(ctx())).toEqual({});
    expect(timeWait.fastSysctls(timeWait.params.parse({}))).toEqual({ client: { 'net.ipv4.ip_local_port_range': '40000 40009' } });
  });

  it('10 ports: 10 connections into TIME_WAIT, the 11th EADDRNOTAVAIL', () => {
    const e = timeWait.expect(ctx());
    expect(e.steps['connect-10']).toEqual({ ok: true, errno: null });
    expect(e.steps['connect-11']).toEqual({ ok: false, errno: 'EADDRNOTAVAIL', windowMs: immediateWindowMs({ hz: 250 }) });
    expect(e.steps['eof-11']).toBeUndefined();
    expect(e.spans?.[0]).toEqual({ side: 'client', state: 'TIME_WAIT', sockets: 10, then: 'held' });
    expect(e.counters?.client).toMatchObject({ TcpActiveOpens: 10, TcpExtTW: 10, TcpExtTWRecycled: 0 });
    const script = timeWait.script(ctx(), e);
    expect(script.filter((s) => s.op === 'connect').map((s) => s.sock)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('an odd-sized range leaves the last free port to chance', () => {
    const e = timeWait.expect(ctx({ connections: 12 }, { 'net.ipv4.ip_local_port_range': '40000 40010' }));
    expect(e.steps['connect-10']).toEqual({ ok: true, errno: null });
    expect(e.steps['connect-11']).toBeUndefined();
    expect(e.steps['connect-12']).toMatchObject({ ok: false, errno: 'EADDRNOTAVAIL' });
    expect(e.counters?.client?.TcpActiveOpens).toEqual({ min: 10, max: 11 });
  });

  it('tcp_tw_reuse=1 after a pause longer than tcp_tw_reuse_delay takes over a TIME_WAIT port', () => {
    const c = ctx({ reuseAfterMs: 1100 }, { 'net.ipv4.tcp_tw_reuse': '1' });
    const e = timeWait.expect(c);
    expect(e.steps['connect-11']).toEqual({ ok: true, errno: null });
    expect(e.counters?.client).toMatchObject({ TcpExtTWRecycled: 1, TcpActiveOpens: 11 });
    const script = timeWait.script(c, e);
    const pause = script.findIndex((s) => s.label === 'reuse-pause');
    expect(script[pause + 1]).toMatchObject({ op: 'connect', label: 'connect-11' });
    // Too short a pause, reuse=2 (loopback only) or no timestamps: no reuse.
    expect(timeWait.expect(ctx({ reuseAfterMs: 900 }, { 'net.ipv4.tcp_tw_reuse': '1' })).steps['connect-11']?.errno).toBe('EADDRNOTAVAIL');
    expect(timeWait.expect(ctx({ reuseAfterMs: 1100 })).steps['connect-11']?.errno).toBe('EADDRNOTAVAIL');
    expect(timeWait.expect(ctx({ reuseAfterMs: 1100 }, { 'net.ipv4.tcp_tw_reuse': '1', 'net.ipv4.tcp_timestamps': '0' })).steps['connect-11']?.errno).toBe('EADDRNOTAVAIL');
  });

  it('observing past 62 s expects every TIME_WAIT to end', () => {
    const e = timeWait.expect(ctx({ connections: 1, observeMs: 63_000 }));
    expect(e.spans?.[0]).toMatchObject({ sockets: 1, then: 'GONE' });
    expect(e.spans?.[0]?.lastsMs?.[0]).toBeLessThan(60_000);
  });

  it('validates its parameters', () => {
    expect(timeWait.params.safeParse({ connections: 0 }).success).toBe(false);
    expect(timeWait.params.safeParse({ connections: 257 }).success).toBe(false);
    expect(timeWait.params.safeParse({ reuseAfterMs: -1 }).success).toBe(false);
  });

  it('tcp_max_tw_buckets=0: no TIME_WAIT at all (TCPTimeWaitOverflow per close), every port freed at once, so no EADDRNOTAVAIL', () => {
    const e = timeWait.expect(ctx({ connections: 1 }, { 'net.ipv4.tcp_max_tw_buckets': '0' }));
    expect(e.steps['connect-1']).toEqual({ ok: true, errno: null });
    expect(e.states).toEqual({});
    expect(e.statesAbsent?.client).toEqual(['TIME_WAIT']);
    expect(e.spans).toEqual([]);
    expect(e.counters?.client).toMatchObject({ TcpActiveOpens: 1, TcpExtTW: 0, TcpExtTCPTimeWaitOverflow: 1 });
    // Beyond the port range too: each overflowed close frees its port.
    const many = timeWait.expect(ctx({ connections: 15 }, { 'net.ipv4.tcp_max_tw_buckets': '0' }));
    expect(Object.entries(many.steps).filter(([k]) => k.startsWith('connect-')).every(([, v]) => v.ok)).toBe(true);
    expect(many.counters?.client).toMatchObject({ TcpExtTCPTimeWaitOverflow: 15 });
  });

  it('tcp_max_tw_buckets=3 under 10 ports: 3 TIME_WAITs held, the other closes overflow', () => {
    const e = timeWait.expect(ctx({ connections: 12 }, { 'net.ipv4.tcp_max_tw_buckets': '3' }));
    expect(e.steps['connect-12']).toEqual({ ok: true, errno: null });
    expect(e.spans?.[0]).toMatchObject({ state: 'TIME_WAIT', sockets: 3 });
    expect(e.counters?.client).toMatchObject({ TcpExtTW: 3, TcpExtTCPTimeWaitOverflow: 9 });
  });
});
