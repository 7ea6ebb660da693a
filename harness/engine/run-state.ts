/**
 * What a run has gathered so far. Each stage of the pipeline fills in its part; the Result is
 * built from whatever is there, so a run that breaks at any stage still reports the sysctls,
 * steps, states and counters it collected before it broke.
 */
import type { FaultContext } from '../../faults/define.js';
import type { StartedTarget } from '../../targets/target.js';
import { HarnessError } from '../core/errors.js';
import type { Journal, RevertReport } from '../core/journal.js';
import type { Logger } from '../core/log.js';
import type { Netns } from '../core/netns.js';
import type { ClientStep, ProbeClientOutput, ServerStep } from '../core/probe.js';
import type { Side, SidedSysctls, SysctlMap } from '../core/sysctl.js';
import type { ConnectionPrediction, Expectation } from '../verdict/expectation.js';
import type { Calibration, CalibrationReport } from '../model/calibration.js';
import { watchLagMs } from '../model/watch.js';
import { evaluate } from '../verdict/checks.js';
import type { Answer, Check, ClientResult, Result, StateSample, StepResult, Verdict } from '../verdict/result.js';
import type { Observations, Observers } from './observers/index.js';
import type { Qdisc } from '../../faults/tc.js';
import type { SocketEvent } from './observers/states.js';
import type { PreparedRun } from './prepare.js';

/** A probe script run in the server's namespace by a trigger: held at its barrier until the client's script ends. */
export interface ServerScriptRun {
  steps: ClientStep[];
  output?: ProbeClientOutput;
  release(): void;
  done: Promise<void>;
}

/** The stages of a run, in order; a failed run says at which one it broke. */
export type StageName = 'target' | 'sysctls' | 'observe' | 'calibrate' | 'expect' | 'fault' | 'client' | 'collect' | 'check' | 'judge' | 'hook';

export interface RunState {
  readonly p: PreparedRun;
  readonly log: Logger;
  readonly journal: Journal;
  /** Aborted by Ctrl-C/SIGTERM: the pipeline stops at the next stage and reverts. */
  readonly signal: AbortSignal;
  readonly watchIntervalMs: number;
  stage: StageName;
  /** Descriptions of the changes the fault made, in order (shown in the Result). */
  readonly applied: string[];
  /** Moments a trigger changed the fault (rules in force, removed), on the probe's clock (µs). */
  readonly marks: { describe: string; tUs: number }[];
  /** Processes the fault runs (the delayer): stopped at collect, their last line is their report. */
  readonly processes: { describe: string; stop(): Promise<Record<string, unknown> | undefined> }[];
  /** Packet counts of rules a trigger removed mid-run (read as they went), added to the rule hits. */
  readonly removedRuleHits: Record<string, number>;
  /** Aborted when the run ends, so a timed trigger never outlives it (a run broken mid-outage). */
  readonly timers: AbortController;
  /** Timed triggers still to fire (the end of an outage): the client stage waits for them. */
  readonly pending: Promise<void>[];
  /** The plan's qdiscs and the device each went on (their statistics are read at collect). */
  qdiscs?: { q: Qdisc; index: number; dev: string }[];
  /** What each process reported when it was stopped. */
  processReports?: { describe: string; report: Record<string, unknown> | undefined }[];
  target?: StartedTarget;
  ns?: Record<Side, Netns>;
  /** Values in force, read back from each namespace. */
  sysctls?: SidedSysctls;
  /** How late this machine wakes the probe (stage `calibrate`, again in `judge` after a failed check). */
  calibration?: CalibrationReport;
  /** The wake-up calibration, started when the run starts (it runs beside the target's start). */
  calibrating?: Promise<Calibration>;
  /** The sysctls in force on each side the target configured (read as they were set). */
  readonly inForce: Partial<Record<Side, SysctlMap>>;
  /** The sides the run put iptables rules in (their hits are read at collect). */
  readonly ruleSides: Set<Side>;
  ctx?: FaultContext<Record<string, unknown>>;
  expected?: Expectation;
  script?: ClientStep[];
  observers?: Observers;
  probe?: ProbeClientOutput;
  /** Scripts triggers ran in the server's namespace (stages/server-script.ts). */
  serverScripts?: ServerScriptRun[];
  /** The clock (CLOCK_MONOTONIC µs) of t = 0: the first probe step, or the user's client start. */
  t0Us?: number;
  /** The user's own client: what the kernel would do to its connections, how it ended, when the fault struck. */
  prediction?: ConnectionPrediction;
  clientRun?: Omit<ClientResult, 'prediction' | 'connections' | 'summary' | 'struck'>;
  struck?: { atMs: number; firedMs: number; why: string };
  client?: ClientResult;
  observed?: Observations;
  /** The built-in server's syscalls, collected with the observations (targets that report them). */
  serverSteps?: ServerStep[];
  /** What the server did, where the scenario asks. */
  answers?: Answer[];
  checks?: Check[];
  verdict?: Verdict;
  error?: { code: string; message: string; stage: StageName };
  /** performance.now() marks. */
  t: { start: number; queuedMs?: number; setupDone?: number; scenarioDone?: number; hookMs: number; stages: Partial<Record<StageName | 'revert', number>> };
}

/** The run's own failure (not a verdict): the error, named, with the stage it broke in. */
export function runError(err: unknown, stage: StageName): { code: string; message: string; stage: StageName } {
  if (err instanceof HarnessError) return { code: err.code, message: err.message, stage };
  return { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err), stage };
}

function ms(us: number, t0Us: number): number {
  return Math.round((us - t0Us) / 10) / 100;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function toSamples(events: readonly SocketEvent[], t0Us: number): StateSample[] {
  return events.map(({ tUs, ...e }) => ({ tMs: ms(tUs, t0Us), ...e }));
}

/** The probe's steps on the Result's clock (ms from the first step), with the script's labels. */
export function toSteps(out: ProbeClientOutput, script: readonly ClientStep[], t0Us: number, side?: 'server'): StepResult[] {
  return out.steps.map((s) => {
    const label = script[s.i]?.label;
    const r: StepResult = {
      ...(side ? { side } : {}),
      ...(label ? { label } : {}),
      op: s.op,
      ...(s.sock !== undefined ? { sock: s.sock } : {}),
      ok: s.ok,
      errno: s.errno,
      startMs: ms(s.startUs, t0Us),
      endMs: ms(s.endUs, t0Us),
      durationMs: Math.round((s.endUs - s.startUs) / 10) / 100,
    };
    if (s.timedOut !== undefined) r.timedOut = s.timedOut;
    if (s.bytes !== undefined) r.bytes = s.bytes;
    if (s.eof !== undefined) r.eof = s.eof;
    if (s.events) r.events = s.events;
    if (s.tcp !== undefined) r.tcp = s.tcp;
    if (s.blocking) r.blocking = true;
    return r;
  });
}

/** The built-in server's syscalls on the Result's clock. */
export function toServerSteps(steps: readonly ServerStep[], t0Us: number): StepResult[] {
  return steps.map((s) => ({
    op: s.op,
    ok: s.ok,
    errno: s.errno,
    startMs: ms(s.startUs, t0Us),
    endMs: ms(s.endUs, t0Us),
    durationMs: Math.round((s.endUs - s.startUs) / 10) / 100,
    ...(s.bytes ? { bytes: s.bytes } : {}),
    ...(s.eof ? { eof: true } : {}),
  }));
}

/** The observations on the Result's time axis: t = 0 is the first client step. */
export function observedOf(s: RunState): Pick<Result, 'steps' | 'states' | 'counters' | 'serverSteps'> & { rulesHit: Record<string, number> } {
  const t0Us = s.t0Us ?? s.probe?.steps[0]?.startUs ?? 0;
  const client = s.probe && s.script ? toSteps(s.probe, s.script, t0Us) : [];
  const server = (s.serverScripts ?? []).flatMap((r) => (r.output ? toSteps(r.output, r.steps, t0Us, 'server') : []));
  // One time line: a server script's steps fall between the client steps around its barrier.
  const steps = server.length ? [...client, ...server].sort((a, b) => a.startMs - b.startMs) : client;
  const ev = s.observed?.events;
  return {
    steps,
    ...(s.serverSteps ? { serverSteps: toServerSteps(s.serverSteps, t0Us) } : {}),
    states: { client: toSamples(ev?.client ?? [], t0Us), server: toSamples(ev?.server ?? [], t0Us) },
    counters: s.observed?.counters ?? { client: {}, server: {} },
    rulesHit: s.observed?.rulesHit ?? {},
  };
}

/** The checks of `expected` against what the run observed, on the clock of `ctx` (the run's, unless given). */
export function evaluateRun(s: RunState, expected: Expectation, ctx = s.ctx!): ReturnType<typeof evaluate> {
  const { rulesHit, ...o } = observedOf(s);
  return evaluate(expected, { ...o, rulesHit, watchLagMs: watchLagMs(ctx.clock, s.watchIntervalMs), jiffyMs: 1000 / ctx.clock.hz });
}

/** The Result of a run, complete or broken, once it has been reverted. */
export function toResult(s: RunState, revert: RevertReport, tEnd: number): Result {
  const { p, target } = s;
  const setupDone = s.t.setupDone ?? s.t.scenarioDone ?? tEnd;
  const scenarioDone = s.t.scenarioDone ?? setupDone;
  const { rulesHit, ...observed } = observedOf(s);
  const captures = s.observed?.captures ?? [];
  return {
    version: 1,
    runId: p.runId,
    ...(p.name ? { name: p.name } : {}),
    scenario: p.fault.name,
    params: p.params,
    target: {
      name: target?.name ?? p.target.name,
      backend: target?.backend ?? p.target.backend,
      address: target?.endpoints.address ?? '',
      port: target?.endpoints.port ?? 0,
    },
    sysctls: s.sysctls ?? { client: {}, server: {} },
    ...(s.p.blocking ? { api: 'blocking' as const } : {}),
    ...(s.calibration ? { calibration: s.calibration } : {}),
    ...observed,
    ...(s.answers?.length ? { answers: s.answers } : {}),
    fault: {
      rulesHit,
      applied: s.applied,
      ...(s.marks.length ? { marks: s.marks.map((m) => ({ describe: m.describe, tMs: ms(m.tUs, s.t0Us ?? s.probe?.steps[0]?.startUs ?? 0) })) } : {}),
      ...(s.processReports?.length ? { processes: s.processReports } : {}),
    },
    expected: s.expected ?? { steps: {} },
    checks: s.checks ?? [],
    verdict: s.error ? 'error' : (s.verdict ?? 'error'),
    ...(s.error ? { error: s.error } : {}),
    ...(s.client ? { client: s.client } : {}),
    ...(captures.length ? { pcap: captures[0]!.file, captures } : {}),
    timing: {
      setupMs: round1(setupDone - s.t.start),
      scenarioMs: round1(scenarioDone - setupDone),
      teardownMs: round1(tEnd - scenarioDone - s.t.hookMs),
      stagesMs: Object.fromEntries(Object.entries(s.t.stages).map(([k, v]) => [k, round1(v)])),
      ...(s.t.queuedMs ? { queuedMs: round1(s.t.queuedMs) } : {}),
    },
    revert,
  };
}
