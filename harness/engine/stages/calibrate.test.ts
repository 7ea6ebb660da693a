import { describe, expect, it } from 'vitest';
import { apparatusLateMs } from './calibrate.js';

describe('apparatusLateMs: how late the fault\'s own delayer released a packet', () => {
  it('takes the worst lateUsMax of the process reports, in ms', () => {
    expect(apparatusLateMs([{ report: { event: 'stats', lateUsMax: 1200 } }, { report: { event: 'stats', lateUsMax: 3400 } }])).toBe(3.4);
  });
  it('is 0 without a delayer, without a report (it was killed), or with a report that does not say', () => {
    expect(apparatusLateMs([])).toBe(0);
    expect(apparatusLateMs([{ report: undefined }, { report: { event: 'stats' } }, { report: { lateUsMax: 'x' } }])).toBe(0);
  });
});
