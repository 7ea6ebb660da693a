/**
 * The scenario runner: one run = one runId, a short pipeline of named stages. Each stage does
 * one job and leaves what it found in the run's state; a failure at any stage still yields a
 * Result with everything gathered up to there, and the revert always runs.
 *
 *   target → sysctls → observe → calibrate → expect → fault → client → collect → check → judge
 *   (→ hook) → revert
 *
 * `calibrate` measures how late this machine wakes the probe (started when the run starts; the
 * watcher already polls while it runs, as it will during the scenario), and the model widens
 * every window by it; `judge`, after a failed check only, measures again and calls the verdict
 * `inconclusive` when the machine was too loaded to tell a wrong kernel from a late wake-up.
 *
 * With the user's own client command, `expect` predicts what the kernel does to any connection
 * under the fault, `client` runs the command (striking mid-connection faults when its connection
 * is ESTABLISHED), and `check` explains each connection it made against that prediction.
 */
import type { Trigger } from '../../faults/define.js';
import type { StartedTarget, TargetSpec } from '../../targets/target.js';
import { HarnessError } from '../core/errors.js';
import { Journal } from '../core/journal.js';
import { silentLogger, type Logger } from '../core/log.js';
import { Session } from '../core/session.js';
import { DEFAULT_WATCH_INTERVAL_MS, watchLagMs } from '../model/watch.js';
import { clientChecks, connectionsOf, explainConnection, summarize } from '../verdict/client.js';
import type { Expectation } from '../verdict/expectation.js';
import type { Result } from '../verdict/result.js';
import { startObservers } from './observers/index.js';
import { assertRoot, prepare, type PreparedRun, type RunRequest } from './prepare.js';
import { evaluateRun, observedOf, runError, toResult, type RunState, type StageName } from './run-state.js';
import { driveClient } from './stages/client.js';
import { applyPlan, deriveExpectation, readQdiscHits } from './stages/fault.js';
import { takeTurn, type Gate } from './plan.js';
import { finishServerScripts } from './stages/server-script.js';
import { calibrate, judge } from './stages/calibrate.js';
import { configureSysctls, startTarget } from './stages/target.js';
import { driveUserClient, plannedStrike, strikesMidConnection } from './stages/user-client.js';

export type { StageName } from './run-state.js';
export { assertRoot, newRunId, paramNames, prepare, type PreparedRun, type RunRequest } from './prepare.js';

export interface RunEnv {
  log?: Logger;
  session?: Session;
  /** Extra targets by name (from a config file). */
  targets?: Record<string, TargetSpec>;
  /**
   * State watchers' poll interval (default 5 ms). Each poll is a sock_diag dump costing ~0.4 ms
   * of kernel time here, so a large concurrent batch polls every 10 ms to keep two cores free
   * enough for the timers it measures.
   */
  watchIntervalMs?: number;
  /**
   * Admits a run's set-up (target → fault): a batch passes one limiter (p-limit) to all its runs
   * so that only a few set up at once, in the batch's order, while many wait on the kernel's
   * timers. Without it every run of a batch sets up at once and the first (longest) runs start
   * their scenarios as late as the last.
   */
  setupGate?: Gate;
  /** Told when a run enters each stage (progress lines; tests that interrupt a run at a given stage). */
  onStage?(stage: StageName, runId: string): void;
  /** Told the model's expectation as soon as it is derived (a progress line's predicted end). */
  onExpected?(runId: string, expected: Expectation): void;
  /**
   * Called once the probe's script has ended and its observations are collected, while the fault
   * is still in force (before revert): e.g. to run a real client (curl, redis-cli) in the client
   * namespace and compare what it reports with the probe. Its time is not counted in `timing`.
   */
  duringFault?(run: { runId: string; target: StartedTarget; result: Omit<Result, 'revert' | 'timing'> }): Promise<void>;
}

async function startObserving(s: RunState): Promise<void> {
  s.observers = await startObservers(s.journal, {
    runId: s.p.runId,
    name: `${s.p.fault.name}-${s.p.runId}`,
    ns: s.ns!,
    port: s.target!.endpoints.port,
    ipv4Only: s.target!.ipv4Only,
    watchIntervalMs: s.watchIntervalMs,
    ruleSides: () => s.ruleSides,
    ...(s.p.pcapDir ? { pcapDir: s.p.pcapDir } : {}),
  });
}

async function collect(s: RunState): Promise<void> {
  s.observed = await s.observers!.stop();
  Object.assign(s.observed.rulesHit, await readQdiscHits(s));
  for (const [name, n] of Object.entries(s.removedRuleHits)) s.observed.rulesHit[name] = (s.observed.rulesHit[name] ?? 0) + n;
  s.processReports = [];
  for (const p of s.processes) s.processReports.push({ describe: p.describe, report: await p.stop() });
  const calls = s.target!.serverSteps?.();
  if (calls) s.serverSteps = calls;
}

async function check(s: RunState): Promise<void> {
  const { checks, verdict, answers } = evaluateRun(s, s.expected!);
  s.checks = checks;
  s.verdict = verdict;
  s.answers = answers;
}

/** The user's own client: what the kernel would do to its connections under this fault. */
async function predictConnection(s: RunState): Promise<void> {
  await deriveExpectation(s);
  s.prediction = s.p.fault.connection!(s.ctx!, s.expected!);
  // The probe's step windows do not apply to another client: the proof is the rules and the connections.
  s.expected = { steps: {}, because: [...(s.expected!.because ?? []), `a connection: ${s.prediction.because}`] };
}

async function checkClient(s: RunState): Promise<void> {
  const { rulesHit, states } = observedOf(s);
  const { address, port } = s.target!.endpoints;
  const lagMs = watchLagMs(s.ctx!.clock, s.watchIntervalMs);
  const explained = connectionsOf(states.client, `${address}:${port}`).map((c) => explainConnection(c, s.prediction!, { lagMs, ...(s.struck ? { strikeMs: s.struck.atMs, strikeSpanMs: s.struck.firedMs } : {}) }));
  const ruleNames = (s.p.fault.plan(s.ctx!).rules ?? []).map((r) => r.name);
  if (s.struck) for (const t of Object.values(s.p.fault.triggers ?? {})) ruleNames.push(...triggerRules(t(s.ctx!)));
  const strike = strikesMidConnection(s) ? { planned: plannedStrike(s), ...(s.struck ? { struck: s.struck } : {}) } : undefined;
  s.checks = clientChecks(explained, rulesHit, ruleNames, s.clientRun!, s.p.client!.expect ?? {}, { ...(s.prediction ? { prediction: s.prediction } : {}), ...(strike ? { strike } : {}) });
  s.verdict = s.checks.every((c) => c.pass) ? 'pass' : 'fail';
  s.client = {
    ...s.clientRun!,
    ...(s.struck ? { struck: s.struck } : {}),
    prediction: s.prediction!,
    connections: explained.map((e) => ({ ...e.connection, explanation: e.line, endedBy: e.endedBy, ...(e.windowMs ? { windowMs: e.windowMs } : {}) })),
    summary: summarize(explained, s.prediction!.fleeting ? Math.max(0, ...ruleNames.map((n) => rulesHit[n] ?? 0)) : undefined),
  };
}

function triggerRules(t: Trigger): string[] {
  if (t.kind === 'rules') return t.rules.map((r) => r.name);
  if (t.kind === 'all') return t.triggers.flatMap(triggerRules);
  return t.kind === 'after' ? triggerRules(t.trigger) : [];
}

type Stage = readonly [StageName, (s: RunState) => Promise<void>];

const PROBE_STAGES: readonly Stage[] = [
  ['target', startTarget],
  ['sysctls', configureSysctls],
  ['observe', startObserving],
  ['calibrate', calibrate],
  ['expect', deriveExpectation],
  ['fault', applyPlan],
  ['client', driveClient],
  ['collect', collect],
  ['check', check],
  ['judge', judge],
];

const CLIENT_STAGES: readonly Stage[] = [
  ['target', startTarget],
  ['sysctls', configureSysctls],
  ['observe', startObserving],
  ['calibrate', calibrate],
  ['expect', predictConnection],
  ['fault', applyPlan],
  ['client', driveUserClient],
  ['collect', collect],
  ['check', checkClient],
  ['judge', judge],
];

/** Runs one prepared scenario. Never throws for a failing scenario: that is a Result with verdict "fail" (or "error"). */
export async function execute(p: PreparedRun, env: RunEnv = {}): Promise<Result> {
  const session = env.session ?? new Session();
  return session.track(pipeline(p, env, session));
}

async function pipeline(p: PreparedRun, env: RunEnv, session: Session): Promise<Result> {
  const turn = takeTurn(env.setupGate);
  const tQueued = performance.now();
  const log = (env.log ?? silentLogger).child({ runId: p.runId, scenario: p.fault.name });
  const journal = await Journal.create(p.runId, log).catch((err: unknown) => {
    turn.release();
    throw err;
  });
  session.add(journal);
  const s: RunState = {
    p,
    log,
    journal,
    signal: session.signal,
    watchIntervalMs: env.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS,
    stage: 'target',
    applied: [],
    marks: [],
    removedRuleHits: {},
    timers: new AbortController(),
    processes: [],
    ruleSides: new Set(),
    inForce: {},
    pending: [],
    t: { start: performance.now(), hookMs: 0, stages: {} },
  };
  const stages = p.client ? CLIENT_STAGES : PROBE_STAGES;
  const setUp = stages.findIndex(([name]) => name === 'client');
  const runStages = async (some: readonly Stage[]): Promise<void> => {
    for (const [name, stage] of some) {
      s.stage = name;
      env.onStage?.(name, p.runId);
      // A signal stops the run between stages: what a stage in flight creates is journaled, so
      // the revert below undoes it too.
      if (s.signal.aborted) throw new HarnessError('E_INTERRUPTED', `interrupted before stage ${name}`, { exitCode: 3 });
      const t0 = performance.now();
      await stage(s);
      s.t.stages[name] = performance.now() - t0;
      if (name === 'expect') env.onExpected?.(p.runId, s.expected!);
      if (name === 'fault') s.t.setupDone = performance.now();
      if (name === 'client') s.t.scenarioDone = performance.now();
    }
  };
  try {
    try {
      await turn.admitted;
      // The run's own time starts when its set-up is admitted; the wait before is queuedMs.
      s.t.start = performance.now();
      s.t.queuedMs = s.t.start - tQueued;
      await runStages(stages.slice(0, setUp));
    } finally {
      turn.release();
    }
    await runStages(stages.slice(setUp));
    if (env.duringFault && !s.signal.aborted) {
      s.stage = 'hook';
      const tHook = performance.now();
      const { revert: _r, timing: _t, ...partial } = toResult(s, { reverted: 0, failed: [] }, tHook);
      await env.duringFault({ runId: p.runId, target: s.target!, result: partial });
      s.t.hookMs = performance.now() - tHook;
    }
  } catch (err) {
    s.t.scenarioDone ??= performance.now();
    s.error = runError(err, s.stage);
    // A stage that failed once the run was interrupted failed because of it (a process the signal
    // killed before it printed): the interruption is the run's error, the stage's own in its message.
    if (s.signal.aborted && s.error.code !== 'E_INTERRUPTED') {
      s.error = { code: 'E_INTERRUPTED', message: `interrupted during stage ${s.stage} (then ${s.error.code}: ${s.error.message})`, stage: s.stage };
    }
    log.error({ err, stage: s.stage }, 'run failed');
    // Keep what the observers saw up to the failure.
    if (s.observers && !s.observed) s.observed = await s.observers.stop().catch(() => undefined);
  }
  // A server script a trigger left holding (a run that broke before its client finished) ends
  // before its namespace goes.
  await finishServerScripts(s).catch((err: unknown) => log.warn({ err }, 'a script in the server namespace failed'));
  // Reached on success, failure and interruption alike; the session reverts each journal once.
  s.timers.abort();
  const tRevert = performance.now();
  const revert = await session.revert(journal);
  s.t.stages.revert = performance.now() - tRevert;
  if (revert.failed.length) log.error({ failed: revert.failed }, 'some changes could not be reverted: run `harness gc`');
  return toResult(s, revert, performance.now());
}

/** prepare + execute, for library users: `await runScenario({ scenario: 'syn-drop' })`. */
export async function runScenario(req: RunRequest, env: RunEnv = {}): Promise<Result> {
  await assertRoot();
  return execute(await prepare(req, env), env);
}
