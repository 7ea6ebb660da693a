import { describe, expect, it } from 'vitest';
import { exitCodeOf } from './run.js';

describe('harness run exit code', () => {
  it('0 all pass, 1 a kernel contradicted the model, 3 a run broke, 4 only inconclusive (too loaded to judge)', () => {
    expect(exitCodeOf([{ verdict: 'pass' }, { verdict: 'pass' }])).toBe(0);
    expect(exitCodeOf([{ verdict: 'pass' }, { verdict: 'inconclusive' }])).toBe(4);
    // A real failure outranks an inconclusive one; a broken run outranks both.
    expect(exitCodeOf([{ verdict: 'fail' }, { verdict: 'inconclusive' }])).toBe(1);
    expect(exitCodeOf([{ verdict: 'fail' }, { verdict: 'error' }])).toBe(3);
  });
});
