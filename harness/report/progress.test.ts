import { describe, expect, test } from 'vitest';
import { silentLogger } from '../core/log.js';
import type { Expectation } from '../verdict/expectation.js';
import { predictedEndMs, progressLine, startProgress } from './progress.js';

/** A terminal that records what is written (log-update only needs write, columns and rows). */
function fakeTty(isTTY = true): NodeJS.WriteStream & { out: string } {
  const s = { isTTY, columns: 120, rows: 40, out: '', write(chunk: string) { s.out += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { out: string };
}

describe('predictedEndMs', () => {
  test('steps run one after another: their windows add up; a later state end extends it; nothing predicted: undefined', () => {
    // --kernel-defaults syn-drop: tcp_syn_retries=6 + 4 linear timeouts, ETIMEDOUT at 131 s.
    expect(predictedEndMs({ steps: { connect: { windowMs: [131_000, 136_100] } } })).toEqual([131_000, 136_100]);
    expect(predictedEndMs({ steps: { a: { windowMs: [0, 8] }, b: { ok: true }, c: { windowMs: [990, 1000] } } })).toEqual([990, 1008]);
    const e: Expectation = { steps: { connect: { ok: true } }, stateLeft: [{ side: 'client', state: 'FIN_WAIT1', fromStep: 'close', windowMs: [3264, 3386] }] };
    expect(predictedEndMs(e)).toEqual([3264, 3386]);
    expect(predictedEndMs({ steps: { connect: { ok: true } } })).toBeUndefined();
  });
});

describe('progressLine', () => {
  test('before the client runs: the stage; while it runs: elapsed against the prediction, with a bar', () => {
    expect(progressLine({ scenario: 'syn-drop', stage: 'fault' }, 0, 10)).toBe('  syn-drop   applying the fault…');
    const line = progressLine({ scenario: 'syn-drop', stage: 'client', clientStartMs: 1000, predictedEndMs: [131_000, 136_100] }, 1000 + 65_500, 10);
    expect(line).toBe(`  syn-drop   client running  65.5 s of 131.0–136.1 s predicted  ${'█'.repeat(10)}${'░'.repeat(10)}`);
    expect(progressLine({ scenario: 'x', stage: 'client', clientStartMs: 0, predictedEndMs: [7000, 7040] }, 7100, 1)).toMatch(/7\.1 s of 7\.0 s predicted {2}█{20} \(past the prediction/);
    expect(progressLine({ scenario: 'x', stage: 'client', clientStartMs: 0 }, 250, 1)).toBe('  x client running  250.0 ms');
  });
});

describe('startProgress', () => {
  test('nothing at all when the stream is not a terminal', () => {
    const s = fakeTty(false);
    expect(startProgress([{ runId: 'a', scenario: 'syn-drop' }], { stream: s })).toBeUndefined();
    expect(s.out).toBe('');
  });

  test('one live line per run; text written above lifts them and redraws them; a finished run\'s line goes; stop clears', () => {
    const s = fakeTty();
    let now = 0;
    const p = startProgress(
      [
        { runId: 'a', scenario: 'syn-drop' },
        { runId: 'b', scenario: 'reject' },
      ],
      { stream: s, now: () => now, intervalMs: 60_000 },
    )!;
    expect(s.out).toContain('syn-drop starting the target…');
    expect(s.out).toContain('reject   starting the target…');
    p.onExpected('a', { steps: { connect: { windowMs: [7000, 7200] } } });
    p.onStage('client', 'a');
    now = 3600;
    s.out = '';
    let wrote = '';
    p.finished('b');
    p.above(() => (wrote = s.out));
    // Before the write: the live lines were erased (cursor up + erase line), nothing drawn yet.
    expect(wrote).toMatch(/\u001b\[2K/);
    expect(wrote).not.toContain('syn-drop');
    // After it: syn-drop redrawn with its time against the prediction, reject gone.
    expect(s.out).toContain('syn-drop client running  3.6 s of 7.0–7.2 s predicted');
    expect(s.out.slice(wrote.length)).not.toContain('reject');
    s.out = '';
    p.stop();
    expect(s.out).toMatch(/\u001b\[2K/);
    s.out = '';
    p.above(() => undefined);
    expect(s.out).toBe('');
  });

  test('its logger writes pretty lines through above(), at the base logger\'s level', () => {
    const s = fakeTty();
    const p = startProgress([{ runId: 'a', scenario: 'syn-drop' }], { stream: s, intervalMs: 60_000 })!;
    const log = p.logger(Object.assign(Object.create(silentLogger), { level: 'info' }));
    s.out = '';
    log.info({ runId: 'a' }, 'starting target');
    log.debug('not shown');
    expect(s.out).toContain('starting target');
    expect(s.out).not.toContain('not shown');
    expect(s.out.lastIndexOf('syn-drop')).toBeGreaterThan(s.out.indexOf('starting target'));
    p.stop();
  });
});
