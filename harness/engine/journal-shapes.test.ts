/**
 * What the engine journals must be what `harness gc` agrees to replay (core/journal-schema.ts):
 * every fault's plan and rule triggers, journaled as the runner journals them, in both kinds of
 * namespace (a run's own, a container's), validate; so does the sysctl revert.
 */
import { describe, expect, test } from 'vitest';
import { faults } from '../../faults/index.js';
import { faultContext } from '../../faults/context.js';
import type { FaultDefinition, Trigger } from '../../faults/define.js';
import { planRules } from '../../faults/iptables.js';
import { inNetns } from '../core/exec.js';
import { revertProblem, type Revert } from '../core/journal-schema.js';
import { namedNetns, pidNetns, type Netns } from '../core/netns.js';
import type { FaultStep } from '../core/step.js';

const RUN = 'abc123'; // faultContext's runId
const namespaces: Netns[] = [namedNetns(`harness-${RUN}-t`), namedNetns(`harness-${RUN}-c`), pidNetns(4242)];

/** As engine/runner.ts applyFaultSteps journals a step. */
const asJournaled = (ns: Netns, step: FaultStep): Revert => ({ kind: 'argv', argv: inNetns(ns, step.revert), netnsPath: ns.path, ...(step.absent ? { absent: step.absent } : {}) });

function triggerRules(t: Trigger): FaultStep[] {
  if (t.kind === 'rules') return planRules(RUN, t.rules);
  if (t.kind === 'all') return t.triggers.flatMap(triggerRules);
  return [];
}

function stepsOf(name: string): FaultStep[] {
  const fault = faults[name as keyof typeof faults] as unknown as FaultDefinition;
  const ctx = faultContext(fault);
  const plan = fault.plan(ctx);
  return [...planRules(RUN, plan.rules ?? []), ...(plan.steps ?? []), ...Object.values(fault.triggers ?? {}).flatMap((t) => triggerRules(t(ctx)))];
}

describe('journal shapes', () => {
  test('the catalogue journals iptables steps at all (so the checks below check something)', () => {
    expect(Object.keys(faults).flatMap(stepsOf).length).toBeGreaterThan(20);
  });

  test.each(Object.keys(faults))('%s: every step of its plan and triggers is replayable by gc', (name) => {
    const steps = stepsOf(name);
    const problems = namespaces.flatMap((ns) => steps.map((s) => revertProblem(asJournaled(ns, s), RUN)).filter(Boolean));
    expect(problems).toEqual([]);
    // And the same steps are refused for another run: a journal cannot reach another run's rules.
    expect(steps.every((s) => revertProblem(asJournaled(namespaces[0]!, s), 'zzz999') !== undefined)).toBe(true);
  });

  test('the sysctl revert (core/sysctl.ts applySysctls) is replayable', () => {
    for (const ns of namespaces) {
      const revert: Revert = { kind: 'argv', argv: inNetns(ns, ['sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6']), netnsPath: ns.path };
      expect(revertProblem(revert, RUN)).toBeUndefined();
    }
  });
});
