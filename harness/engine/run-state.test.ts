import { describe, expect, it } from 'vitest';
import type { ClientStep, ProbeClientOutput, ProbeStepResult } from '../core/probe.js';
import { observedOf, type RunState } from './run-state.js';

const step = (i: number, op: string, startUs: number, endUs: number, extra: Partial<ProbeStepResult> = {}): ProbeStepResult => ({ i, op, ok: true, errno: null, startUs, endUs, ...extra });
const out = (steps: ProbeStepResult[]): ProbeClientOutput => ({ probe: 'harness-probe', version: 1, mode: 'client', steps });

describe('observedOf', () => {
  it('puts the steps a trigger ran in the server namespace on the client\'s time line, labelled and marked side: server', () => {
    const script: ClientStep[] = [{ op: 'connect', label: 'connect', timeoutMs: 1 }, { op: 'barrier', name: 'restart' }, { op: 'connect', sock: 1, label: 'after', timeoutMs: 1 }];
    const server: ClientStep[] = [{ op: 'listen', label: 'bind' }, { op: 'barrier', name: 'hold' }, { op: 'close' }];
    const s = {
      script,
      probe: out([step(0, 'connect', 1000, 1100), step(1, 'barrier', 1200, 5000), step(2, 'connect', 5010, 5020, { ok: false, errno: 'ECONNREFUSED' })]),
      serverScripts: [{ steps: server, output: out([step(0, 'listen', 4000, 4010, { ok: false, errno: 'EADDRINUSE' }), step(1, 'barrier', 4020, 6000), step(2, 'close', 6001, 6002)]), release: () => {}, done: Promise.resolve() }],
    } as unknown as RunState;
    const { steps } = observedOf(s);
    expect(steps.map((x) => `${x.side ?? 'client'}:${x.label ?? x.op}@${x.startMs}`)).toEqual([
      'client:connect@0',
      'client:barrier@0.2',
      'server:bind@3',
      'server:barrier@3.02',
      'client:after@4.01',
      'server:close@5',
    ]);
    expect(steps.find((x) => x.label === 'bind')).toMatchObject({ side: 'server', errno: 'EADDRINUSE', durationMs: 0.01 });
  });
  it('without server scripts the client steps are left as they are', () => {
    const s = { script: [{ op: 'close' }], probe: out([step(0, 'close', 10, 20)]) } as unknown as RunState;
    expect(observedOf(s).steps).toEqual([{ op: 'close', ok: true, errno: null, startMs: 0, endMs: 0.01, durationMs: 0.01 }]);
  });
});
