/** `harness run`: prepares every scenario first (bad input changes nothing), then runs them concurrently. */
import { faults } from '../../faults/index.js';
import { UsageError, type ExitCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Result } from '../verdict/result.js';
import { assertRoot, execute, prepare, type PreparedRun, type RunEnv, type RunRequest } from '../engine/runner.js';
import { entryLabel, estimateMs, loadPlan, parseShard, pool, prepareEntry, requestOf, schedule, shardOf } from '../engine/plan.js';
import { TargetRefusedError } from '../engine/prepare.js';
import type { Session } from '../core/session.js';
import { parseSysctlFlag } from '../core/sysctl.js';
import { parsePort } from '../core/port.js';
import { parseDuration, parseExpectExit, parseStrike, type ClientSpec } from '../engine/client-spec.js';
import { formatResult } from '../report/text.js';
import { NotPlayable } from '../engine/applicability.js';
import { prepareOutputs, type Outputs } from '../report/outputs.js';

export interface RunCommandOptions {
  scenarios: string[];
  all?: boolean;
  target?: string;
  sysctl?: string[];
  set?: string[];
  json?: boolean;
  pcap?: string;
  /** `--report DIR`: an HTML page per run (and an index); `--junit FILE`: a JUnit XML report. */
  report?: string;
  junit?: string;
  kernelDefaults?: boolean;
  /** Config file with the user's targets (default: harness.config.json/.yaml/… in the cwd). */
  config?: string;
  /** Raw `--port` value. */
  port?: string;
  sysctlsFrom?: string;
  /** A plan file (YAML/JSON list of runs) instead of scenario names. */
  plan?: string;
  /** `--shard I/N` of the plan. */
  shard?: string;
  /** The user's client command (after `--`). */
  clientArgv?: string[];
  clientImage?: string;
  strike?: string;
  clientTimeout?: string;
  expectExit?: string;
  expectWithin?: string;
  /** `--blocking`: the probe's connect/read/write/close block. */
  blocking?: boolean;
}

const CLIENT_FLAGS = ['clientImage', 'strike', 'clientTimeout', 'expectExit', 'expectWithin'] as const;
const FLAG_OF: Record<(typeof CLIENT_FLAGS)[number], string> = {
  clientImage: '--client-image',
  strike: '--strike',
  clientTimeout: '--client-timeout',
  expectExit: '--expect-exit',
  expectWithin: '--expect-within',
};

/** The client command and its flags, parsed (validated against the fault and target in prepare). */
export function clientSpecOf(opts: RunCommandOptions): ClientSpec | undefined {
  if (!opts.clientArgv) {
    const stray = CLIENT_FLAGS.find((f) => opts[f] !== undefined);
    if (stray) throw new UsageError(FLAG_OF[stray], 'goes with a client command', 'add the command after --, e.g. -- curl http://{host}:{port}/');
    return undefined;
  }
  const expect = {
    ...(opts.expectExit !== undefined ? { exit: parseExpectExit(opts.expectExit) } : {}),
    ...(opts.expectWithin !== undefined ? { withinMs: parseDuration(opts.expectWithin, '--expect-within') } : {}),
  };
  return {
    argv: opts.clientArgv,
    ...(opts.clientImage !== undefined ? { image: opts.clientImage } : {}),
    ...(opts.strike !== undefined ? { strike: parseStrike(opts.strike) } : {}),
    ...(opts.clientTimeout !== undefined ? { timeoutMs: parseDuration(opts.clientTimeout, '--client-timeout') } : {}),
    ...(Object.keys(expect).length ? { expect } : {}),
  };
}

/** A flag given with an empty value (`--target ''`) is a mistake, not a request for the default. */
export function assertNonEmpty(flag: string, value: string | undefined, fix: string): void {
  if (value !== undefined && value.trim() === '') throw new UsageError(flag, 'is empty', fix);
}

export function parseSetFlags(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of raw) {
    const m = /^([a-zA-Z][a-zA-Z0-9]*)=(.*)$/.exec(s);
    if (!m) throw new UsageError('--set', `"${s}" is not PARAM=VALUE`, 'write e.g. --set syncnt=3 (harness list shows each scenario\'s parameters)');
    out[m[1]!] = m[2]!;
  }
  return out;
}

type CommandEnv = RunEnv & { log: Logger; session: Session; write: (s: string) => void };

export async function runCommand(opts: RunCommandOptions, env: CommandEnv): Promise<{ exitCode: ExitCode; results: Result[] }> {
  if (opts.plan !== undefined) return runPlanCommand(opts, env);
  if (opts.shard !== undefined) throw new UsageError('--shard', 'goes with --plan', 'add --plan FILE, or drop --shard');
  const names = opts.all ? Object.keys(faults) : opts.scenarios;
  if (names.length === 0) throw new UsageError('scenario', 'no scenario given', 'name one (harness list) or pass --all');
  if (opts.all && opts.scenarios.length) throw new UsageError('--all', 'give scenario names or --all, not both', 'drop the names or --all');
  assertNonEmpty('--target', opts.target, 'name a target (harness list shows them), or leave --target out for the built-in one');
  assertNonEmpty('--pcap', opts.pcap, 'give a folder for the capture, or leave --pcap out');
  assertNonEmpty('--sysctls-from', opts.sysctlsFrom, 'give the path of a file holding `sysctl -a` output, or leave --sysctls-from out');
  const sysctls = (opts.sysctl ?? []).map((s) => parseSysctlFlag(s));
  const params = parseSetFlags(opts.set ?? []);
  const client = clientSpecOf(opts);
  if (client && names.length > 1) throw new UsageError('--', 'a client command runs under one scenario at a time', 'name one scenario');
  const out = await prepareOutputs(opts, env.write, env.log);
  // With several scenarios, --set applies to those whose schema has the parameter.
  const requests: RunRequest[] = names.map((scenario) => ({
    scenario,
    params: names.length > 1 ? pick(scenario, params) : params,
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    sysctls,
    ...(opts.kernelDefaults ? { kernelDefaults: true } : {}),
    ...(out.pcapDir ? { pcapDir: out.pcapDir } : {}),
    ...(opts.port !== undefined ? { port: parsePort(opts.port, '--port', 'give a whole number from 1 to 65535 (default 9000)') } : {}),
    ...(opts.sysctlsFrom ? { sysctlsFrom: opts.sysctlsFrom } : {}),
    ...(client ? { client } : {}),
    ...(opts.blocking ? { blocking: true } : {}),
  }));
  // The user's targets (config file), validated before anything runs.
  const { loadConfig } = await import('../engine/config.js');
  const config = await loadConfig(opts.config);
  if (Object.keys(config.targets).length) env = { ...env, targets: { ...env.targets, ...config.targets } };
  const prepared = [];
  for (const r of requests) {
    try {
      prepared.push(await prepare(r, env));
    } catch (err) {
      // --all on a target some scenarios cannot play: run the others, say which not and why.
      if (!(opts.all && (err instanceof TargetRefusedError || err instanceof NotPlayable))) throw err;
      env.log.warn({ scenario: r.scenario }, `skipped ${r.scenario}: ${err.message.replace(/^--target: /, '')}`);
    }
  }
  if (prepared.length === 0) throw new UsageError('--target', `no scenario runs on target ${opts.target}`, 'pick another target (harness list shows what each scenario needs: "on your server")');
  const report = prepared[0]?.sysctlsFrom;
  if (report) {
    env.log.info({ file: report.file, applied: Object.keys(report.applied).length }, 'production sysctls applied in both namespaces');
    for (const s of report.skipped) env.log.warn({ key: s.key, value: s.value }, `--sysctls-from: not applied: ${s.reason}`);
  }
  await assertRoot();
  // The same choice a plan makes: longest first, as many at once as the machine affords.
  const { ordered, concurrency, setupGate, watchIntervalMs, why } = await schedule(prepared);
  if (concurrency < prepared.length) env.log.info({ runs: prepared.length, concurrency, watchIntervalMs }, `${prepared.length} runs, ${concurrency} at a time (${why})`);
  return runPrepared(ordered, concurrency, { ...env, setupGate, watchIntervalMs: env.watchIntervalMs ?? watchIntervalMs }, opts, out);
}

/** Runs the prepared runs, at most `concurrency` at once; results, pages, JUnit and progress lines as they end. */
async function runPrepared(prepared: readonly PreparedRun[], concurrency: number, env: CommandEnv, opts: RunCommandOptions, out: Outputs): Promise<{ exitCode: ExitCode; results: Result[] }> {
  const runEnv = out.start(env, prepared.map((p) => ({ runId: p.runId, scenario: p.name ?? p.fault.name })));
  const results = await pool(prepared, concurrency, async (p) => {
    const r = await execute(p, runEnv);
    out.print(r.runId, opts.json ? `${JSON.stringify(r)}\n` : formatResult(r));
    await out.afterRun(r);
    return r;
  }).finally(() => out.stop());
  await out.finish(results);
  return { exitCode: exitCodeOf(results), results };
}


/** `harness run --plan FILE [--shard I/N]`: every entry prepared (validated) before any runs. */
async function runPlanCommand(opts: RunCommandOptions, env: CommandEnv): Promise<{ exitCode: ExitCode; results: Result[] }> {
  const stray = opts.all ? '--all' : opts.scenarios.length ? 'scenario' : opts.set?.length ? '--set' : opts.sysctl?.length ? '--sysctl' : opts.clientArgv ? '--' : opts.target ? '--target' : undefined;
  if (stray) throw new UsageError(stray, 'does not go with --plan: the plan says what each run is', 'put it in the plan entry instead');
  const shard = opts.shard !== undefined ? parseShard(opts.shard) : undefined;
  const file = opts.plan!;
  const entries = await loadPlan(file);
  const out = await prepareOutputs(opts, env.write, env.log);
  const { loadConfig } = await import('../engine/config.js');
  const config = await loadConfig(opts.config);
  const targets = { ...env.targets, ...config.targets };
  const prepared: PreparedRun[] = [];
  for (const [i, e] of entries.entries()) {
    const label = entryLabel(e, i);
    const req = { ...requestOf(e, i, file), ...(out.pcapDir ? { pcapDir: out.pcapDir } : {}) };
    prepared.push({ ...(await prepareEntry(label, file, () => prepare(req, { targets }))), name: label });
  }
  const estimates = await Promise.all(prepared.map((p) => estimateMs(p)));
  const mine = shard ? shardOf(prepared, estimates, shard.count, shard.index) : prepared;
  await assertRoot();
  const { ordered, concurrency, setupGate, watchIntervalMs, why } = await schedule(mine, mine.map((p) => estimates[prepared.indexOf(p)]!));
  env.log.info({ plan: file, runs: ordered.length, of: prepared.length, ...(shard ? { shard: `${shard.index}/${shard.count}` } : {}), concurrency, watchIntervalMs }, `plan: ${ordered.length} runs${shard ? ` (shard ${shard.index}/${shard.count} of ${prepared.length})` : ''}, ${concurrency} at a time (${why})`);
  return runPrepared(ordered, concurrency, { ...env, setupGate, watchIntervalMs: env.watchIntervalMs ?? watchIntervalMs }, opts, out);
}

/**
 * The exit code of a batch: 3 if a run broke (environment), else 1 if the kernel contradicted the
 * model anywhere, else 4 if a check failed only on a machine too loaded to judge (inconclusive:
 * not 0 — nothing was proven — and not 1 — nothing shows the kernel wrong; CI can re-run on 4),
 * else 0.
 */
export function exitCodeOf(results: readonly Pick<Result, 'verdict'>[]): ExitCode {
  if (results.some((r) => r.verdict === 'error')) return 3;
  if (results.some((r) => r.verdict === 'fail')) return 1;
  if (results.some((r) => r.verdict === 'inconclusive')) return 4;
  return 0;
}

function pick(scenario: string, params: Record<string, string>): Record<string, string> {
  const f = (faults as Record<string, { params: { shape: Record<string, unknown> } }>)[scenario];
  if (!f) return params;
  return Object.fromEntries(Object.entries(params).filter(([k]) => k in f.params.shape));
}
