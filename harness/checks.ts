/**
 * Turns an Expectation and what was observed into named checks, each with expected and actual
 * side by side (packetdrill style). Pure: unit-tested without a kernel.
 */
import type { CounterExpectation, Expectation, StepExpectation } from '../faults/define.js';
import type { Counters } from './observers/counters.js';
import type { Check, StateSample, StepResult, Verdict } from './result.js';
import { SIDES, type Side } from './sysctl.js';

export interface Observed {
  steps: StepResult[];
  states: Record<Side, StateSample[]>;
  counters: Record<Side, Counters>;
  rulesHit: Record<string, number>;
}

function counterOk(e: CounterExpectation, actual: number): boolean {
  if (typeof e === 'number') return actual === e;
  return (e.min === undefined || actual >= e.min) && (e.max === undefined || actual <= e.max);
}

function fmtCounter(e: CounterExpectation): string | number {
  if (typeof e === 'number') return e;
  if (e.min !== undefined && e.max !== undefined) return `${e.min}..${e.max}`;
  return e.min !== undefined ? `>= ${e.min}` : `<= ${e.max}`;
}

function stepChecks(label: string, e: StepExpectation, s: StepResult | undefined): Check[] {
  if (!s) return [{ name: `${label}: step ran`, expected: true, actual: false, pass: false }];
  const out: Check[] = [];
  const eq = (what: string, expected: unknown, actual: unknown) =>
    out.push({ name: `${label} ${what}`, expected, actual, pass: expected === actual });
  if (e.ok !== undefined) eq('ok', e.ok, s.ok);
  if (e.errno !== undefined) eq('errno', e.errno, s.errno);
  if (e.timedOut !== undefined) eq('timed out', e.timedOut, Boolean(s.timedOut));
  if (e.bytes !== undefined) eq('bytes', e.bytes, s.bytes ?? 0);
  if (e.eof !== undefined) eq('eof', e.eof, Boolean(s.eof));
  if (e.tcpState !== undefined) eq('tcp state', e.tcpState, s.tcp?.state ?? null);
  if (e.totalRetrans !== undefined) eq('tcp total retransmits', e.totalRetrans, s.tcp?.totalRetrans ?? null);
  if (e.windowMs) {
    const [lo, hi] = e.windowMs;
    out.push({
      name: `${label} duration`,
      expected: `${lo.toFixed(1)}..${hi.toFixed(1)} ms`,
      actual: `${s.durationMs.toFixed(1)} ms`,
      pass: s.durationMs >= lo && s.durationMs <= hi,
    });
  }
  return out;
}

export function evaluate(expected: Expectation, observed: Observed): { checks: Check[]; verdict: Verdict } {
  const checks: Check[] = [];
  const byLabel = new Map(observed.steps.filter((s) => s.label).map((s) => [s.label!, s]));
  for (const [label, e] of Object.entries(expected.steps)) checks.push(...stepChecks(label, e, byLabel.get(label)));
  for (const side of SIDES) {
    const seen = [...new Set(observed.states[side].map((s) => s.state))];
    for (const st of expected.states?.[side] ?? []) {
      checks.push({ name: `${side} visits ${st}`, expected: st, actual: seen.join(' ') || '(none)', pass: seen.includes(st) });
    }
    for (const st of expected.statesAbsent?.[side] ?? []) {
      checks.push({ name: `${side} never ${st}`, expected: `not ${st}`, actual: seen.join(' ') || '(none)', pass: !seen.includes(st) });
    }
    for (const [name, e] of Object.entries(expected.counters?.[side] ?? {})) {
      const actual = observed.counters[side][name] ?? 0;
      checks.push({ name: `${side} ${name}`, expected: fmtCounter(e), actual, pass: counterOk(e, actual) });
    }
  }
  for (const [name, e] of Object.entries(expected.rulesHit ?? {})) {
    const actual = observed.rulesHit[name] ?? 0;
    checks.push({ name: `rule ${name} hit`, expected: fmtCounter(e), actual, pass: counterOk(e, actual) });
  }
  const verdict: Verdict = checks.length > 0 && checks.every((c) => c.pass) ? 'pass' : 'fail';
  return { checks, verdict };
}
