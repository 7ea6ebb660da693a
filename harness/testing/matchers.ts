/**
 * Domain matchers: `expect(result).toPass()`, `.toFailWith('ETIMEDOUT', 'connect')`,
 * `.toHaveVisited('server', 'SYN_RECV')`, `expect(ms).toBeInWindow([lo, hi])`. Each failure
 * prints expected and actual side by side, and the failed checks of the run.
 */
import { expect } from 'vitest';
import type { Result } from '../verdict/result.js';
import type { Side } from '../core/sysctl.js';

function failedChecks(r: Result): string {
  const bad = r.checks.filter((c) => !c.pass);
  const lines = bad.map((c) => `  ✗ ${c.name}: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(c.actual)}`);
  if (r.error) lines.push(`  error ${r.error.code}: ${r.error.message}`);
  return lines.join('\n');
}

expect.extend({
  toPass(received: Result) {
    return {
      pass: received.verdict === 'pass',
      message: () =>
        this.isNot
          ? `expected ${received.scenario} (run ${received.runId}) not to pass`
          : `expected ${received.scenario} (run ${received.runId}) to pass, verdict ${received.verdict}:\n${failedChecks(received)}`,
      actual: received.verdict,
      expected: 'pass',
    };
  },
  toFailWith(received: Result, errno: string, label?: string) {
    const step = label ? received.steps.find((s) => s.label === label) : received.steps.find((s) => !s.ok && s.errno);
    const actual = step?.errno ?? null;
    return {
      pass: actual === errno,
      message: () => `expected ${label ?? 'the first failing step'} to fail with ${errno}, got ${actual ?? 'no error'}`,
      actual,
      expected: errno,
    };
  },
  toHaveVisited(received: Result, side: Side, state: string) {
    const seen = [...new Set(received.states[side].map((s) => s.state))];
    return {
      pass: seen.includes(state),
      message: () => `expected the ${side} to ${this.isNot ? 'never visit' : 'visit'} ${state}; it visited ${seen.join(' ') || 'nothing'}`,
      actual: seen,
      expected: state,
    };
  },
  toBeInWindow(received: number, window: readonly [number, number] | undefined) {
    const [lo, hi] = window ?? [Number.NaN, Number.NaN];
    return {
      pass: received >= lo && received <= hi,
      message: () => `expected ${received} ms to be ${this.isNot ? 'outside' : 'inside'} the predicted window [${lo}, ${hi}] ms`,
      actual: received,
      expected: window,
    };
  },
});

interface HarnessMatchers<R = unknown> {
  toPass(): R;
  toFailWith(errno: string, label?: string): R;
  toHaveVisited(side: Side, state: string): R;
  toBeInWindow(window: readonly [number, number] | undefined): R;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  interface Matchers<T = any> extends HarnessMatchers<T> {}
}
