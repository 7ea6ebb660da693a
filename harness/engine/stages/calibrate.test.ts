import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { calibrationReport, type Calibration } from '../../model/calibration.js';
import type { Expectation } from '../../verdict/expectation.js';
import type { RunState } from '../run-state.js';
import { evaluateRun } from '../run-state.js';
import { apparatusLateMs, weigh } from './calibrate.js';

describe('apparatusLateMs: how late the fault\'s own delayer released a packet', () => {
  it('takes the worst lateUsMax of the process reports, in ms', () => {
    expect(apparatusLateMs([{ report: { event: 'stats', lateUsMax: 1200 } }, { report: { event: 'stats', lateUsMax: 3400 } }])).toBe(3.4);
  });
  it('is 0 without a delayer, without a report (it was killed), or with a report that does not say', () => {
    expect(apparatusLateMs([])).toBe(0);
    expect(apparatusLateMs([{ report: undefined }, { report: { event: 'stats' } }, { report: { lateUsMax: 'x' } }])).toBe(0);
  });
});

/**
 * A run in miniature: one step `c` of 15 ms whose window, like a round trip's through the delayer,
 * ends at 10 ms plus three times the lateness allowed (an RTO derived from a late RTT sample moves
 * more than the window edge of one event: no lateByMs tells it).
 */
function run(opts: { lateUsMax?: number; afterMaxMs?: number; errno?: string | null }): RunState {
  const cal = (maxMs: number): Calibration => ({ samples: 64, sleepMs: 0.5, medianMs: 0.1, p90Ms: 0.2, maxMs });
  const fault = { expect: (ctx: { clock: { lateMs?: number } }): Expectation => ({ steps: { c: { errno: null, rttUs: [0, (10 + 3 * (ctx.clock.lateMs ?? 0)) * 1000] } } }) };
  const ctx = { clock: { hz: 250, lateMs: 1 } };
  const step = { i: 0, op: 'connect', ok: true, errno: opts.errno ?? null, startUs: 0, endUs: 100, tcp: { state: 'ESTABLISHED', caState: 0, retransmits: 0, totalRetrans: 0, backoff: 0, rtoUs: 0, rttUs: 15_000, unacked: 0, lost: 0, probes: 0 } };
  const s = {
    p: { fault, blocking: false },
    log: silentLogger,
    ctx,
    watchIntervalMs: 5,
    expected: fault.expect(ctx),
    script: [{ op: 'connect', label: 'c' }],
    probe: { probe: 'harness-probe', steps: [step] },
    observed: { events: { client: [], server: [] }, counters: { client: {}, server: {} }, rulesHit: {}, captures: [] },
    processReports: opts.lateUsMax === undefined ? [] : [{ describe: 'delayer', report: { event: 'stats', lateUsMax: opts.lateUsMax } }],
    calibration: calibrationReport(cal(1), cal(opts.afterMaxMs ?? 1), { hz: 250 }),
  } as unknown as RunState;
  const first = evaluateRun(s, s.expected!);
  s.checks = first.checks;
  s.verdict = first.verdict;
  return s;
}

describe('weigh: after a failed check', () => {
  it('a delayer measured 2 ms late, and every check holds on a machine that late: inconclusive, never pass', () => {
    const s = run({ lateUsMax: 2000 });
    expect(s.verdict).toBe('fail');
    weigh(s);
    expect(s.verdict).toBe('inconclusive');
  });
  it('a delayer on time, a quiet machine after: the failure stands', () => {
    const s = run({ lateUsMax: 100 });
    weigh(s);
    expect(s.verdict).toBe('fail');
  });
  it('late, but a check that no lateness explains (a wrong errno): the failure stands', () => {
    const s = run({ lateUsMax: 2000, errno: 'ECONNRESET' });
    weigh(s);
    expect(s.verdict).toBe('fail');
  });
  it('the machine late by more than the bound after the failure: inconclusive', () => {
    const s = run({ afterMaxMs: 40 });
    weigh(s);
    expect(s.verdict).toBe('inconclusive');
  });
});
