import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { reject } from './reject.js';
import { faultContext } from './context.js';
import { initialRtoJiffies } from '../harness/model/data.js';
import { immediateWindowMs, modelTimeoutMs, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS } from '../harness/model/tcp.js';
import { jiffiesToMs } from '../harness/model/timer-wheel.js';

/**
 * One segment to a silent peer at tcp_retries2=3, by hand from the timer helpers: RTO r (rto_min
 * plus µs, rounded up a jiffy); a TLP r after the write — armed from the syscall, so up to one
 * jiffy early — then RTO retransmission #1 r later, which starts the tcp_retries2 clock; #2..#4
 * 2r, 4r, 8r apart (14r after #1, below tcp_model_timeout(3, TCP_RTO_MIN)); the firing 16r later
 * (30r after #1) is past it: ETIMEDOUT.
 */
const clock = { hz: 250 };
const jiffy = jiffiesToMs(1, clock.hz);
const r = jiffiesToMs(initialRtoJiffies(TCP_RTO_MIN_MS, clock), clock.hz);
const retries2Limit = modelTimeoutMs(3, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS);
/** When RTO retransmission #1 goes out, ms after the write. */
const firstRto = r - jiffy + r;
const RTO_RETRANSMITS = 4;
/** With RFC 6069 reverts the RTO stays r: RTO retransmissions every r from #1 until the limit. */
const FLAT_RTO_RETRANSMITS = Math.ceil(retries2Limit / r);

const ctx = (params: Record<string, unknown>, server: Record<string, string> = { 'net.ipv4.icmp_ratelimit': '0' }) =>
  faultContext(reject, { params: params, sysctls: { client: { 'net.ipv4.tcp_retries2': '3' }, server } });

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
    ['tcp-reset', 'ECONNREFUSED'],
    ['icmp-net-unreachable', 'ENETUNREACH'],
    ['icmp-host-unreachable', 'EHOSTUNREACH'],
    ['icmp-port-unreachable', 'ECONNREFUSED'],
    ['icmp-admin-prohibited', 'EHOSTUNREACH'],
    ['icmp-proto-unreachable', 'ENOPROTOOPT'],
  ])('at connect, %s: connect fails at once with %s, one SYN rejected', (w, errno) => {
    const e = reject.expect(ctx({ with: w }));
    expect(e.steps.connect).toMatchObject({ ok: false, errno, windowMs: immediateWindowMs(clock), totalRetrans: 0 });
    expect(e.rulesHit).toEqual({ reject: 1 });
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
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + 30 * r);
    expect(e.rulesHit).toEqual({ reject: 1 + 1 + RTO_RETRANSMITS });
  });
  it('established host-unreachable: RFC 6069 keeps the RTO flat — 16 retransmissions, dead at ~3.5 s', () => {
    const e = reject.expect(ctx({ with: 'icmp-host-unreachable', when: 'established' }));
    expect(FLAT_RTO_RETRANSMITS).toBe(15);
    expect(e.steps.dies).toMatchObject({ errno: 'EHOSTUNREACH', totalRetrans: 1 + FLAT_RTO_RETRANSMITS });
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + FLAT_RTO_RETRANSMITS * r);
    expect(e.steps.dies!.windowMs![1]).toBeLessThan(firstRto + 30 * r);
    expect(e.rulesHit).toEqual({ reject: 1 + 1 + FLAT_RTO_RETRANSMITS });
  });
  it('with the target ICMP rate limit on, the window spans the flat and the doubling schedules', () => {
    const e = reject.expect(ctx({ with: 'icmp-host-unreachable', when: 'established' }, { 'net.ipv4.icmp_ratelimit': '1000' }));
    const [lo, hi] = e.steps.dies!.windowMs!;
    // From the flat schedule's earliest death to past the doubling one's.
    expect(lo).toBe(firstRto + FLAT_RTO_RETRANSMITS * r);
    expect(hi).toBeGreaterThan(firstRto + 30 * r);
    expect(e.steps.dies!.totalRetrans).toBeUndefined();
  });
  it('validates --set with and when', () => {
    expect(reject.params.safeParse({ with: 'icmp-echo' }).success).toBe(false);
    expect(reject.params.safeParse({ when: 'later' }).success).toBe(false);
  });
});
