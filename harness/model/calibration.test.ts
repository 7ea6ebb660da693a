import { describe, expect, it } from 'vitest';
import { calibrationReport, latenessBoundMs, tooLoaded, type Calibration } from './calibration.js';
import { wakeupSlackMs } from './tcp.js';

const cal = (maxMs: number): Calibration => ({ samples: 64, sleepMs: 1, medianMs: 0.07, p90Ms: 0.09, maxMs });
const hz250 = { hz: 250 };

describe('calibration', () => {
  it('judges up to one level-1 timer granule of lateness (8 jiffies: 32 ms at HZ=250, 8 ms at HZ=1000)', () => {
    expect(latenessBoundMs(hz250)).toBe(32);
    expect(latenessBoundMs({ hz: 1000 })).toBe(8);
    expect(tooLoaded(cal(31.9), hz250)).toBe(false);
    expect(tooLoaded(cal(32.1), hz250)).toBe(true);
  });
  it('widens every window by what the model adds for it: a jiffy and the worst lateness seen', () => {
    const r = calibrationReport(cal(0.8), undefined, hz250);
    expect(r.slackMs).toBe(wakeupSlackMs({ hz: 250, lateMs: 0.8 }));
    expect(r.loaded).toBe(false);
  });
  it('calls the machine loaded when either calibration was above the bound', () => {
    expect(calibrationReport(cal(0.5), cal(40), hz250).loaded).toBe(true);
    expect(calibrationReport(cal(40), cal(0.5), hz250).loaded).toBe(true);
    expect(calibrationReport(cal(0.5), cal(0.6), hz250).loaded).toBe(false);
  });
});
