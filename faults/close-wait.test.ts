import { describe, expect, it } from 'vitest';
import { closeWait, closesQuestion } from './close-wait.js';
import { faultContext } from './context.js';
import { TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { rtoAfterHandshakeMs } from '../harness/model/teardown.js';
import { chainWindowMs, jiffiesToMs, msToJiffies } from '../harness/model/timer-wheel.js';
import { watchedSpanMs, watchedWindowMs } from '../harness/model/watch.js';

/**
 * The orphan's FIN_WAIT2 by hand: one timewait timer of tcp_fin_time() = max(tcp_fin_timeout,
 * 3.5 × RTO) (include/net/tcp.h: (rto << 2) - (rto >> 1) jiffies), RTO r after a veth handshake
 * and the server's delayed ACK of the FIN: that ~40 ms sample lifts srtt to ~5 ms over rttvar's
 * 200 ms, one jiffy more than the handshake's RTO.
 */
const clock = { hz: 250 };
const rtoJ = msToJiffies(rtoAfterHandshakeMs(TCP_RTO_MIN_MS * 1000, TCP_RTO_MAX_MS, clock), clock.hz) + 1;
const finTimeMs = (finTimeoutS: number) => Math.max(finTimeoutS * 1000, jiffiesToMs((rtoJ << 2) - (rtoJ >> 1), clock.hz));

const ctx = (params: Record<string, unknown> = {}, finTimeout = '2') =>
  faultContext(closeWait, { params: params, sysctls: { client: { 'net.ipv4.tcp_fin_timeout': finTimeout }, server: {} } });

describe('close-wait', () => {
  it('needs no rule: the built-in no-close server is the fault', () => {
    expect(closeWait.plan(ctx())).toEqual({});
    expect(closeWait.server(closeWait.params.parse({}))).toEqual({ mode: 'no-close' });
  });

  it('close(): client FIN_WAIT2 for tcp_fin_timeout then gone, server CLOSE_WAIT held', () => {
    const e = closeWait.expect(ctx());
    expect(e.spans?.[0]).toMatchObject({ side: 'client', state: 'FIN_WAIT2', then: 'GONE' });
    expect(e.spans![0]!.lastsMs).toEqual(watchedSpanMs(chainWindowMs([finTimeMs(2)], clock), clock));
    expect(e.spans?.[1]).toEqual({ side: 'server', state: 'CLOSE_WAIT', sockets: 1, then: 'held' });
    expect(e.counters?.client).toMatchObject({ TcpExtTWKilled: 1 });
    const script = closeWait.script(ctx(), e);
    expect(script.map((s) => s.op)).toEqual(['connect', 'write', 'close', 'sleep']);
  });

  it('tcp_fin_timeout below 3.5 x RTO is raised to it', () => {
    const e = closeWait.expect(ctx({}, '0'));
    expect(finTimeMs(0)).toBeGreaterThan(0);
    expect(e.spans![0]!.lastsMs).toEqual(watchedSpanMs(chainWindowMs([finTimeMs(0)], clock), clock));
    expect(e.because?.[0]).toContain('3.5 x RTO');
  });

  it('shutdown(SHUT_WR): FIN_WAIT2 held, checked again at the end with TCP_INFO', () => {
    const c = ctx({ how: 'shutdown' });
    const e = closeWait.expect(c);
    expect(e.spans?.[0]).toEqual({ side: 'client', state: 'FIN_WAIT2', sockets: 1, then: 'held' });
    expect(e.steps.after).toEqual({ ok: true, tcpState: 'FIN_WAIT2' });
    const script = closeWait.script(c, e);
    expect(script.map((s) => s.op)).toEqual(['connect', 'write', 'shutdown', 'sleep', 'tcpinfo']);
    // Longer than an orphan would have lasted: the socket of a shutdown() has no timer.
    expect((script[3] as { ms: number }).ms).toBeGreaterThan(watchedWindowMs(chainWindowMs([finTimeMs(2)], clock), clock)[1]);
  });

  it('the built-in no-close server: the leak reproduced, and its own syscalls say so (EOF read, no close)', () => {
    const e = closeWait.expect(ctx());
    expect(e.asks).toEqual([closesQuestion(true)]);
    expect(e.asks?.[0]).toMatchObject({ expect: 'holds', side: 'server', holding: ['ESTABLISHED', 'CLOSE_WAIT'], fromStep: 'end' });
    expect(e.serverCalls).toEqual([{ op: 'read', eof: true }, { op: 'close', absent: true }]);
    expect(e.steps.write).toEqual({ ok: true, bytes: 1000 });
  });

  it('a server of its own is asked whether it closes; it writes nothing it would answer (nginx: a 400, and its own close first)', () => {
    const c = faultContext(closeWait, { sysctls: { client: { 'net.ipv4.tcp_fin_timeout': '2' }, server: {} }, server: {} });
    const e = closeWait.expect(c);
    expect(e.asks).toEqual([closesQuestion(false)]);
    expect(e.spans).toBeUndefined();
    expect(e.serverCalls).toBeUndefined();
    expect(e.steps).toEqual({ connect: { ok: true, errno: null }, write: { ok: true, bytes: 0 }, end: { ok: true } });
    const script = closeWait.script(c, e);
    // Held ESTABLISHED long enough for the watcher to see the server's socket before the close.
    expect(script.map((s) => s.op)).toEqual(['connect', 'write', 'sleep', 'close', 'sleep']);
    expect(closeWait.expect(faultContext(closeWait, { params: { bytes: '10' }, server: {} })).steps.write).toEqual({ ok: true, bytes: 10 });
  });

  it('validates its parameters', () => {
    expect(closeWait.params.safeParse({ how: 'abort' }).success).toBe(false);
    expect(closeWait.params.safeParse({ bytes: '-1' }).success).toBe(false);
    expect(closeWait.params.parse({ bytes: '10' }).bytes).toBe(10);
    expect(closeWait.params.parse({}).bytes).toBeUndefined();
  });
});
