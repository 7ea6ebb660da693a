import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { reject } from './reject.js';
import { faultContext } from './context.js';
import { initialRtoJiffies } from '../harness/model/data.js';
import { immediateWindowMs, modelTimeoutMs, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { chainWindowMs, jiffiesToMs, slipJiffies } from '../harness/model/timer-wheel.js';

/**
 * One segment to a silent peer at tcp_retries2=3, by hand from the timer helpers: RTO r (rto_min
 * plus µs, rounded up a jiffy: 51 jiffies); the TLP and RTO retransmission #1 are level-0 timers
 * that fire one jiffy after their expiry (r + 1 jiffies each, kernel/time/timer.c calc_index); #1
 * starts the tcp_retries2 clock; with a doubling RTO, #2..#4 2r, 4r, 8r apart (14r, below
 * tcp_model_timeout(3, TCP_RTO_MIN)), the firing 16r later is past it — rounded up by the wheel
 * (chainWindowMs); with RFC 6069 reverts the retransmissions stay r apart (re-armed for r - 1
 * jiffies, given back by the level-0 rounding).
 */
const clock = { hz: 250 };
const rJ = initialRtoJiffies(TCP_RTO_MIN_MS, clock);
const r = jiffiesToMs(rJ, clock.hz);
const jiffy = jiffiesToMs(1, clock.hz);
const retries2Limit = modelTimeoutMs(3, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS);
/** When RTO retransmission #1 goes out, from the write's jiffy. */
const firstRto = jiffiesToMs(2 * (rJ + 1), clock.hz);
const RTO_RETRANSMITS = 4;
/** With RFC 6069 reverts the RTO stays r: RTO retransmissions every r from #1 until the limit. */
const FLAT_RTO_RETRANSMITS = Math.ceil(retries2Limit / r);

const ctx = (params: Record<string, unknown>, server: Record<string, string> = { 'net.ipv4.icmp_ratelimit': '0' }, blocking = false) =>
  faultContext(reject, { params: params, sysctls: { client: { 'net.ipv4.tcp_retries2': '3' }, server }, blocking });

describe('reject', () => {
  it('at connect: the REJECT rule is in place from the start, with the chosen --reject-with', () => {
    const c = ctx({ with: 'icmp-host-unreachable' });
    const steps = planRules('abc123', reject.plan(c).rules ?? []);
    expect(steps.map((s) => s.apply)).toContainEqual([
      'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.2', '--dport', '9000',
      '-m', 'comment', '--comment', 'harness:abc123:reject', '-j', 'REJECT', '--reject-with', 'icmp-host-unreachable',
    ]);
    expect(steps.every((s) => s.side === 'server')).toBe(true);
  });
  it.each([
    ['icmp-net-unreachable', 'ENETUNREACH'],
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
    ['icmp-admin-prohibited', 'EHOSTUNREACH'],
    ['icmp-proto-unreachable', 'ENOPROTOOPT'],
  ])('at connect, %s, non-blocking: %s at once while the socket is still SYN_SENT (a soft error), one SYN', (w, errno) => {
    const e = reject.expect(ctx({ with: w }));
    expect(e.steps.connect).toEqual({ ok: false, errno, windowMs: immediateWindowMs(clock), totalRetrans: 0, tcpState: 'SYN_SENT' });
    expect(e.counters!.client).toMatchObject({ TcpExtLockDroppedIcmps: 1, TcpAttemptFails: 0, IcmpInDestUnreachs: 1, TcpExtTCPSynRetrans: 0 });
    expect(e.rulesHit).toEqual({ reject: 1 });
  });
  it.each([
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
  ])('at connect, %s, blocking: %s when the ICMP answering the first SYN retransmission lands (TCP_TIMEOUT_INIT through the wheel)', (w, errno) => {
    const e = reject.expect(ctx({ with: w }, { 'net.ipv4.icmp_ratelimit': '1000' }, true));
    const [lo, hi] = chainWindowMs([TCP_TIMEOUT_INIT_MS], clock);
    expect(e.steps.connect).toEqual({ ok: false, errno, windowMs: [lo, hi + wakeupSlackMs(clock)], totalRetrans: 0, tcpState: 'CLOSE' });
    // The first ICMP is dropped as soft (lock held), the second is a hard error (tcp_done).
    expect(e.counters!.client).toMatchObject({ TcpExtLockDroppedIcmps: 1, TcpAttemptFails: 1, IcmpInDestUnreachs: 2, TcpExtTCPSynRetrans: 1 });
    expect(e.rulesHit).toEqual({ reject: 2 });
    // Decided, not "at once or a second": the two windows do not touch.
    expect(lo).toBeGreaterThan(immediateWindowMs(clock)[1]);
  });
  it('at connect, tcp-reset: ECONNREFUSED at once, blocking or not', () => {
    for (const blocking of [false, true]) {
      const e = reject.expect(ctx({ with: 'tcp-reset' }, undefined, blocking));
      expect(e.steps.connect).toEqual({ ok: false, errno: 'ECONNREFUSED', windowMs: immediateWindowMs(clock), totalRetrans: 0, tcpState: 'CLOSE' });
      expect(e.rulesHit).toEqual({ reject: 1 });
    }
  });
  it("any client's connection: from at once (non-blocking) to the first SYN retransmission (blocking)", () => {
    const c = ctx({ with: 'icmp-host-unreachable' });
    const p = reject.connection!(c, reject.expect(c));
    expect(p.endsMs![1]).toBe(chainWindowMs([TCP_TIMEOUT_INIT_MS], clock)[1] + wakeupSlackMs(clock));
    expect(p.because).toMatch(/non-blocking: .*soft error.*; blocking: /);
  });
  it('established: a connection opened after the strike meets the same rule, refused at connect', () => {
    for (const [with_, errno] of [['tcp-reset', 'ECONNREFUSED'], ['icmp-host-unreachable', 'EHOSTUNREACH']] as const) {
      const c = ctx({ with: with_, when: 'established' });
      const p = reject.connection!(c, reject.expect(c));
      expect(p).toMatchObject({ state: 'ESTABLISHED', from: 'strike' });
      // The prediction a when=connect run makes, without its `from`.
      const atConnect = ctx({ with: with_ });
      const { from: _from, ...refused } = reject.connection!(atConnect, reject.expect(atConnect));
      expect(p.afterStrike).toEqual(refused);
      expect(p.afterStrike).toMatchObject({ state: 'SYN_SENT', errno, fleeting: true });
    }
  });
  it('established: no rule at first; the barrier adds it, then a write and a read', () => {
    const c = ctx({ with: 'icmp-port-unreachable', when: 'established' });
    expect(reject.plan(c)).toEqual({});
    const t = reject.triggers!.reject!(c);
    expect(t).toMatchObject({ kind: 'rules', rules: [{ name: 'reject', target: { kind: 'REJECT', with: 'icmp-port-unreachable' } }] });
    expect(reject.script(c, reject.expect(c)).map((s) => s.op)).toEqual(['connect', 'sleep', 'barrier', 'write', 'read']);
  });
  it('established tcp-reset: ECONNRESET at once', () => {
    const e = reject.expect(ctx({ with: 'tcp-reset', when: 'established' }));
    expect(e.steps.dies).toMatchObject({ errno: 'ECONNRESET', windowMs: immediateWindowMs(clock) });
  });
  it('established port-unreachable: the soft error surfaces after tcp_retries2, doubling RTO', () => {
    const e = reject.expect(ctx({ with: 'icmp-port-unreachable', when: 'established' }));
    expect(e.steps.dies).toMatchObject({ errno: 'ECONNREFUSED', totalRetrans: 1 + RTO_RETRANSMITS });
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + chainWindowMs([2 * r, 4 * r, 8 * r, 16 * r], clock)[0]);
    expect(e.rulesHit).toEqual({ reject: 1 + 1 + RTO_RETRANSMITS });
  });
  it('established host-unreachable: RFC 6069 keeps the RTO flat — 16 retransmissions, dead at ~3.5 s', () => {
    const e = reject.expect(ctx({ with: 'icmp-host-unreachable', when: 'established' }));
    expect(FLAT_RTO_RETRANSMITS).toBe(15);
    expect(e.steps.dies).toMatchObject({ errno: 'EHOSTUNREACH', totalRetrans: 1 + FLAT_RTO_RETRANSMITS });
    // The expiring firing's tick, less the write's place in its jiffy; at the latest, each of the
    // 1 + 15 level-0 re-arms made in softirq context a slip late (slipJiffies), then the wake-up.
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + FLAT_RTO_RETRANSMITS * r - jiffy);
    expect(e.steps.dies!.windowMs![1]).toBe(firstRto + FLAT_RTO_RETRANSMITS * r + (1 + FLAT_RTO_RETRANSMITS) * slipJiffies(clock) * jiffy + wakeupSlackMs(clock));
    expect(e.rulesHit).toEqual({ reject: 1 + 1 + FLAT_RTO_RETRANSMITS });
  });
  it('with the target ICMP rate limit on (the kernel default 1000 ms), the bucket decides one schedule, not a window spanning two', () => {
    const e = reject.expect(ctx({ with: 'icmp-host-unreachable', when: 'established' }, { 'net.ipv4.icmp_ratelimit': '1000' }));
    const [lo, hi] = e.steps.dies!.windowMs!;
    // Six ICMPs at once (a new namespace's full bucket) then one per 1000 ms: the reverts stop
    // after RTO retransmission #5 and the RTO doubles: fewer retransmissions than the flat
    // schedule, a death after it, but before the plain doubling one.
    expect(lo).toBeGreaterThan(firstRto + FLAT_RTO_RETRANSMITS * r);
    expect(hi).toBeLessThan(firstRto + chainWindowMs([2 * r, 4 * r, 8 * r, 16 * r], clock)[0]);
    expect(hi - lo).toBeLessThan(0.125 * lo);
    expect(e.steps.dies!.totalRetrans).toBeLessThan(1 + FLAT_RTO_RETRANSMITS);
    expect(e.counters!.client!.IcmpInDestUnreachs).toBeLessThan((e.rulesHit!.reject as number));
    expect(e.because!.join(' ')).toMatch(/icmp_ratelimit 1000 ms/);
  });
  it('validates --set with and when', () => {
    expect(reject.params.safeParse({ with: 'icmp-echo' }).success).toBe(false);
    expect(reject.params.safeParse({ when: 'later' }).success).toBe(false);
  });
});
