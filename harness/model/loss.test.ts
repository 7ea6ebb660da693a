import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom, initialRtoJiffies } from './data.js';
import { predictNthLoss, randomLossBounds, randomLossPerRound } from './loss.js';
import { firingRanges, firingWindows } from './retransmit.js';

const hz250 = { hz: 250 };
const firings = (extra: Record<string, string> = {}) =>
  firingRanges(firingWindows(dataSysctlsFrom(extra), { rtoJiffies: initialRtoJiffies(200, hz250), srttUs: 3999 }, hz250));

describe('every n-th data segment lost', () => {
  it('every 3rd over 6 requests: the 3rd and the 5th lose theirs (the probe after a loss is the 4th, 7th … packet)', () => {
    const p = predictNthLoss(3, 6, firings());
    expect(p.rounds.map((r) => r.drops)).toEqual([0, 0, 1, 0, 1, 0]);
    expect(p).toMatchObject({ drops: 2, probes: 2, rtos: 0 });
    // Measured: 200.2 and 203.4 ms for the two.
    expect(p.rounds[2]!.atMs).toEqual([200, 208]);
  });
  it('every 2nd without loss probes (tcp_early_retrans=0): an RTO for each', () => {
    const p = predictNthLoss(2, 6, firings({ 'net.ipv4.tcp_early_retrans': '0' }));
    expect(p.rounds.map((r) => r.drops)).toEqual([0, 1, 1, 1, 1, 1]);
    expect(p).toMatchObject({ drops: 5, probes: 0, rtos: 5 });
  });
  it('every packet lost is no loss model but a dead host: refused', () => {
    expect(() => predictNthLoss(1, 1, firings())).toThrow(/every retransmission/);
  });
});

describe('random loss', () => {
  it('bounds the losses of R requests (negative binomial) outside which a run falls with p < 1e-6', () => {
    const [lo, hi] = randomLossBounds(20, 0.3);
    expect(lo).toBe(0);
    expect(hi).toBeGreaterThan(20 * 0.3 / 0.7);
    // The tail beyond hi is below 1e-6: a million-run experiment would not see it; check the mean is inside.
    expect(hi).toBeLessThan(40);
    const [lo2] = randomLossBounds(200, 0.5);
    expect(lo2).toBeGreaterThan(100); // mean 200: 1e-6 of the left tail is far above 0
  });
  it('the most losses one request sees: R · p^(m+1) < 1e-6', () => {
    expect(randomLossPerRound(20, 0.3)).toBe(13);
    expect(20 * 0.3 ** 14).toBeLessThan(1e-6);
    expect(20 * 0.3 ** 13).toBeGreaterThan(1e-6);
  });
});
