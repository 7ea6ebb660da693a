/**
 * The scenario runner: one run = one runId. It prepares (validates everything, changes nothing),
 * then brings up the target, applies sysctls and the fault (each change journaled before it is
 * made), observes both sides while the probe runs the client script, derives the expectation from
 * the sysctls in force, checks, and always reverts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { faults, isFaultName, type FaultName } from '../../faults/index.js';
import type { Expectation, FaultContext, FaultDefinition, FaultStep, Trigger } from '../../faults/define.js';
import { planRules } from '../../faults/iptables.js';
import { builtinTargets, DEFAULT_TARGET } from '../../targets/index.js';
import type { StartedTarget, TargetSpec } from '../../targets/target.js';
import { evaluate } from '../verdict/checks.js';
import { EnvironmentError, HarnessError, UsageError } from '../core/errors.js';
import { inNetns, run, spawnLong, withTimeout } from '../core/exec.js';
import { Journal, processStartTicks } from '../core/journal.js';
import { kernelFacts } from '../core/kernel.js';
import { silentLogger, type Logger } from '../core/log.js';
import { assertNotHost, type Netns } from '../core/netns.js';
import { counterDelta, readCounters, type Counters } from './observers/counters.js';
import { readRuleHits } from './observers/rules.js';
import { startStateWatcher, type SocketEvent, type StateWatcher } from './observers/states.js';
import { parseProbeOutput, probeArgv, probeScript, type ClientStep, type ProbeClientOutput } from '../core/probe.js';
import type { Result, StateSample, StepResult } from '../verdict/result.js';
import { Session } from '../core/session.js';
import { readSysctlsFrom, type SysctlsFromReport } from '../core/sysctls-from.js';
import { applySysctls, namespacedKeys, readSysctls, SIDES, validateKeys, validateValues, type Side, type SidedSysctls, type SysctlSetting } from '../core/sysctl.js';

type AnyFault = FaultDefinition<z.ZodObject>;

export interface RunRequest {
  scenario: string;
  /** Raw `--set` values, validated against the fault's schema. */
  params?: Record<string, unknown>;
  /** A target spec, or a built-in target's name. Default: the built-in target. */
  target?: TargetSpec | string;
  sysctls?: SysctlSetting[];
  /** Skip the fault's fast sysctls: reproduce with the kernel's defaults (minutes-long timers). */
  kernelDefaults?: boolean;
  /** Write a packet capture of the client namespace here. */
  pcapDir?: string;
  /** Port of a built-in target (default 9000). */
  port?: number;
  /** A production machine's `sysctl -a`: its TCP settings go into both namespaces. */
  sysctlsFrom?: string;
}

export interface PreparedRun {
  runId: string;
  fault: AnyFault;
  params: Record<string, unknown>;
  target: TargetSpec;
  sysctls: SidedSysctls;
  pcapDir?: string;
  port?: number;
  /** What --sysctls-from applied and what it could not. */
  sysctlsFrom?: SysctlsFromReport;
}

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
   * Called once the probe's script has ended and its observations are collected, while the fault
   * is still in force (before revert): e.g. to run a real client (curl, redis-cli) in the client
   * namespace and compare what it reports with the probe. Its time is not counted in `timing`.
   */
  duringFault?(run: { runId: string; target: StartedTarget; result: Omit<Result, 'revert' | 'timing'> }): Promise<void>;
}

export function newRunId(): string {
  // 6 base-36 chars: short enough for 15-char interface names (`harness<runId>c`).
  const n = randomBytes(5).readUIntBE(0, 5);
  return n.toString(36).padStart(8, '0').slice(-6);
}

export async function assertRoot(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError('E_NOT_ROOT', 'the harness must run as root (it makes network namespaces and iptables rules)', 'run it with sudo, or as root in CI');
  }
}

/** Validates a request completely. Changes nothing. Throws UsageError naming the flag. */
export async function prepare(req: RunRequest, env: RunEnv = {}): Promise<PreparedRun> {
  if (!isFaultName(req.scenario)) {
    throw new UsageError('scenario', `unknown scenario "${req.scenario}"`, `one of: ${Object.keys(faults).join(', ')} (harness list)`);
  }
  const fault = faults[req.scenario as FaultName] as unknown as AnyFault;
  const parsed = fault.params.strict().safeParse(req.params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || Object.keys(req.params ?? {}).join(',');
    throw new UsageError('--set', `${req.scenario}: ${key}: ${issue.message}`, `parameters of ${req.scenario}: ${paramNames(fault)}`);
  }
  const params = parsed.data as Record<string, unknown>;
  let target: TargetSpec;
  if (typeof req.target === 'object') target = req.target;
  else {
    const name = req.target ?? DEFAULT_TARGET;
    const all = { ...builtinTargets, ...env.targets };
    const t = all[name];
    if (!t) throw new UsageError('--target', `unknown target "${name}"`, `one of: ${Object.keys(all).join(', ')}, or define it in harness.config.json`);
    target = t;
  }
  // Docker up, image present (or built): checked now, before anything of the run exists.
  await target.check?.();
  if (req.port !== undefined && !(Number.isInteger(req.port) && req.port >= 1 && req.port <= 65535)) {
    throw new UsageError('--port', `${req.port} is not a TCP port`, 'give a whole number from 1 to 65535 (default 9000)');
  }
  const fast = req.kernelDefaults ? {} : fault.fastSysctls(params);
  // Precedence: the fault's fast values < a production dump < explicit --sysctl flags.
  const prod = req.sysctlsFrom ? await readSysctlsFrom(req.sysctlsFrom, await namespacedKeys()) : undefined;
  const sysctls: SidedSysctls = {
    client: { ...fast.client, ...prod?.applied },
    server: { ...fast.server, ...prod?.applied },
  };
  for (const s of req.sysctls ?? []) sysctls[s.side][s.key] = s.value;
  await validateKeys([...Object.keys(sysctls.client), ...Object.keys(sysctls.server)]);
  for (const side of SIDES) await validateValues(sysctls[side]);
  return {
    runId: newRunId(),
    fault,
    params,
    target,
    sysctls,
    ...(req.pcapDir ? { pcapDir: resolve(req.pcapDir) } : {}),
    ...(req.port !== undefined ? { port: req.port } : {}),
    ...(prod ? { sysctlsFrom: prod } : {}),
  };
}

export function paramNames(fault: AnyFault): string {
  const keys = Object.keys(fault.params.shape);
  return keys.length ? keys.join(', ') : '(none)';
}

function ms(us: number, t0Us: number): number {
  return Math.round((us - t0Us) / 10) / 100;
}

function toSamples(events: SocketEvent[], t0Us: number): StateSample[] {
  return events.map(({ tUs, ...e }) => ({ tMs: ms(tUs, t0Us), ...e }));
}

function toSteps(out: ProbeClientOutput, script: readonly ClientStep[], t0Us: number): StepResult[] {
  return out.steps.map((s) => {
    const r: StepResult = {
      ...(script[s.i]?.label ? { label: script[s.i]!.label } : {}),
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
    return r;
  });
}

/** Runs one prepared scenario. Never throws for a failing scenario: that is a Result with verdict "fail". */
export async function execute(p: PreparedRun, env: RunEnv = {}): Promise<Result> {
  const log = (env.log ?? silentLogger).child({ runId: p.runId, scenario: p.fault.name });
  const session = env.session ?? new Session();
  const tStart = performance.now();
  const journal = await Journal.create(p.runId, log);
  session.add(journal);
  const applied: string[] = [];
  let target: StartedTarget | undefined;
  let tSetupDone = tStart;
  let tScenarioDone = tStart;
  let hookMs = 0;
  let partial: Omit<Result, 'revert' | 'timing'> | undefined;
  let error: { code: string; message: string } | undefined;
  try {
    const clock = await kernelFacts();
    log.info({ target: p.target.name }, 'starting target');
    const configured = new Set<Side>();
    target = await p.target.start({
      runId: p.runId,
      journal,
      log,
      server: p.fault.server(p.params),
      ...(p.port !== undefined ? { port: p.port } : {}),
      configureNetns: async (side, ns) => {
        await assertNotHost(ns);
        await applySysctls(journal, ns, p.sysctls[side]);
        configured.add(side);
      },
    });
    const nsOf: Record<Side, Netns> = { client: target.client, server: target.server };
    await Promise.all(SIDES.map((s) => assertNotHost(nsOf[s])));
    // A target that did not call configureNetns (a user's own TargetSpec) gets its sysctls now.
    for (const side of SIDES) if (!configured.has(side)) await applySysctls(journal, nsOf[side], p.sysctls[side]);
    const sysctls = {} as SidedSysctls;
    for (const side of SIDES) {
      const keys = [...new Set([...Object.keys(p.sysctls[side]), ...(p.fault.shapedBy[side] ?? [])])];
      sysctls[side] = await readSysctls(nsOf[side], keys);
    }
    const watchIntervalMs = env.watchIntervalMs ?? 5;
    const ctx: FaultContext<Record<string, unknown>> = { runId: p.runId, params: p.params, endpoints: target.endpoints, sysctls, clock, watchIntervalMs };
    const expected: Expectation = p.fault.expect(ctx);
    const script = p.fault.script(ctx, expected);

    const watchers = {} as Record<Side, StateWatcher>;
    for (const side of SIDES) watchers[side] = await startStateWatcher(journal, nsOf[side], target.endpoints.port, { ipv4Only: target.ipv4Only[side], intervalMs: watchIntervalMs });
    const before = {} as Record<Side, Counters>;
    for (const side of SIDES) before[side] = await readCounters(watchers[side].pid);

    const plan = p.fault.plan(ctx);
    await applyFaultSteps(journal, nsOf, [...planRules(p.runId, plan.rules ?? []), ...(plan.steps ?? [])], applied);
    const pcap = p.pcapDir ? await startPcap(journal, target.client, p.pcapDir, p.runId, p.fault.name) : undefined;
    tSetupDone = performance.now();
    log.info({ applied: applied.length, because: expected.because }, 'fault applied; running the client');

    const out = await runScript(target, nsOf, script, async (name) => {
      const trig = p.fault.triggers?.[name];
      if (!trig) throw new HarnessError('E_TRIGGER', `${p.fault.name} has no trigger "${name}"`, { exitCode: 3 });
      await fire(journal, nsOf, target!, p.runId, trig(ctx), applied, log);
    });
    tScenarioDone = performance.now();

    const after = {} as Record<Side, Counters>;
    for (const side of SIDES) after[side] = await readCounters(watchers[side].pid);
    const rulesHit: Record<string, number> = {};
    for (const side of SIDES) Object.assign(rulesHit, await readRuleHits(nsOf[side], p.runId));
    // Let the watchers catch the last transitions (one more poll interval) before stopping them.
    await new Promise((r) => setTimeout(r, 20));
    const events = {} as Record<Side, SocketEvent[]>;
    for (const side of SIDES) events[side] = await watchers[side].stop();
    const pcapFile = pcap ? await pcap.stop() : undefined;

    const t0Us = out.steps[0]?.startUs ?? 0;
    const steps = toSteps(out, script, t0Us);
    const states = { client: toSamples(events.client, t0Us), server: toSamples(events.server, t0Us) };
    const counters = { client: counterDelta(before.client, after.client), server: counterDelta(before.server, after.server) };
    const { checks, verdict } = evaluate(expected, { steps, states, counters, rulesHit });
    partial = {
      version: 1,
      runId: p.runId,
      scenario: p.fault.name,
      params: p.params,
      target: { name: target.name, backend: target.backend, address: target.endpoints.address, port: target.endpoints.port },
      sysctls,
      steps,
      states,
      counters,
      fault: { rulesHit, applied },
      expected,
      checks,
      verdict,
      ...(pcapFile ? { pcap: pcapFile } : {}),
    };
    if (env.duringFault) {
      const tHook = performance.now();
      await env.duringFault({ runId: p.runId, target, result: partial });
      hookMs = performance.now() - tHook;
    }
  } catch (err) {
    tScenarioDone = performance.now();
    error = err instanceof HarnessError ? { code: err.code, message: err.message } : { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err) };
    log.error({ err }, 'run failed');
  }
  // Reached on success and failure alike; a signal handler reverts the same journal through the session.
  const revert = await session.revert(journal);
  const teardownMs = performance.now() - tScenarioDone - hookMs;
  const timing = { setupMs: round(tSetupDone - tStart), scenarioMs: round(tScenarioDone - tSetupDone), teardownMs: round(teardownMs) };
  if (revert.failed.length) log.error({ failed: revert.failed }, 'some changes could not be reverted: run `harness gc`');
  if (partial && !error) return { ...partial, timing, revert };
  return {
    version: 1,
    runId: p.runId,
    scenario: p.fault.name,
    params: p.params,
    target: { name: target?.name ?? p.target.name, backend: p.target.backend, address: target?.endpoints.address ?? '', port: target?.endpoints.port ?? 0 },
    sysctls: { client: {}, server: {} },
    steps: [],
    states: { client: [], server: [] },
    counters: { client: {}, server: {} },
    fault: { rulesHit: {}, applied },
    expected: { steps: {} },
    checks: [],
    verdict: 'error',
    error: error ?? { code: 'E_INTERNAL', message: 'run ended without a result' },
    timing,
    revert,
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

async function applyFaultSteps(journal: Journal, nsOf: Record<Side, Netns>, steps: FaultStep[], applied: string[]): Promise<void> {
  for (const step of steps) {
    const ns = nsOf[step.side];
    await journal.change(
      step.describe,
      { kind: 'argv', argv: inNetns(ns, step.revert), netnsPath: ns.path, ...(step.absent ? { absent: step.absent } : {}) },
      () => run(inNetns(ns, step.apply)),
    );
    applied.push(step.describe);
  }
}

async function fire(journal: Journal, nsOf: Record<Side, Netns>, target: StartedTarget, runId: string, t: Trigger, applied: string[], log: Logger): Promise<void> {
  log.info({ trigger: t.kind }, 'trigger');
  switch (t.kind) {
    case 'rules':
      return applyFaultSteps(journal, nsOf, planRules(runId, t.rules), applied);
    case 'kill-server':
      applied.push(`kill -${t.signal} server`);
      return target.killServer(t.signal);
    case 'all':
      for (const x of t.triggers) await fire(journal, nsOf, target, runId, x, applied, log);
  }
}

/**
 * Runs the client script. With barriers, the probe stops at each `{op: 'barrier'}`, says so on
 * stderr, and continues when the harness has fired the trigger and written a line to its stdin.
 */
async function runScript(target: StartedTarget, nsOf: Record<Side, Netns>, script: ClientStep[], onBarrier: (name: string) => Promise<void>): Promise<ProbeClientOutput> {
  const dir = await mkdtemp(join(tmpdir(), 'harness-script-'));
  try {
    const file = join(dir, 'script.json');
    await writeFile(file, probeScript(target.endpoints.address, target.endpoints.port, script));
    let stdout = '';
    let stderr = '';
    let barrierChain = Promise.resolve();
    let barrierError: unknown;
    const proc = spawnLong(probeArgv(nsOf.client, ['client', '--script', file]), {
      stdout: (line) => (stdout += `${line}\n`),
      stderr: (line) => {
        let ev: { event?: string; name?: string } | undefined;
        try {
          ev = JSON.parse(line) as { event?: string; name?: string };
        } catch {
          stderr += `${line}\n`;
          return;
        }
        if (ev?.event !== 'barrier' || !ev.name) {
          stderr += `${line}\n`;
          return;
        }
        const name = ev.name;
        barrierChain = barrierChain.then(async () => {
          try {
            await onBarrier(name);
          } catch (e) {
            barrierError = e;
          }
          proc.stdin.write('go\n');
        });
      },
    });
    const r = await proc;
    await barrierChain;
    if (barrierError) throw barrierError;
    if (r.exitCode !== 0) throw new HarnessError('E_PROBE', `the probe failed (exit ${r.exitCode ?? r.signal}): ${stderr.trim()}`, { exitCode: 3 });
    return parseProbeOutput(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function startPcap(journal: Journal, ns: Netns, dir: string, runId: string, scenario: string) {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${scenario}-${runId}.pcap`);
  let listening: (() => void) | undefined;
  const ready = new Promise<void>((r) => (listening = r));
  const proc = spawnLong(inNetns(ns, ['tcpdump', '-i', 'any', '-n', '-U', '-s', '256', '-w', file, 'tcp or icmp']), {
    stderr: (l) => {
      if (/listening on/.test(l)) listening?.();
    },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new EnvironmentError('E_TCPDUMP', 'could not start tcpdump', 'install tcpdump (harness doctor)');
  await journal.record(`tcpdump pid ${pid}`, { kind: 'kill', pid, startTicks: (await processStartTicks(pid)) ?? '' });
  await withTimeout(ready, 5000, 'tcpdump did not start');
  return {
    async stop(): Promise<string> {
      proc.kill('SIGTERM');
      await proc;
      return file;
    },
  };
}

/** prepare + execute, for library users: `await runScenario({ scenario: 'syn-drop' })`. */
export async function runScenario(req: RunRequest, env: RunEnv = {}): Promise<Result> {
  await assertRoot();
  return execute(await prepare(req, env), env);
}
