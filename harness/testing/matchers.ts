/**
 * Domain matchers: `expect(result).toPass()`, `.toFailWith('ETIMEDOUT', 'connect')`,
 * `.toHaveVisited('server', 'SYN_RECV')`, `expect(ms).toBeInWindow([lo, hi])`; and for a run
 * with your own client (`client: { argv }`): `.toHaveClientExit('nonzero')`,
 * `.toHaveClientEndedWithin(3000)`, `.toHaveConnectionsEndedIn('SYN_SENT')`,
 * `.toHaveClientEndedBy('client')`. Each failure prints expected and actual side by side, and
 * what the run saw (its failed checks, or the client's connections).
 */
import { expect } from 'vitest';
import type { Explained } from '../verdict/client.js';
import type { ClientResult, Result } from '../verdict/result.js';
import type { Side } from '../core/sysctl.js';

/** Socket states, the kernel's names without `TCP_` (DESIGN §5). */
export type TcpState = 'SYN_SENT' | 'SYN_RECV' | 'ESTABLISHED' | 'FIN_WAIT1' | 'FIN_WAIT2' | 'TIME_WAIT' | 'CLOSE' | 'CLOSE_WAIT' | 'LAST_ACK' | 'LISTEN' | 'CLOSING';

/** Who ended a connection: the client's own timeout or close, or the kernel at the end of its schedule. */
/** Who ended a connection of the client: see Explained['endedBy']. */
export type EndedBy = Explained['endedBy'];

/** The client part of a Result; a run without one is a misuse, not a failed expectation (so `.not` cannot pass it). */
function clientOf(r: Result, matcher: string): ClientResult {
  if (r.client) return r.client;
  const why = r.error ? `the run broke at stage ${r.error.stage ?? '?'} before the client ended: ${r.error.code} ${r.error.message}` : 'the run had no client: pass client: { argv } to harness.run';
  throw new Error(`${matcher}: ${why}`);
}

const ms = (n: number) => `${Math.round(n)} ms`;

/** What the client did, for failure messages: how it ended, each connection in one line, its last stderr line. */
function clientStory(c: ClientResult): string {
  const lines = [`  client  ${c.argv.join(' ')}: ${c.timedOut ? 'killed by the harness' : c.exitCode !== null ? `exit ${c.exitCode}` : `signal ${c.signal}`} after ${ms(c.durationMs)}`];
  if (c.connections.length === 0) lines.push(`  ${c.summary}`);
  c.connections.forEach((k, i) => lines.push(`  ${i + 1}. ${k.local} ${k.states.map((s) => s.state).join(' → ')} → ${k.end.how === 'gone' ? 'gone' : 'still open'}: ${k.explanation}`));
  const err = c.stderrTail.trim().split('\n').at(-1);
  if (err) lines.push(`  stderr  ${err}`);
  return lines.join('\n');
}

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
  toHaveClientExit(received: Result, expected: number | 'nonzero') {
    const c = clientOf(received, 'toHaveClientExit');
    const actual = c.timedOut ? 'killed by the harness (timeout)' : c.exitCode ?? `signal ${c.signal}`;
    const pass = !c.timedOut && (expected === 'nonzero' ? c.exitCode !== null && c.exitCode !== 0 : c.exitCode === expected);
    return {
      pass,
      message: () => `expected the client ${this.isNot ? 'not ' : ''}to exit ${expected === 'nonzero' ? 'non-zero' : expected}, got ${actual}\n${clientStory(c)}`,
      actual,
      expected,
    };
  },
  toHaveClientEndedWithin(received: Result, withinMs: number) {
    const c = clientOf(received, 'toHaveClientEndedWithin');
    return {
      pass: !c.timedOut && c.durationMs <= withinMs,
      message: () => `expected the client ${this.isNot ? 'not ' : ''}to end within ${ms(withinMs)}, it ${c.timedOut ? 'was killed by the harness' : 'ended'} after ${ms(c.durationMs)}\n${clientStory(c)}`,
      actual: c.durationMs,
      expected: withinMs,
    };
  },
  toHaveConnectionsEndedIn(received: Result, state: TcpState) {
    const c = clientOf(received, 'toHaveConnectionsEndedIn');
    // Each connection's last state before it went away; one still open has not ended.
    const actual = c.connections.map((k) => (k.end.how === 'gone' ? k.end.state : `still open in ${k.end.state}`));
    return {
      pass: actual.length > 0 && actual.every((a) => a === state),
      message: () =>
        `expected every connection of the client ${this.isNot ? 'not ' : ''}to end in ${state}, got ${actual.length ? actual.join(', ') : 'no connection seen'}\n${clientStory(c)}`,
      actual,
      expected: c.connections.length ? c.connections.map(() => state) : [state],
    };
  },
  toHaveClientEndedBy(received: Result, by: EndedBy) {
    const c = clientOf(received, 'toHaveClientEndedBy');
    const actual = c.connections.map((k) => k.endedBy);
    return {
      pass: actual.length > 0 && actual.every((a) => a === by),
      message: () =>
        `expected every connection of the client ${this.isNot ? 'not ' : ''}to be ended by the ${by}, got ${actual.length ? actual.join(', ') : 'no connection seen'}\n${clientStory(c)}`,
      actual,
      expected: c.connections.length ? c.connections.map(() => by) : [by],
    };
  },
});

interface HarnessMatchers<R = unknown> {
  toPass(): R;
  toFailWith(errno: string, label?: string): R;
  toHaveVisited(side: Side, state: string): R;
  toBeInWindow(window: readonly [number, number] | undefined): R;
  /** The client exited with this code, or with any code but 0 (`'nonzero'`; a signal or a harness kill is neither). */
  toHaveClientExit(expected: number | 'nonzero'): R;
  /** The client ended by itself within this many ms of its start. */
  toHaveClientEndedWithin(ms: number): R;
  /** Every connection the client made ended (went away) from this state; at least one connection. */
  toHaveConnectionsEndedIn(state: TcpState): R;
  /** Every connection the client made was ended by the client's own doing, or by the kernel's schedule; at least one. */
  toHaveClientEndedBy(by: EndedBy): R;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  interface Matchers<T = any> extends HarnessMatchers<T> {}
}
