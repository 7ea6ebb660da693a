/** Stages `expect` and `fault`: derive the prediction from the sysctls in force, then apply the fault's plan (each change journaled first). */
import { batchRules, planRules } from '../../../faults/iptables.js';
import type { ServerFacts, Trigger } from '../../../faults/define.js';
import { EnvironmentError, HarnessError } from '../../core/errors.js';
import { inNetns, run } from '../../core/exec.js';
import { kernelFacts } from '../../core/kernel.js';
import type { FaultStep } from '../../core/step.js';
import { readListener } from '../observers/states.js';
import type { RunState } from '../run-state.js';

export async function deriveExpectation(s: RunState): Promise<void> {
  const { p, target } = s;
  s.ctx = {
    runId: p.runId,
    params: p.params,
    endpoints: target!.endpoints,
    server: await serverFacts(s),
    sysctls: s.sysctls!,
    clock: await kernelFacts(),
    watchIntervalMs: s.watchIntervalMs,
  };
  s.expected = p.fault.expect(s.ctx);
  s.script = p.fault.script(s.ctx, s.expected);
}

/** The server as it is: the built-in mode it runs, and (for faults that model it) its listener, read from its LISTEN socket. */
async function serverFacts(s: RunState): Promise<ServerFacts> {
  const target = s.target!;
  const facts: ServerFacts = target.mode ? { mode: target.mode } : {};
  if (!s.p.fault.readsListener) return facts;
  const { address, port } = target.endpoints;
  const l = await readListener(s.ns!.server, address, port);
  if (!l) throw new EnvironmentError('E_NO_LISTENER', `target ${target.name}: no socket listens on ${address}:${port} in its namespace (sock_diag)`);
  s.log.info({ listener: l }, `listener ${l.local}: backlog ${l.backlog}, ${l.queued} queued`);
  return { ...facts, listener: { local: l.local, backlog: l.backlog, queued: l.queued } };
}

export async function applyPlan(s: RunState): Promise<void> {
  const plan = s.p.fault.plan(s.ctx!);
  // The plan's rules go in as one iptables-restore per namespace: atomic, one process each.
  await applySteps(s, [...batchRules(s.p.runId, plan.rules ?? []), ...(plan.steps ?? [])]);
  if (plan.freeze) await freeze(s);
  s.log.info({ applied: s.applied.length, because: s.expected?.because }, 'fault applied; running the client');
}

/** Freezes the server (the target journals the thaw first). */
async function freeze(s: RunState): Promise<void> {
  const target = s.target!;
  if (!target.freezeServer) throw new HarnessError('E_FREEZE', `target ${target.name} cannot be frozen`, { exitCode: 2 });
  const r = await target.freezeServer();
  s.applied.push(`freeze: ${r.describe} (${r.durationMs.toFixed(1)} ms)`);
  s.log.info({ freezeMs: r.durationMs }, r.describe);
}

async function applySteps(s: RunState, steps: readonly FaultStep[]): Promise<void> {
  for (const step of steps) {
    const ns = s.ns![step.side];
    await s.journal.change(
      step.describe,
      { kind: 'argv', argv: inNetns(ns, step.revert), netnsPath: ns.path, ...(step.absent ? { absent: step.absent } : {}), ...(step.revertInput !== undefined ? { input: step.revertInput } : {}) },
      () => run(inNetns(ns, step.apply), step.input !== undefined ? { input: step.input } : {}),
    );
    s.applied.push(...(step.describes ?? [step.describe]));
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
    case 'freeze-server':
      return freeze(s);
    case 'thaw-server':
      s.applied.push('thaw the server');
      return s.target!.thawServer?.();
    case 'all':
      for (const x of t.triggers) await fire(s, x);
  }
}
