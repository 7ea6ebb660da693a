/**
 * `npm run bench`: what the harness costs, as ratios against a baseline measured in the same run.
 *
 * 1. The catalogue: every default scenario one after another (the baseline: the sum of their wall
 *    times) vs all of them at once (`harness run --all`). Concurrency should bring the catalogue
 *    close to its longest scenario.
 * 2. The state watcher's CPU per namespace: one process for both namespaces of a run vs one
 *    process each (baseline), for namespaces with a TCP hash of their own (netns targets) and for
 *    ones sharing the global hash (containers'); own hash vs global; and how late each form
 *    reports a new connection.
 * 3. Harness overhead per run: setup + teardown vs the scenario itself (syn-drop, retries=1).
 * 4. The latency fault's delayer: a request/response ping-pong through two delayers holding each
 *    packet 0 ms (NFQUEUE to user space and back) vs the same ping-pong with no rule: the time it
 *    adds per packet, and its CPU per packet.
 *
 * `--write-readme` puts the table into README.md between the bench markers.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { faults } from '../../faults/index.js';
import { run, inNetns, spawnLong, withTimeout, type LongProcess } from '../core/exec.js';
import { kernelFacts } from '../core/kernel.js';
import { namedNetns, type Netns } from '../core/netns.js';
import { probeArgv, probeCommand, runProbeClient, type ClientStep } from '../core/probe.js';
import { replaceSection } from '../commands/readme.js';
import { assertRoot, execute, prepare, type PreparedRun } from '../engine/runner.js';
import { entryLabel, loadPlan, pool, requestOf, schedule } from '../engine/plan.js';
import { dockerAvailable } from '../../docker/engine.js';
import type { Result } from '../verdict/result.js';

interface Row {
  what: string;
  baseline: string;
  measured: string;
  ratio: string;
}

const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function catalogue(rows: Row[]): Promise<void> {
  const names = Object.keys(faults);
  const seq: { name: string; ms: number; verdict: string }[] = [];
  for (const name of names) {
    const t = performance.now();
    const r = await execute(await prepare({ scenario: name }));
    seq.push({ name, ms: performance.now() - t, verdict: r.verdict });
  }
  const sum = seq.reduce((a, s) => a + s.ms, 0);
  const longest = Math.max(...seq.map((s) => s.ms));
  // As `harness run --all` does it: longest first, set-ups through the batch's gate, watchers as chosen.
  const { ordered, concurrency, setupGate, watchIntervalMs } = await schedule(await Promise.all(names.map((scenario) => prepare({ scenario }))));
  const t = performance.now();
  const all: Result[] = await pool(ordered, concurrency, (p) => execute(p, { watchIntervalMs, setupGate }));
  const wall = performance.now() - t;
  const failed = [...seq.filter((s) => s.verdict !== 'pass').map((s) => `${s.name} (sequential)`), ...all.filter((r) => r.verdict !== 'pass').map((r) => `${r.scenario} (concurrent)`)];
  rows.push({
    what: `catalogue, ${names.length} scenarios: concurrent (--all) vs one after another`,
    baseline: `${fmtS(sum)} (sum; longest ${fmtS(longest)})`,
    measured: fmtS(wall),
    ratio: `${(wall / sum).toFixed(2)}× the sum, ${(wall / longest).toFixed(2)}× the longest; ${failed.length ? `NOT PASSED: ${failed.join(', ')}` : `all ${2 * names.length} verdicts pass`}`,
  });
}

/** CPU a process has used so far: on-CPU time (schedstat, ns) and its user/kernel split (stat, ticks). */
async function cpuOf(pid: number): Promise<{ onCpuNs: number; utime: number; stime: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const onCpuNs = Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);
  return { onCpuNs, utime: Number(f[11]), stime: Number(f[12]) };
}

type WatchForm = 'two' | 'one';
const WATCH = ['--interval-ms', '5', '--port', '9000', '--family', '4'];

/**
 * The watchers of a run's two namespaces: `two` is how runs watched before (one process per
 * namespace, entered with nsenter: the baseline), `one` is how they watch now (one process,
 * `--netns` for each). `onEvent` gets each socket event with the index of its namespace.
 */
function startWatchers(form: WatchForm, nss: readonly Netns[], onEvent: (i: number, e: { tUs: number; local: string; state: string }) => void = () => undefined): LongProcess[] {
  const parse = (line: string, i?: number) => {
    try {
      const e = JSON.parse(line) as { tUs: number; local: string; state?: string; ns?: number };
      if (e.state) onEvent(i ?? e.ns ?? 0, e as { tUs: number; local: string; state: string });
    } catch {
      /* a partial line at exit */
    }
  };
  if (form === 'two') return nss.map((ns, i) => spawnLong(probeArgv(ns, ['watch', ...WATCH]), { stdout: (l) => parse(l, i), stderr: (l) => process.stderr.write(`watcher ${i}: ${l}\n`) }));
  return [spawnLong(probeCommand(['watch', '--interval-ms', '5', ...nss.flatMap((ns) => ['--netns', ns.path, '--port', '9000', '--family', '4'])]), { stdout: (l) => parse(l), stderr: (l) => process.stderr.write(`watcher: ${l}\n`) })];
}

async function stopAll(ps: LongProcess[]): Promise<void> {
  for (const p of ps) p.kill('SIGTERM');
  await Promise.all(ps);
}

interface WatchCost {
  /** CPU per namespace per second of wall time (s/s), and its kernel part. */
  perNs: number;
  kernelPerNs: number;
}

/** CPU of `form` watching `nss` (all its processes) over `seconds`. */
async function watchCost(form: WatchForm, nss: readonly Netns[], seconds: number): Promise<{ onCpuNs: number; utime: number; stime: number; wallS: number }> {
  const ps = startWatchers(form, nss);
  // A watcher that is gone has no /proc entry: say which, and how it ended.
  const sample = () => Promise.all(ps.map((p) => cpuOf(p.pid!).catch(async () => {
    const r = await p;
    throw new Error(`bench: a watcher (${form} form) ended early: exit ${r.exitCode ?? r.signal}`);
  })));
  try {
    await sleep(300);
    const a = await sample();
    const t = performance.now();
    await sleep(seconds * 1000);
    const b = await sample();
    const wallS = (performance.now() - t) / 1000;
    const d = (k: 'onCpuNs' | 'utime' | 'stime') => b.reduce((s, x, i) => s + x[k] - a[i]![k], 0);
    return { onCpuNs: d('onCpuNs'), utime: d('utime'), stime: d('stime'), wallS };
  } finally {
    await stopAll(ps);
  }
}

/** Both forms, alternating (so a neighbour's load on this shared machine falls on both alike). */
async function compareCost(nss: readonly Netns[], rounds: number, seconds: number): Promise<Record<WatchForm, WatchCost>> {
  const sum = { two: { onCpuNs: 0, utime: 0, stime: 0, wallS: 0 }, one: { onCpuNs: 0, utime: 0, stime: 0, wallS: 0 } };
  for (let r = 0; r < rounds; r++) {
    for (const form of (r % 2 ? ['one', 'two'] : ['two', 'one']) as WatchForm[]) {
      const c = await watchCost(form, nss, seconds);
      for (const k of ['onCpuNs', 'utime', 'stime', 'wallS'] as const) sum[form][k] += c[k];
    }
  }
  const cost = (c: (typeof sum)['one']): WatchCost => {
    const perNs = c.onCpuNs / 1e9 / c.wallS / nss.length;
    return { perNs, kernelPerNs: c.utime + c.stime > 0 ? (perNs * c.stime) / (c.utime + c.stime) : 0 };
  };
  return { two: cost(sum.two), one: cost(sum.one) };
}

/**
 * How late each form reports a connection ESTABLISHED in the namespace it dumps second (where one
 * process adds the first namespace's dump): the watcher's sample minus the client's connect()
 * return, both CLOCK_MONOTONIC, over `n` loopback connections. Lag in ms, sorted.
 */
async function detectionLag(form: WatchForm, nss: readonly Netns[], n: number): Promise<number[]> {
  const established = new Map<string, number>();
  const ps = startWatchers(form, nss, (i, e) => {
    if (i === 1 && e.state === 'ESTABLISHED' && !established.has(e.local)) established.set(e.local, e.tUs);
  });
  const lags: number[] = [];
  try {
    await sleep(300);
    for (let k = 0; k < n; k++) {
      const out = await runProbeClient(nss[1]!, '127.0.0.1', 9000, [{ op: 'connect', timeoutMs: 2000 }, { op: 'sleep', ms: 30 }, { op: 'close' }]);
      const c = out.steps[0]!;
      const seen = c.local ? established.get(c.local) : undefined;
      if (c.ok && seen !== undefined) lags.push((seen - c.endUs) / 1000);
    }
  } finally {
    await stopAll(ps);
  }
  return lags.sort((a, b) => a - b);
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const quantile = (xs: readonly number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

/**
 * The state watcher, per hash kind: a run's two namespaces made the way netns targets make them
 * (from a nursery with tcp_child_ehash_entries: a TCP hash of their own) and made from the host
 * (sharing the kernel's global hash, as every container's namespace does: Docker creates them
 * from the host's, so two `ip netns add` namespaces cost a dump exactly what a container's does).
 */
async function watcher(rows: Row[]): Promise<void> {
  const id = `bench${process.pid}`;
  const nursery = namedNetns(`harness-${id}-n`);
  const kinds = {
    own: [namedNetns(`harness-${id}-o0`), namedNetns(`harness-${id}-o1`)],
    global: [namedNetns(`harness-${id}-g0`), namedNetns(`harness-${id}-g1`)],
  };
  const servers: LongProcess[] = [];
  try {
    await run(['ip', 'netns', 'add', nursery.name]);
    await run(inNetns(nursery, ['sysctl', '-q', '-w', 'net.ipv4.tcp_child_ehash_entries=1024']));
    for (const ns of kinds.own) await run(inNetns(nursery, ['ip', 'netns', 'add', ns.name]));
    await run(['ip', 'netns', 'del', nursery.name]);
    for (const ns of kinds.global) await run(['ip', 'netns', 'add', ns.name]);
    const cost = { own: await compareCost(kinds.own, 4, 5), global: await compareCost(kinds.global, 4, 5) };
    for (const [kind, what] of [['own', 'own TCP hash (netns targets)'], ['global', "the global TCP hash (a container's namespace)"]] as const) {
      const c = cost[kind];
      rows.push({
        what: `state watcher (5 ms polls), CPU per namespace, ${what}: one process for both namespaces of a run vs one process each`,
        baseline: `${pct(c.two.perNs)} of a core (kernel ${pct(c.two.kernelPerNs)})`,
        measured: `${pct(c.one.perNs)} of a core (kernel ${pct(c.one.kernelPerNs)})`,
        ratio: `${(c.one.perNs / c.two.perNs).toFixed(2)}×`,
      });
    }
    rows.push({
      what: 'state watcher (5 ms polls, one process), CPU per namespace: own TCP hash vs the global one',
      baseline: `${pct(cost.global.one.perNs)} of a core`,
      measured: `${pct(cost.own.one.perNs)} of a core`,
      ratio: `${(cost.own.one.perNs / cost.global.one.perNs).toFixed(2)}×`,
    });
    // Detection lag: a loopback echo server in each namespace, connections in the second one.
    for (const ns of [...kinds.own, ...kinds.global]) {
      await run(['ip', '-n', ns.name, 'link', 'set', 'lo', 'up']);
      let ready: () => void = () => undefined;
      const listening = new Promise<void>((r) => (ready = r));
      servers.push(spawnLong(probeArgv(ns, ['server', '--mode', 'echo', '--listen', '127.0.0.1:9000']), { stdout: (l) => l.includes('"listening"') && ready() }));
      await withTimeout(listening, 5000, `bench server in ${ns.name} did not start`);
    }
    const n = 40;
    const lag: Record<string, Record<WatchForm, number[]>> = {};
    for (const kind of ['own', 'global'] as const) lag[kind] = { two: await detectionLag('two', kinds[kind], n), one: await detectionLag('one', kinds[kind], n) };
    const fmt = (xs: number[]) => `${quantile(xs, 0.5).toFixed(2)} / ${quantile(xs, 0.95).toFixed(2)} / ${xs[xs.length - 1]?.toFixed(2)} ms`;
    rows.push({
      what: `state watcher detection lag (connect() returns → ESTABLISHED reported) in the namespace dumped second, median / p95 / max of ${n}: one process vs one each`,
      baseline: `own hash ${fmt(lag.own!.two)}; global ${fmt(lag.global!.two)}`,
      measured: `own hash ${fmt(lag.own!.one)}; global ${fmt(lag.global!.one)}`,
      ratio: `median ${(quantile(lag.own!.one, 0.5) / quantile(lag.own!.two, 0.5)).toFixed(2)}× (own), ${(quantile(lag.global!.one, 0.5) / quantile(lag.global!.two, 0.5)).toFixed(2)}× (global)`,
    });
  } finally {
    await stopAll(servers);
    for (const ns of [nursery, ...kinds.own, ...kinds.global]) await run(['ip', 'netns', 'del', ns.name], { reject: false });
  }
}

async function overhead(rows: Row[]): Promise<void> {
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const targets: { target?: string; what: string }[] = [{ what: 'netns (built-in target)' }];
  if ((await dockerAvailable()).ok) targets.push({ target: 'probe-echo', what: 'container (probe-echo)' });
  for (const t of targets) {
    const samples: Result[] = [];
    for (let i = 0; i < 5; i++) {
      const req = { scenario: 'syn-drop', ...(t.target ? { target: t.target } : {}), sysctls: [{ side: 'client' as const, key: 'net.ipv4.tcp_syn_retries', value: '1' }] };
      samples.push(await execute(await prepare(req)));
    }
    const setup = med(samples.map((s) => s.timing.setupMs));
    const teardown = med(samples.map((s) => s.timing.teardownMs));
    const scenario = med(samples.map((s) => s.timing.scenarioMs));
    rows.push({
      what: `harness overhead per run, ${t.what} (syn-drop, retries=1; median of 5): setup + teardown vs the scenario's kernel time`,
      baseline: `${scenario.toFixed(0)} ms scenario`,
      measured: `${setup.toFixed(0)} ms setup + ${teardown.toFixed(0)} ms teardown`,
      ratio: `${((setup + teardown) / scenario).toFixed(3)}×`,
    });
  }
}

/**
 * plans/catalogue.yaml as `harness run --plan` runs it (schedule: longest first, as many at once
 * as chooseConcurrency allows): its wall time against its longest run and against the sum of its runs, both
 * measured in the same run (each run's own set-up + scenario + teardown).
 */
async function plan(rows: Row[]): Promise<void> {
  const entries = await loadPlan('plans/catalogue.yaml');
  const prepared: PreparedRun[] = [];
  for (const [i, e] of entries.entries()) prepared.push({ ...(await prepare(requestOf(e, i, 'catalogue.yaml'))), name: entryLabel(e, i) });
  const { ordered, concurrency, setupSlots, setupGate, watchIntervalMs } = await schedule(prepared);
  // The baseline: the run the model predicts longest, alone (its time with the machine to itself).
  const solo = await execute(await prepare(requestOf(entries[prepared.indexOf(ordered[0]!)]!, 0, 'catalogue.yaml')));
  const soloMs = solo.timing.setupMs + solo.timing.scenarioMs + solo.timing.teardownMs;
  const t = performance.now();
  const results = await pool(ordered, concurrency, (p) => execute(p, { watchIntervalMs, setupGate }));
  const wall = performance.now() - t;
  const each = results.map((r) => r.timing.setupMs + r.timing.scenarioMs + r.timing.teardownMs);
  const sum = each.reduce((a, x) => a + x, 0);
  const failed = results.filter((r) => r.verdict !== 'pass').map((r) => r.name ?? r.scenario);
  rows.push({
    what: `plans/catalogue.yaml, ${results.length} runs (${concurrency} at a time, ${setupSlots} setting up at once, watchers every ${watchIntervalMs} ms): wall time vs its runs`,
    baseline: `${fmtS(soloMs)} its longest run alone (${solo.name ?? ordered[0]!.name}); ${fmtS(sum)} the sum of its runs`,
    measured: fmtS(wall),
    ratio: `${(wall / soloMs).toFixed(2)}× the longest, ${(wall / sum).toFixed(2)}× the sum; ${failed.length ? `NOT PASSED: ${failed.join(', ')}` : 'every verdict passes'}`,
  });
}

/** Round trips (µs) of `rounds` one-segment request/responses from the client namespace: each write's start to its read's end. */
async function pingPong(client: ReturnType<typeof namedNetns>, host: string, rounds: number): Promise<number[]> {
  const steps: ClientStep[] = [{ op: 'connect', timeoutMs: 5000 }];
  for (let i = 0; i < rounds; i++) steps.push({ op: 'write', bytes: 100, timeoutMs: 5000 }, { op: 'read', bytes: 100, timeoutMs: 5000 });
  const out = await runProbeClient(client, host, 9000, steps);
  const rtts: number[] = [];
  for (let i = 1; i + 1 < out.steps.length; i += 2) rtts.push(out.steps[i + 1]!.endUs - out.steps[i]!.startUs);
  return rtts;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The delayer's own cost: the same ping-pong with the latency fault's two NFQUEUE rules (both
 * directions, each to a delayer holding 0 ms) and without them, in alternating batches so both
 * see the same load on this shared 2-core machine; the delayers run throughout (idle without rules).
 */
async function delayer(rows: Row[]): Promise<void> {
  const id = `bench${process.pid}`;
  const t = namedNetns(`harness-${id}-dt`);
  const c = namedNetns(`harness-${id}-dc`);
  const [vt, vc] = [`hb${process.pid}t`.slice(0, 15), `hb${process.pid}c`.slice(0, 15)];
  const BATCHES = 10;
  const ROUNDS = 400;
  const procs: ReturnType<typeof spawnLong>[] = [];
  try {
    await run(['ip', 'netns', 'add', t.name]);
    await run(['ip', 'netns', 'add', c.name]);
    await run(['ip', '-n', c.name, 'link', 'add', vc, 'type', 'veth', 'peer', 'name', vt, 'netns', t.name]);
    for (const [ns, dev, addr] of [[c, vc, '198.18.250.2'], [t, vt, '198.18.250.1']] as const) {
      await run(['ip', '-n', ns.name, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      await run(['ip', '-n', ns.name, 'link', 'set', dev, 'up']);
      await run(['ip', '-n', ns.name, 'link', 'set', 'lo', 'up']);
    }
    procs.push(spawnLong(probeArgv(t, ['server', '--mode', 'echo', '--listen', '0.0.0.0:9000'])));
    const delayers = [t, c].map((ns) => {
      const lines: string[] = [];
      const proc = spawnLong(probeArgv(ns, ['delay', '--queue', '4042', '--delay-us', '0']), { stdout: (l) => lines.push(l) });
      procs.push(proc);
      return { proc, lines };
    });
    await sleep(300);
    const rules = [
      [t, ['INPUT', '-p', 'tcp', '-s', '198.18.250.2', '--dport', '9000', '-j', 'NFQUEUE', '--queue-num', '4042']],
      [c, ['INPUT', '-p', 'tcp', '-s', '198.18.250.1', '--sport', '9000', '-j', 'NFQUEUE', '--queue-num', '4042']],
    ] as const;
    const base: number[] = [];
    const held: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const on = b % 2 === 1;
      for (const [ns, rule] of rules) await run(inNetns(ns, ['iptables', '-w', '5', on ? '-A' : '-D', ...rule]), { reject: on });
      (on ? held : base).push(...(await pingPong(c, '198.18.250.1', ROUNDS)));
    }
    const reports: Record<string, unknown>[] = [];
    for (const d of delayers) {
      d.proc.kill('SIGTERM');
      await d.proc;
      reports.push(JSON.parse(d.lines.at(-1) ?? '{}') as Record<string, unknown>);
    }
    const packets = reports.reduce((a, r) => a + Number(r.packets ?? 0), 0);
    const cpuUs = reports.reduce((a, r) => a + Number(r.cpuUs ?? 0), 0);
    const [mb, mh] = [median(base), median(held)];
    rows.push({
      what: `latency delayer (NFQUEUE, 0 ms hold, both ways): ${held.length} request/response round trips through it, ${base.length} without, alternating; time added per held packet, and the delayers' CPU per packet`,
      baseline: `${mb.toFixed(0)} µs per round trip (median; no rule)`,
      measured: `${mh.toFixed(0)} µs per round trip (median; ${packets} packets held); CPU ${(cpuUs / packets).toFixed(1)} µs per packet`,
      ratio: `+${((mh - mb) / 2).toFixed(0)} µs per held packet (${(mh / mb).toFixed(2)}× the round trip)`,
    });
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    for (const ns of [t, c]) await run(['ip', 'netns', 'del', ns.name], { reject: false });
  }
}

/** The parts, in table order, and how each one's rows begin (to find them in an earlier table). */
const PARTS = {
  watcher: { run: watcher, prefix: 'state watcher' },
  overhead: { run: overhead, prefix: 'harness overhead' },
  delayer: { run: delayer, prefix: 'latency delayer' },
  catalogue: { run: catalogue, prefix: 'catalogue' },
  plan: { run: plan, prefix: 'plans/catalogue.yaml' },
} as const;
type Part = keyof typeof PARTS;

/**
 * The README's table: the rows of the parts run now, and — when only some ran (`npm run bench --
 * watcher --write-readme`) — the earlier rows of the others, with the date they were measured on.
 */
function benchTable(measuredOn: string, fresh: Partial<Record<Part, Row[]>>, earlier?: string): string {
  const lines: string[] = [];
  const kept: Part[] = [];
  for (const [part, { prefix }] of Object.entries(PARTS) as [Part, (typeof PARTS)[Part]][]) {
    const rows = fresh[part];
    if (rows) lines.push(...rows.map((r) => `| ${r.what} | ${r.baseline} | ${r.measured} | ${r.ratio} |`));
    else {
      const old = (earlier ?? '').split('\n').filter((l) => l.startsWith(`| ${prefix}`));
      if (old.length) kept.push(part);
      lines.push(...old);
    }
  }
  const before = /Linux \S+ \(HZ=\d+\), \d{4}-\d{2}-\d{2}/.exec(earlier ?? '')?.[0];
  return [
    `Measured on ${measuredOn}.${kept.length && before ? ` Rows of ${kept.join(', ')}: as measured before, on ${before}.` : ''}`,
    '',
    '| what | baseline | measured | ratio |',
    '|---|---|---|---|',
    ...lines,
  ].join('\n');
}

async function main(): Promise<void> {
  await assertRoot();
  const k = await kernelFacts();
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const want = (n: string) => only.length === 0 || only.includes(n);
  const fresh: Partial<Record<Part, Row[]>> = {};
  for (const part of Object.keys(PARTS) as Part[]) {
    if (!want(part)) continue;
    const rows: Row[] = [];
    await PARTS[part].run(rows);
    fresh[part] = rows;
  }
  const measuredOn = `Linux ${k.release} (HZ=${k.hz}), ${new Date().toISOString().slice(0, 10)}`;
  process.stdout.write(`${benchTable(measuredOn, fresh)}\n`);
  if (process.argv.includes('--write-readme')) {
    const text = await readFile('README.md', 'utf8');
    const earlier = /<!-- bench:start -->([\s\S]*?)<!-- bench:end -->/.exec(text)?.[1];
    await writeFile('README.md', replaceSection(text, 'bench', benchTable(measuredOn, fresh, earlier)));
  }
}

await main();
