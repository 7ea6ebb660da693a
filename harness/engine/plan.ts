/**
 * Fault plans for CI: a YAML or JSON list of runs (scenario, target, `set`, `sysctls`, an optional
 * client command and its expectations), validated like the config file before anything runs; an
 * error names the entry and the field. The harness picks how many run at once from what they
 * cost, runs the longest first, and `--shard I/N` splits a plan deterministically across CI
 * runners, balanced by the model's predicted duration.
 */
import { readFile, stat } from 'node:fs/promises';
import { cpus } from 'node:os';
import { parse as parseYaml } from 'yaml';
import pLimit from 'p-limit';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { kernelFacts } from '../core/kernel.js';
import { parseSysctlFlag } from '../core/sysctl.js';
import { parseDuration, parseExpectExit, parseStrike, type ClientSpec } from './client-spec.js';
import type { PreparedRun, RunRequest } from './prepare.js';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const clientSchema = z.strictObject({
  argv: z.array(z.string()).min(1, 'must name a command'),
  env: z.record(z.string(), z.string()).optional(),
  image: z.string().optional(),
  timeout: z.string().optional(),
  strike: z.string().optional(),
  expectExit: z.union([z.number(), z.string()]).optional(),
  expectWithin: z.string().optional(),
});

const entrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 _.:=,/+-]{0,79}$/, 'must be 1-80 letters, digits, spaces or _.:=,/+-').optional(),
  scenario: z.string({ error: 'must name a scenario (harness list)' }),
  target: z.string().min(1).optional(),
  set: z.record(z.string(), scalar).optional(),
  /** `side:key=value`, as with --sysctl. */
  sysctls: z.array(z.string()).optional(),
  kernelDefaults: z.boolean().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  client: clientSchema.optional(),
});

export type PlanEntry = z.infer<typeof entrySchema>;

export const planSchema = z.array(entrySchema, { error: 'a plan is a list of runs (a YAML sequence or a JSON array)' }).min(1, 'a plan needs at least one run');

const MAX_PLAN_BYTES = 1 << 20;

/** What an entry is called in messages and results: its name, or "entry N (scenario)". */
export function entryLabel(e: Partial<PlanEntry> | undefined, i: number): string {
  return e?.name ?? `entry ${i + 1}${e?.scenario ? ` (${e.scenario})` : ''}`;
}

/** Parses and validates a plan's text. Throws UsageError('--plan') naming the entry and the field. */
export function parsePlan(text: string, file: string): PlanEntry[] {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError('--plan', `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, 'fix the syntax');
  }
  const r = planSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const [i, ...path] = issue.path;
    if (typeof i !== 'number') throw new UsageError('--plan', `${file}: ${issue.message}`, 'write a list of runs: - scenario: syn-drop');
    const where = `${entryLabel((raw as Partial<PlanEntry>[])[i], i)}`;
    const field = issue.code === 'unrecognized_keys' ? `field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : path.join('.') || 'entry';
    throw new UsageError('--plan', `${file}: ${where}: ${field}: ${issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message}`, 'fields: name, scenario, target, set, sysctls, kernelDefaults, port, client');
  }
  const seen = new Map<string, number>();
  r.data.forEach((e, i) => {
    if (!e.name) return;
    const prev = seen.get(e.name);
    if (prev !== undefined) throw new UsageError('--plan', `${file}: entry ${i + 1}: name "${e.name}" is already used by entry ${prev + 1}`, 'give every named run its own name');
    seen.set(e.name, i);
  });
  return r.data;
}

export async function loadPlan(file: string): Promise<PlanEntry[]> {
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError('--plan', `${file} is not a file`, 'give a YAML or JSON plan file');
  if (st.size > MAX_PLAN_BYTES) throw new UsageError('--plan', `${file} is larger than ${MAX_PLAN_BYTES} bytes`, 'split the plan');
  return parsePlan(await readFile(file, 'utf8'), file);
}

/** The run request of an entry; errors in its values name the entry. */
export function requestOf(e: PlanEntry, i: number, file: string): RunRequest {
  const label = entryLabel(e, i);
  const inEntry = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError('--plan', `${file}: ${label}: ${err.message}`, err.hint);
      throw err;
    }
  };
  return inEntry(() => {
    const c = e.client;
    const client: ClientSpec | undefined = c && {
      argv: c.argv,
      ...(c.env ? { env: c.env } : {}),
      ...(c.image ? { image: c.image } : {}),
      ...(c.timeout ? { timeoutMs: parseDuration(c.timeout, 'client.timeout') } : {}),
      ...(c.strike ? { strike: parseStrike(c.strike) } : {}),
      ...(c.expectExit !== undefined || c.expectWithin
        ? {
            expect: {
              ...(c.expectExit !== undefined ? { exit: parseExpectExit(String(c.expectExit)) } : {}),
              ...(c.expectWithin ? { withinMs: parseDuration(c.expectWithin, 'client.expectWithin') } : {}),
            },
          }
        : {}),
    };
    return {
      scenario: e.scenario,
      params: Object.fromEntries(Object.entries(e.set ?? {}).map(([k, v]) => [k, String(v)])),
      ...(e.target ? { target: e.target } : {}),
      sysctls: (e.sysctls ?? []).map((s) => parseSysctlFlag(s)),
      ...(e.kernelDefaults ? { kernelDefaults: true } : {}),
      ...(e.port ? { port: e.port } : {}),
      ...(client ? { client } : {}),
    };
  });
}

/** Wraps prepare() so its errors name the entry. */
export async function prepareEntry<T>(label: string, file: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError('--plan', `${file}: ${label}: ${err.message}`, err.hint);
    throw err;
  }
}

/** `--shard I/N`. */
export function parseShard(raw: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(raw);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new UsageError('--shard', `"${raw}" is not a shard`, 'write I/N with 1 <= I <= N, e.g. --shard 2/4');
  return { index, count };
}

/**
 * How long a run will take, by the model: the sleeps of its script, the upper edge of each
 * labelled step's predicted window, and the timeout of each step the model says times out (a read
 * that gets nothing, a keepalive watch), plus a second of set-up. Used to order runs (longest
 * first) and to balance shards; not a check.
 */
export async function estimateMs(p: PreparedRun): Promise<number> {
  const ctx = {
    runId: p.runId,
    params: p.params,
    endpoints: { address: '198.18.0.1', port: p.port ?? 9000, clientAddress: '198.18.0.2' },
    // As if on the built-in server: an estimate, not a check.
    server: { mode: p.fault.server(p.params).mode },
    sysctls: p.sysctls,
    clock: await kernelFacts(),
    watchIntervalMs: 10,
    blocking: Boolean(p.blocking),
  };
  try {
    const expected = p.fault.expect(ctx);
    const script = p.fault.script(ctx, expected);
    let ms = 1000;
    for (const s of script) {
      const step = s.label ? expected.steps[s.label] : undefined;
      if (s.op === 'sleep') ms += s.ms;
      else if (step?.windowMs) ms += step.windowMs[1];
      else if (step?.timedOut && 'timeoutMs' in s) ms += s.timeoutMs;
    }
    for (const e of expected.stateLeft ?? []) ms = Math.max(ms, e.windowMs[1] + 1000);
    return ms;
  } catch {
    // A model that needs a sysctl the request does not set (its value is read from the namespace
    // at run time): no estimate, ordered as if short.
    return 1000;
  }
}

/** Longest-processing-time-first into N shards: deterministic, ties by plan order. */
export function shardOf<T>(items: readonly T[], estimates: readonly number[], count: number, index: number): T[] {
  const order = items.map((_, i) => i).sort((a, b) => estimates[b]! - estimates[a]! || a - b);
  const load = new Array<number>(count).fill(0);
  const bins: number[][] = Array.from({ length: count }, () => []);
  for (const i of order) {
    let best = 0;
    for (let b = 1; b < count; b++) if (load[b]! < load[best]!) best = b;
    bins[best]!.push(i);
    load[best]! += estimates[i]!;
  }
  return bins[index - 1]!.sort((a, b) => a - b).map((i) => items[i]!);
}

/**
 * How many built-in (netns) runs go at once per core. Measured with plans/catalogue.yaml (68
 * runs) on 2 cores, set-ups one per core (SETUPS_PER_CORE): 36 at a time, every verdict passed in
 * six runs of six, 7.6-7.8 s from the first set-up to the last revert (its longest run alone:
 * 7.4 s); 48 at a time, no faster (7.6 s: the longest run is the floor); 24 at a time, 8.9 s
 * (the short runs wait for a slot behind the long ones). Without the set-up gate every run of a
 * batch set up at once: 34 at a time put a keepalive count out (the counters read late).
 */
export const RUNS_PER_CORE = 18;
/**
 * A container run counts as 9 netns runs (4 at once on 2 cores): dockerd starts and removes its
 * containers, and its namespaces' watchers walk the host's TCP hash (Docker makes the namespaces
 * from the host's, so they share its hash; the harness must not change the host's
 * tcp_child_ehash_entries). Each step down came from CI: 9 container runs at once, one of nginx's
 * 512 answered connects came back after 21 ms; 6 at once, two of redis's after 10 and 13 ms — each
 * time the kernel had the SYN-ACK that late (TCP_INFO's last ACK stamp), not the probe.
 */
export const CONTAINER_RUN_COST = 9;

/**
 * How many runs of a batch set up at once per core (target → fault: namespaces, the server, the
 * watcher, the rules: processes and syscalls, little waiting). The others wait their turn in the
 * batch's order, so the longest runs start their timers first instead of all runs sharing the
 * cores for their set-ups together.
 */
export const SETUPS_PER_CORE = 1;

/**
 * How many runs go at once, from the core count and what the runs are; beyond four runs the
 * watchers poll every 10 ms (DESIGN: a state is seen at most 10 ms late) instead of 5.
 */
export function chooseConcurrency(runs: readonly { container: boolean }[], cores = cpus().length): { concurrency: number; setupSlots: number; watchIntervalMs: number; why: string } {
  const containers = runs.filter((r) => r.container).length;
  const meanCost = (containers * CONTAINER_RUN_COST + (runs.length - containers)) / Math.max(1, runs.length);
  const fit = Math.max(1, Math.floor((RUNS_PER_CORE * cores) / meanCost));
  const concurrency = Math.min(runs.length, fit);
  const watchIntervalMs = runs.length <= 4 ? 5 : 10;
  const setupSlots = Math.min(concurrency, SETUPS_PER_CORE * cores);
  const why = `${cores} cores, ${RUNS_PER_CORE} netns runs per core${containers ? ` (a container run counts ${CONTAINER_RUN_COST}×)` : ''}, ${setupSlots} setting up at once; the state watchers poll every ${watchIntervalMs} ms`;
  return { concurrency, setupSlots, watchIntervalMs, why };
}

/**
 * How a batch of runs goes (a plan, several scenarios, the bench): longest first by the model's
 * estimate (the batch ends close to its longest run instead of starting it last), as many at once
 * as chooseConcurrency allows. `estimates` if already made (a plan's shards need them first).
 */
export async function schedule(
  runs: readonly PreparedRun[],
  estimates?: readonly number[],
): Promise<{ ordered: PreparedRun[]; concurrency: number; setupSlots: number; setupGate: Gate; watchIntervalMs: number; why: string }> {
  const est = estimates ?? (await Promise.all(runs.map((p) => estimateMs(p))));
  const ordered = runs.map((p, i) => ({ p, ms: est[i]! })).sort((a, b) => b.ms - a.ms).map((x) => x.p);
  const chosen = chooseConcurrency(ordered.map((p) => ({ container: p.target.backend === 'container' })));
  return { ordered, ...chosen, setupGate: pLimit(chosen.setupSlots) };
}

/** A limiter (p-limit's): runs `f` when one of its slots is free, in the order of the calls. */
export type Gate = <T>(f: () => Promise<T>) => Promise<T>;

/**
 * Takes a turn at `gate` now, so that the batch's order is the order of admission (before any
 * await), and holds it until release().
 */
export function takeTurn(gate: Gate | undefined): { admitted: Promise<void>; release(): void } {
  if (!gate) return { admitted: Promise.resolve(), release: () => {} };
  let admit!: () => void;
  let release!: () => void;
  const admitted = new Promise<void>((r) => (admit = r));
  const held = new Promise<void>((r) => (release = r));
  void gate(() => (admit(), held));
  return { admitted, release };
}

/** Runs `jobs` with at most `n` in flight, started in the given order; results in that order. */
export function pool<T, R>(jobs: readonly T[], n: number, f: (j: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(n);
  return Promise.all(jobs.map((j) => limit(() => f(j))));
}
