/** Stages `expect` and `fault`: derive the prediction from the sysctls in force, then apply the fault's plan (each change journaled first). */
import { planRules } from '../../../faults/iptables.js';
import { forBlockingApi, type Trigger } from '../../../faults/define.js';
import { HarnessError } from '../../core/errors.js';
import { inNetns, run } from '../../core/exec.js';
import { kernelFacts } from '../../core/kernel.js';
import { asBlocking } from '../../core/probe.js';
import type { FaultStep } from '../../core/step.js';
import type { RunState } from '../run-state.js';

export async function deriveExpectation(s: RunState): Promise<void> {
  const { p, target } = s;
  const { hz } = await kernelFacts();
  // The windows allow for the lateness the calibration saw (wakeupSlackMs).
  const clock = { hz, ...(s.calibration ? { lateMs: s.calibration.before.maxMs } : {}) };
  s.ctx = { runId: p.runId, params: p.params, endpoints: target!.endpoints, sysctls: s.sysctls!, clock, watchIntervalMs: s.watchIntervalMs, blocking: Boolean(p.blocking) };
  const expected = p.fault.expect(s.ctx);
  const script = p.fault.script(s.ctx, expected);
  s.script = p.blocking ? asBlocking(script) : script;
  s.expected = p.blocking ? forBlockingApi(expected, s.script) : expected;
}

export async function applyPlan(s: RunState): Promise<void> {
  const plan = s.p.fault.plan(s.ctx!);
  await applySteps(s, [...planRules(s.p.runId, plan.rules ?? []), ...(plan.steps ?? [])]);
  s.log.info({ applied: s.applied.length, because: s.expected?.because }, 'fault applied; running the client');
}

async function applySteps(s: RunState, steps: readonly FaultStep[]): Promise<void> {
  for (const step of steps) {
    const ns = s.ns![step.side];
    await s.journal.change(
      step.describe,
      { kind: 'argv', argv: inNetns(ns, step.revert), netnsPath: ns.path, ...(step.absent ? { absent: step.absent } : {}) },
      () => run(inNetns(ns, step.apply)),
    );
    s.applied.push(step.describe);
  }
}

/** What the fault does when the client reaches a barrier: a crash after the handshake, rules that strike later. */
export async function fireTrigger(s: RunState, name: string): Promise<void> {
  const trig = s.p.fault.triggers?.[name];
  if (!trig) throw new HarnessError('E_TRIGGER', `${s.p.fault.name} has no trigger "${name}"`, { exitCode: 3 });
  await fire(s, trig(s.ctx!));
}

async function fire(s: RunState, t: Trigger): Promise<void> {
  s.log.info({ trigger: t.kind }, 'trigger');
  switch (t.kind) {
    case 'rules':
      return applySteps(s, planRules(s.p.runId, t.rules));
    case 'kill-server':
      s.applied.push(`kill -${t.signal} server`);
      return s.target!.killServer(t.signal);
    case 'all':
      for (const x of t.triggers) await fire(s, x);
  }
}
