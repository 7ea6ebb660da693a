import { describe, expect, it } from 'vitest';
import { immediateWindowMs, modelTimeoutMs, predictSynTimeout, synSysctlsFrom, wakeupSlackMs } from './tcp.js';
import { chainFireJiffies, chainWindowMs, fireJiffy, slipJiffies, timerSlackMs, wheelLevel } from './timer-wheel.js';

const hz250 = { hz: 250 };
const linux618 = (r: number) => ({ synRetries: r, synLinearTimeouts: 4, rtoMaxMs: 120_000 });

describe('timer wheel', () => {
  it('puts delays in the levels of kernel/time/timer.c', () => {
    expect(wheelLevel(62)).toBe(0);
    expect(wheelLevel(63)).toBe(1);
    expect(wheelLevel(503)).toBe(1);
    expect(wheelLevel(504)).toBe(2);
    expect(wheelLevel(4032)).toBe(3);
  });
  it('gives the lateness of a 1 s, 4 s and 32 s timer at HZ=250', () => {
    expect(timerSlackMs(1000, hz250)).toBe(32);
    expect(timerSlackMs(4000, hz250)).toBe(256);
    expect(timerSlackMs(32000, hz250)).toBe(2048);
  });
  it('is finer at HZ=1000 for short timers', () => {
    expect(timerSlackMs(50, { hz: 1000 })).toBe(1);
  });
});

describe('wake-up allowance', () => {
  it('is a jiffy plus the calibrated lateness (another jiffy uncalibrated), and bounds a step no timer delays', () => {
    expect(wakeupSlackMs(hz250)).toBe(8);
    expect(wakeupSlackMs({ hz: 1000 })).toBe(2);
    expect(wakeupSlackMs({ hz: 250, lateMs: 0.3 })).toBeCloseTo(4.3);
    // Two veth round trips (the first packet's ARP exchange, then the packet and its answer).
    expect(immediateWindowMs({ hz: 250, lateMs: 0.3 })[1]).toBeCloseTo(0.1 + 4.3);
  });
});

describe('timer wheel arithmetic (kernel/time/timer.c calc_index: ((expires >> 3L) + 1) << 3L)', () => {
  it('fires a level-0 timer one jiffy after its expiry, and rounds a level-1 one up to a bucket', () => {
    expect(fireJiffy(1000, 51, 1)).toBe(1052);
    expect(fireJiffy(1000, 250, 1)).toBe(1256); // 1250 → next multiple of 8 above
    expect(fireJiffy(1256, 250, 1)).toBe(1512); // from a bucket boundary: +256 every time
  });
  it('a re-arm a softirq makes after the next tick (slip) moves a level-0 chain, not a level-1 one', () => {
    expect(slipJiffies(hz250)).toBe(1);
    expect(slipJiffies({ hz: 250, lateMs: 5 })).toBe(2);
    const ph = { j0: 2 ** 30, lead: 0 as const };
    // 250 → 256 whether re-armed on the tick or one after: the rounding absorbs it.
    expect(chainFireJiffies([250, 250, 250], ph, 1)).toEqual(chainFireJiffies([250, 250, 250], ph, 0));
    // 51 → 52 each: every late re-arm adds its jiffy.
    const late = chainFireJiffies([51, 51, 51], ph, 1).at(-1)!;
    expect(late - chainFireJiffies([51, 51, 51], ph, 0).at(-1)!).toBe(2);
  });
  it('gives a 1 s SYN timer chain its measured 1024 ms spacing (6.18: SYN_SENT samples 1020, 2045, 3070…)', () => {
    const [lo, hi] = chainWindowMs([1000, 1000], hz250);
    expect(lo).toBe(1000 + 1024);
    expect(hi).toBe(1032 + 1024);
  });
});

describe('tcp_model_timeout', () => {
  it('is (2^(n+1)-1) x base below the RTO max', () => {
    expect(modelTimeoutMs(1, 1000, 120_000)).toBe(3000);
    expect(modelTimeoutMs(6, 1000, 120_000)).toBe(127_000);
  });
  it('grows linearly past the RTO max', () => {
    // ilog2(120000/200) = 9: 1023*200 + (15-9)*120000 — the classic 924.6 s of tcp_retries2=15.
    expect(modelTimeoutMs(15, 200, 120_000)).toBe(924_600);
  });
});

describe('SYN schedule (Linux >= 6.7, linear timeouts)', () => {
  it('matches what 6.18 did for tcp_syn_retries=1: 2 retransmits, ~3 s', () => {
    const p = predictSynTimeout(linux618(1), hz250);
    expect(p.retransmits).toBe(2);
    expect(p.timeoutMs).toBe(3000);
    expect(p.limitedBy).toBe('elapsed');
    expect(p.windowMs[0]).toBeLessThan(3069);
    expect(p.windowMs[1]).toBeGreaterThan(3069);
  });
  it('matches retries=2: 5 retransmits at 1..5 s, ETIMEDOUT at 7 s', () => {
    const p = predictSynTimeout(linux618(2), hz250);
    expect(p.retransmitAtMs).toEqual([1000, 2000, 3000, 4000, 5000]);
    expect(p.timeoutMs).toBe(7000);
    expect(7131).toBeGreaterThan(p.windowMs[0]);
    expect(7131).toBeLessThan(p.windowMs[1]);
  });
  it('matches retries=3: 7 retransmits, the retransmission limit ends it at 19 s', () => {
    const p = predictSynTimeout(linux618(3), hz250);
    expect(p.retransmits).toBe(7);
    expect(p.timeoutMs).toBe(19_000);
    expect(19_551).toBeLessThan(p.windowMs[1]);
  });
  it('predicts the default (retries=6) at 131 s, not the seeds\' 127 s', () => {
    expect(predictSynTimeout(linux618(6), hz250).timeoutMs).toBe(131_000);
  });
  it('reduces to the classic 1,2,4.. schedule without linear timeouts (seed kernel)', () => {
    const p = predictSynTimeout({ synRetries: 6, synLinearTimeouts: 0, rtoMaxMs: 120_000 }, hz250);
    expect(p.retransmitAtMs).toEqual([1000, 3000, 7000, 15000, 31000, 63000]);
    expect(p.timeoutMs).toBe(127_000);
  });
  it('lets TCP_SYNCNT override the sysctl', () => {
    expect(synSysctlsFrom({ 'net.ipv4.tcp_syn_retries': '6' }, 2).synRetries).toBe(2);
  });
});
