/** Stages `expect` and `fault`: derive the prediction from the sysctls in force, then apply the fault's plan (each change journaled first). */
import { setTimeout as sleep } from 'node:timers/promises';
import { batchRules, planRules, type Rule } from '../../../faults/iptables.js';
import { parseQdiscStats, planQdiscs, qdiscHits } from '../../../faults/tc.js';
import { forBlockingApi, type Expectation, type FaultContext, type ServerFacts, type Trigger } from '../../../faults/define.js';
import { EnvironmentError, HarnessError } from '../../core/errors.js';
import { inNetns, run, spawnLong, withTimeout } from '../../core/exec.js';
import { processStartTicks } from '../../core/journal.js';
import { kernelFacts } from '../../core/kernel.js';
import { asBlocking, probeArgv } from '../../core/probe.js';
import type { FaultStep, ProcessStep } from '../../core/step.js';
import { SIDES, type Side } from '../../core/sysctl.js';
import { readRuleHits } from '../observers/rules.js';
import { readListener } from '../observers/states.js';
import type { RunState } from '../run-state.js';
import { startServerScript } from './server-script.js';

export async function deriveExpectation(s: RunState): Promise<void> {
  const { p, target } = s;
  const { hz } = await kernelFacts();
  // The windows allow for the lateness the calibration saw (wakeupSlackMs).
  const clock = { hz, ...(s.calibration ? { lateMs: s.calibration.before.maxMs } : {}) };
  s.ctx = {
    runId: p.runId,
    params: p.params,
    endpoints: target!.endpoints,
    server: await serverFacts(s),
    sysctls: s.sysctls!,
    clock,
    watchIntervalMs: s.watchIntervalMs,
    blocking: Boolean(p.blocking),
  };
  const expected = p.fault.expect(s.ctx);
  const script = p.fault.script(s.ctx, expected);
  s.script = p.blocking ? asBlocking(script) : script;
  s.expected = p.blocking ? forBlockingApi(expected, s.script) : expected;
}

/** The expectation of the run's fault on another clock (the same script: only the windows move). */
export function expectationOn(s: RunState, clock: FaultContext<unknown>['clock']): { expected: Expectation; ctx: NonNullable<RunState['ctx']> } {
  const ctx = { ...s.ctx!, clock };
  const expected = s.p.fault.expect(ctx);
  return { ctx, expected: s.p.blocking ? forBlockingApi(expected, s.script!) : expected };
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
  // A process the rules send packets to (the NFQUEUE delayer) is up before them.
  for (const proc of plan.processes ?? []) await startProcess(s, proc);
  // The plan's rules go in as one iptables-restore per namespace: atomic, one process each.
  await applySteps(s, batchRules(s.p.runId, plan.rules ?? []));
  if (plan.qdiscs?.length) {
    const devs = await devicesTowardPeer(s);
    s.qdiscs = plan.qdiscs.map((q, index) => ({ q, index, dev: devs[q.side] }));
    await applySteps(s, planQdiscs(plan.qdiscs, (side) => devs[side]));
  }
  await applySteps(s, plan.steps ?? []);
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
    if (step.rules) s.ruleSides.add(step.side);
  }
}

/**
 * Starts a process the fault needs for as long as it is in force (the delayer), journaled as a
 * kill with its start time before anything relies on it, and proven ready by its stdout.
 */
async function startProcess(s: RunState, step: ProcessStep): Promise<void> {
  const ns = s.ns![step.side];
  const ready = new RegExp(step.ready);
  let stderr = '';
  let onReady: (() => void) | undefined;
  const isReady = new Promise<void>((r) => (onReady = r));
  const lines: string[] = [];
  const proc = spawnLong(probeArgv(ns, step.probeArgs), {
    stdout: (l) => {
      lines.push(l);
      if (ready.test(l)) onReady?.();
    },
    stderr: (l) => (stderr += `${l}\n`),
  });
  const pid = proc.pid;
  if (pid === undefined) throw new EnvironmentError('E_FAULT_PROCESS', `could not start ${step.describe}`, 'npm run build (the probe)');
  await s.journal.record(`${step.describe}: pid ${pid} in ${ns.name}`, { kind: 'kill', pid, startTicks: (await processStartTicks(pid)) ?? '' });
  const exited = proc.then((r) => {
    throw new EnvironmentError('E_FAULT_PROCESS', `${step.describe} exited (${r.exitCode ?? r.signal}): ${stderr.trim() || 'no message'}`, 'harness doctor');
  });
  exited.catch(() => undefined);
  await withTimeout(Promise.race([isReady, exited]), 5000, `${step.describe} in ${ns.name} was not ready after 5000 ms: ${stderr.trim()}`);
  s.applied.push(`${step.describe} (pid ${pid}, ${ns.name})`);
  s.processes.push({
    describe: step.describe,
    // SIGTERM first: a process that holds packets lets them go and reports what it did.
    async stop() {
      if (proc.exitCode === undefined || proc.exitCode === null) proc.kill('SIGTERM');
      await withTimeout(proc, 5000, `${step.describe} did not stop`).catch(() => proc.kill('SIGKILL'));
      const last = lines.at(-1);
      try {
        return last ? (JSON.parse(last) as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    },
  });
}

/** The interface of each side that leads to the other side (the run's veth, in a netns or a container run). */
async function devicesTowardPeer(s: RunState): Promise<Record<Side, string>> {
  const { address, clientAddress } = s.target!.endpoints;
  const peer: Record<Side, string> = { client: address, server: clientAddress };
  const out = {} as Record<Side, string>;
  for (const side of SIDES) {
    const r = await run(inNetns(s.ns![side], ['ip', '-j', 'route', 'get', peer[side]]));
    const dev = (JSON.parse(r.stdout) as { dev?: string }[])[0]?.dev;
    if (!dev) throw new EnvironmentError('E_NO_ROUTE', `no route from the ${side} namespace to ${peer[side]}`, 'harness doctor');
    out[side] = dev;
  }
  return out;
}

/** The statistics of the plan's qdiscs, as rule hits (`name`, `name:overlimits`, `name:drops`). */
export async function readQdiscHits(s: RunState): Promise<Record<string, number>> {
  const hits: Record<string, number> = {};
  for (const { q, index, dev } of s.qdiscs ?? []) {
    const r = await run(inNetns(s.ns![q.side], ['tc', '-s', '-j', 'qdisc', 'show', 'dev', dev]), { reject: false });
    if (!r.failed) Object.assign(hits, qdiscHits(q, index, parseQdiscStats(r.stdout)));
  }
  return hits;
}

/** What the fault does when the client reaches a barrier: a crash after the handshake, rules that strike later. */
export async function fireTrigger(s: RunState, name: string): Promise<void> {
  const trig = s.p.fault.triggers?.[name];
  if (!trig) throw new HarnessError('E_TRIGGER', `${s.p.fault.name} has no trigger "${name}"`, { exitCode: 3 });
  await fire(s, trig(s.ctx!));
}

/** CLOCK_MONOTONIC in µs: the probe's clock, so a mark lands on the Result's time axis. */
function monoUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

async function fire(s: RunState, t: Trigger): Promise<void> {
  s.log.info({ trigger: t.kind }, 'trigger');
  switch (t.kind) {
    case 'rules':
      await applySteps(s, planRules(s.p.runId, t.rules));
      s.marks.push({ describe: `rules ${t.rules.map((r) => r.name).join(', ')} in force`, tUs: monoUs() });
      return;
    case 'remove-rules':
      return removeRules(s, t.rules);
    case 'kill-server':
      s.applied.push(`kill -${t.signal} server`);
      return s.target!.killServer(t.signal);
    case 'server-script':
      s.applied.push(`script in the server's namespace: ${t.steps.map((x) => x.label ?? x.op).join(', ')}`);
      return startServerScript(s, t.steps);
    case 'after': {
      const dueUs = monoUs() + t.ms * 1000;
      const later = sleep(t.ms, undefined, { signal: AbortSignal.any([s.signal, s.timers.signal]) }).then(async () => {
        const marks = s.marks.length;
        await fire(s, t.trigger);
        // Late by when the action took effect (its mark), else by when it returned.
        const lateMs = ((s.marks.length > marks ? s.marks[marks]!.tUs : monoUs()) - dueUs) / 1000;
        s.log.info({ lateMs }, 'timed trigger fired');
        if (lateMs > t.budgetMs) {
          throw new HarnessError('E_TRIGGER_LATE', `a timed action took effect ${lateMs.toFixed(1)} ms after its due time (${t.ms} ms); the prediction allows ${t.budgetMs} ms`, {
            exitCode: 3,
            hint: 'the machine is too loaded to time the fault; run it alone',
          });
        }
      });
      // Interrupted (Ctrl-C), or the run ended first: the action is moot, the revert undoes what it
      // would have; the run says why it stopped.
      const settled = later.catch((e: unknown) => {
        if (!s.signal.aborted && !s.timers.signal.aborted) throw e;
      });
      settled.catch(() => undefined); // handled: settleTriggers reports it, even if the client stage broke first
      s.pending.push(settled);
      return;
    }
    case 'freeze-server':
      return freeze(s);
    case 'thaw-server':
      s.applied.push('thaw the server');
      return s.target!.thawServer?.();
    case 'all':
      for (const x of t.triggers) await fire(s, x);
  }
}

/**
 * Removes rules a trigger installed: the reverts of their steps, newest first. The jumps into the
 * run's chains go first, on both sides at once: from then on no packet meets the rules (the
 * mark); the rules and chains follow. Their journal entries stay: at the final revert iptables
 * finds nothing and says so (absent).
 */
async function removeRules(s: RunState, rules: readonly Rule[]): Promise<void> {
  const steps = planRules(s.p.runId, rules);
  const undo = async (step: FaultStep) => {
    const r = await run(inNetns(s.ns![step.side], step.revert), { reject: false });
    if (r.failed && !(step.absent && new RegExp(step.absent, 'i').test(r.stderr))) {
      throw new HarnessError('E_TRIGGER', `could not remove ${step.describe}: ${r.stderr.trim()}`, { exitCode: 3 });
    }
  };
  const bySide = SIDES.map((side) => steps.filter((x) => x.side === side).reverse()).filter((x) => x.length > 0);
  await Promise.all(bySide.map((x) => undo(x[0]!)));
  const names = rules.map((r) => r.name).join(', ');
  s.marks.push({ describe: `rules ${names} removed`, tUs: monoUs() });
  // No packet reaches the rules any more: their counters are final. Keep them for the Result
  // (the observers read the rules still in place at the end, and these will be gone).
  await Promise.all(bySide.map(async (x) => {
    const hits = await readRuleHits(s.ns![x[0]!.side], s.p.runId);
    for (const r of rules) if (r.side === x[0]!.side && hits[r.name] !== undefined) s.removedRuleHits[r.name] = (s.removedRuleHits[r.name] ?? 0) + hits[r.name]!;
    for (const step of x.slice(1)) await undo(step);
  }));
  s.applied.push(`removed rules ${names}`);
}

/** Waits for timed triggers still to fire (an outage's end), then reports the first that failed. */
export async function settleTriggers(s: RunState): Promise<void> {
  const results = await Promise.allSettled(s.pending.splice(0));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
