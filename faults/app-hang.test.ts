import { describe, expect, it } from 'vitest';
import { appHang, FILL_BYTES, FILL_TIMEOUT_MS, keepaliveWaitMs, VETH_MSS } from './app-hang.js';
import { faultContext } from './context.js';
import { bufferSysctlsFrom, predictFill, predictKeepaliveAnswered, predictZeroWindowUserTimeout, zeroWindowSchedule } from '../harness/model/hang.js';
import { TCP_RTO_MAX_MS } from '../harness/model/tcp.js';
import { predictIdleWait } from '../harness/model/data.js';

const clock = { hz: 250 };
const sysctls = {
  client: { 'net.ipv4.tcp_rto_min_us': '200000', 'net.ipv4.tcp_rto_max_ms': '120000', 'net.core.wmem_max': '4194304' },
  server: { 'net.ipv4.tcp_rmem': '4096 131072 33554432', 'net.core.rmem_max': '4194304' },
};
const ctx = (params: Record<string, unknown> = {}) => faultContext(appHang, { params, sysctls });
const fill = predictFill(bufferSysctlsFrom(sysctls.client, sysctls.server), 65536, VETH_MSS);

describe('app-hang', () => {
  it('needs a server that can be frozen, and freezes it at the barrier after the handshake; no rule', () => {
    expect(appHang.needs(appHang.params.parse({}))).toBe('freeze');
    expect(appHang.plan(ctx())).toEqual({});
    expect(appHang.triggers!.freeze!(ctx())).toEqual({ kind: 'freeze-server' });
    const script = appHang.script(ctx(), appHang.expect(ctx()));
    const barrier = script.findIndex((s) => s.op === 'barrier');
    expect(script.slice(0, barrier).map((s) => s.label).filter(Boolean)).toEqual(['connect']);
    // After the freeze a second connect: it completes into the frozen server's accept queue.
    expect(script[barrier + 1]).toMatchObject({ op: 'connect', sock: 1, label: 'connect-queued' });
  });

  it('write: the fill stops inside the buffers the model derives; the server holds its part, the client the rest, window zero', () => {
    const e = appHang.expect(ctx());
    expect(e.steps.fill).toEqual({ ok: false, errno: null, timedOut: true, bytes: { min: fill.writtenBytes[0], max: fill.writtenBytes[1] } });
    expect(e.steps.stalled?.tcp).toEqual({
      bytesAcked: { min: fill.acceptedBytes[0] + 1, max: fill.acceptedBytes[1] + 1 },
      notsentBytes: { min: fill.queuedBytes[0], max: fill.queuedBytes[1] },
      sndWnd: 0,
    });
    // By the snapshot 3 s after the fill started: 3 zero-window probes (tcpi_backoff), none of them fatal.
    expect(e.steps.still).toEqual({ tcpState: 'ESTABLISHED', tcp: { backoff: { min: 3, max: 3 }, sndWnd: 0 } });
    expect(e.counters?.client).toMatchObject({ TcpExtTCPWinProbe: { min: 3 }, TcpExtTCPKeepAlive: 0, TcpExtTCPAbortOnTimeout: 0 });
    expect(e.counters?.server).toMatchObject({ TcpExtTCPToZeroWindowAdv: { min: 1 } });
    expect(e.listen).toEqual({ server: { rqMax: { min: 1 } } });
    const script = appHang.script(ctx(), e);
    expect(script.find((s) => s.label === 'fill')).toEqual({ op: 'write', label: 'fill', bytes: FILL_BYTES, timeoutMs: FILL_TIMEOUT_MS });
    expect(script[0]).toEqual({ op: 'setsockopt', opt: 'SNDBUF', value: 65536 });
  });

  it('user-timeout: the blocked write fails with ETIMEDOUT the user timeout after the first probe', () => {
    const c = ctx({ variant: 'user-timeout', userTimeoutMs: '1500' });
    const e = appHang.expect(c);
    const u = predictZeroWindowUserTimeout(1500, zeroWindowSchedule(200_000, TCP_RTO_MAX_MS, clock), clock);
    expect(e.steps.fill).toMatchObject({ errno: 'ETIMEDOUT', windowMs: u.windowMs });
    expect(e.counters?.client).toMatchObject({ TcpExtTCPAbortOnTimeout: 1, TcpEstabResets: 1, TcpExtTCPWinProbe: { min: u.probes[0], max: u.probes[1] } });
    const script = appHang.script(c, e);
    expect(script.slice(0, 2)).toEqual([
      { op: 'setsockopt', opt: 'SNDBUF', value: 65536 },
      { op: 'setsockopt', opt: 'USER_TIMEOUT', value: 1500 },
    ]);
    // The write waits past the window's end.
    expect((script.find((s) => s.label === 'fill') as { timeoutMs: number }).timeoutMs).toBeGreaterThan(u.windowMs[1]);
  });

  it('keepalive: more probes than KEEPCNT, all answered: the wait runs out, ESTABLISHED', () => {
    const p = appHang.params.parse({ variant: 'keepalive' });
    const e = appHang.expect(ctx({ variant: 'keepalive' }));
    const k = predictKeepaliveAnswered(1, 1, 3, keepaliveWaitMs(p), clock);
    expect(keepaliveWaitMs(p)).toBe(5500);
    expect(e.counters?.client).toMatchObject({ TcpExtTCPKeepAlive: { min: k.probes[0], max: k.probes[1] }, TcpExtTCPAbortOnTimeout: 0 });
    expect(k.probes[0]).toBeGreaterThan(p.keepCnt);
    expect(e.steps.idle).toEqual({ ok: false, timedOut: true, windowMs: predictIdleWait(5500, clock) });
    expect(e.steps.alive).toEqual({ tcpState: 'ESTABLISHED' });
  });

  it('heartbeat: the read with a timeout notices; TCP does not', () => {
    const e = appHang.expect(ctx({ variant: 'heartbeat', heartbeatMs: '700' }));
    expect(e.steps.pong).toEqual({ ok: false, timedOut: true, errno: null, windowMs: predictIdleWait(700, clock) });
    expect(e.steps['tcp-view']).toEqual({ tcpState: 'ESTABLISHED' });
  });

  it('drives any client: the kernel never ends its connection', () => {
    const c = ctx();
    expect(appHang.connection!(c, appHang.expect(c))).toMatchObject({ state: 'ESTABLISHED', from: 'strike' });
    expect(appHang.connection!(c, appHang.expect(c)).endsMs).toBeUndefined();
  });

  it('validates its parameters', () => {
    expect(appHang.params.safeParse({ variant: 'sleep' }).success).toBe(false);
    expect(appHang.params.safeParse({ sndbuf: '10' }).success).toBe(false);
  });
});
