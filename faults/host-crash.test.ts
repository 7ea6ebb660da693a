import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { hostCrash } from './host-crash.js';
import { faultContext } from './context.js';
import { initialRtoJiffies } from '../harness/model/data.js';
import { modelTimeoutMs, TCP_RTO_MAX_MS, TCP_RTO_MIN_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { chainWindowMs, jiffiesToMs, timerSlackMs } from '../harness/model/timer-wheel.js';

/**
 * One segment to a silent peer at tcp_retries2=3, by hand from the timer helpers: RTO r (rto_min
 * plus µs, rounded up a jiffy: 51 jiffies); a TLP armed by the write, a level-0 timer that fires
 * one jiffy after its expiry (kernel/time/timer.c calc_index) — r + 1 jiffies after the write's
 * jiffy — then RTO retransmission #1 another r + 1 later, which starts the tcp_retries2 clock;
 * #2..#4 2r, 4r, 8r apart (14r after #1, below tcp_model_timeout(3, TCP_RTO_MIN)); the firing 16r
 * later (30r after #1) is past it: ETIMEDOUT. The wheel rounds those up (chainWindowMs).
 */
const clock = { hz: 250 };
const rJ = initialRtoJiffies(TCP_RTO_MIN_MS, clock);
const r = jiffiesToMs(rJ, clock.hz);
const retries2Limit = modelTimeoutMs(3, TCP_RTO_MIN_MS, TCP_RTO_MAX_MS);
/** When RTO retransmission #1 goes out: 2 (r + 1) jiffies after the write's jiffy. */
const firstRto = jiffiesToMs(2 * (rJ + 1), clock.hz);
const RTO_RETRANSMITS = 4;

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
    expect(14 * r).toBeLessThan(retries2Limit);
    expect(30 * r).toBeGreaterThanOrEqual(retries2Limit);
    // The TLP and the RTO retransmissions; every RTO firing, the one that gives up included.
    expect(e.steps.dies).toMatchObject({ errno: 'ETIMEDOUT', tcpState: 'CLOSE', totalRetrans: 1 + RTO_RETRANSMITS });
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + chainWindowMs([2 * r, 4 * r, 8 * r, 16 * r], clock)[0]);
    expect(e.counters!.client).toMatchObject({ TcpRetransSegs: 1 + RTO_RETRANSMITS, TcpExtTCPTimeouts: RTO_RETRANSMITS + 1, TcpExtTCPLossProbes: 1, TcpExtTCPAbortOnTimeout: 1 });
    // The segment, the TLP, the retransmissions.
    expect(e.rulesHit).toEqual({ 'drop-in': 1 + 1 + RTO_RETRANSMITS });
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
    // TCP_USER_TIMEOUT counts from RTO retransmission #1 too; the last timer is clamped to land on it.
    expect(e.steps.dies!.windowMs![0]).toBe(firstRto + 1500);
    expect(e.steps.dies!.windowMs![1]).toBeLessThanOrEqual(firstRto + 1500 + timerSlackMs(1500, clock) + wakeupSlackMs(clock));
  });
  it('keepalive: options set after the crash, SO_KEEPALIVE last (arms the timer), ETIMEDOUT after idle + cnt × intvl', () => {
    const c = ctx({ variant: 'keepalive', keepIdleS: '2', keepIntvlS: '1', keepCnt: '2' });
    const e = hostCrash.expect(c);
    const opts = hostCrash.script(c, e).flatMap((s) => (s.op === 'setsockopt' ? [s.opt] : []));
    expect(opts).toEqual(['KEEPIDLE', 'KEEPINTVL', 'KEEPCNT', 'KEEPALIVE']);
    // idle + cnt × intvl: the first timer armed from the syscall, the others from its callback.
    expect(e.steps.dies!.windowMs![0]).toBe(chainWindowMs([2000, 1000, 1000], clock)[0]);
    expect(e.counters!.client!.TcpExtTCPKeepAlive).toBe(2);
    expect(e.rulesHit).toEqual({ 'drop-in': 3 });
  });
  it('idle: the wait must time out with no error and the socket stay ESTABLISHED', () => {
    const e = hostCrash.expect(ctx({ variant: 'idle', idleWaitMs: '2000' }));
    // 2 ms: the epoll timeout's hrtimer slack, 0.1 % of 2000 ms (fs/select.c select_estimate_accuracy).
    expect(e.steps['idle-wait']).toEqual({ ok: false, timedOut: true, errno: null, windowMs: [2000, 2000 + 2 + wakeupSlackMs(clock)] });
    expect(e.steps['still-established']).toMatchObject({ tcpState: 'ESTABLISHED', totalRetrans: 0 });
    expect(e.statesAbsent!.client).toContain('GONE');
  });
  it('validates its parameters', () => {
    expect(hostCrash.params.safeParse({ variant: 'meteor' }).success).toBe(false);
    expect(hostCrash.params.safeParse({ bytes: '5000' }).success).toBe(false);
    expect(hostCrash.params.safeParse({ keepCnt: '0' }).success).toBe(false);
  });
});
