import { describe, expect, it } from 'vitest';
import { maxQueueDelayMs, parseRate, predictShapedTransfer, shapedMs, wireOf } from './rate.js';

const tbf = { rateBitsPerS: 1_000_000, burstBytes: 3028, limitBytes: 1_000_000 };

describe('token bucket (sch_tbf)', () => {
  it('counts each segment\'s frame: 64000 B is 45 segments, 66970 B on the wire', () => {
    expect(wireOf(64_000)).toEqual({ segments: 45, bytes: 64_000 + 45 * 66 });
  });
  it('drains what exceeds the bucket at the rate: 66970 B at 1 Mbit/s with a 3028 B bucket: 511.5 ms (measured 515.0)', () => {
    expect(shapedMs(tbf, 66_970)).toBeCloseTo(511.536, 3);
    expect(shapedMs(tbf, 2000)).toBe(0); // within the bucket: at once
  });
  it('bounds the transfer: the data alone less the bucket … the ACKs too, no head start, and the wake-ups', () => {
    const p = predictShapedTransfer(tbf, 64_000, [0, 45], 16);
    expect(p.windowMs[0]).toBeCloseTo(511.536, 3);
    expect(p.windowMs[1]).toBeCloseTo(((66_970 + 45 * 66) * 8) / 1000 + 16, 3);
    expect(p.packets).toEqual([45, 90]);
  });
  it('a full queue delays a packet limit / rate', () => {
    expect(maxQueueDelayMs(tbf)).toBe(8000);
  });
  it('reads rates in bits per second as tc writes them; refuses bytes per second and nonsense', () => {
    expect(parseRate('1mbit')).toBe(1_000_000);
    expect(parseRate('500kbit')).toBe(500_000);
    expect(parseRate('64000')).toBe(64_000);
    expect(parseRate('2.5Mbit')).toBe(2_500_000);
    expect(parseRate('1gbit')).toBe(1e9);
    for (const bad of ['10furlongs', '1mbps', '-1mbit', '', 'mbit', '1 m bit']) expect(parseRate(bad), bad).toBeUndefined();
  });
});
