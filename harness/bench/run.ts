/**
 * `npm run bench`: what the harness costs, as ratios against a baseline measured in the same run.
 *
 * 1. The catalogue: every default scenario one after another (the baseline: the sum of their wall
 *    times) vs all of them at once (`harness run --all`). Concurrency should bring the catalogue
 *    close to its longest scenario.
 * 2. The state watcher's kernel time per second: a namespace sharing the host's global TCP hash
 *    (baseline) vs one with its own hash (how the harness makes them).
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
import { run, inNetns, spawnLong } from '../core/exec.js';
import { kernelFacts } from '../core/kernel.js';
import { namedNetns } from '../core/netns.js';
import { probeArgv, runProbeClient, type ClientStep } from '../core/probe.js';
import { replaceSection } from '../commands/readme.js';
import { assertRoot, execute, prepare, type PreparedRun } from '../engine/runner.js';
import { chooseConcurrency, entryLabel, estimateMs, loadPlan, pool, requestOf } from '../engine/plan.js';
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
  const t = performance.now();
  // As `harness run --all` does it: a batch of more than four polls its watchers every 10 ms.
  const all: Result[] = await Promise.all(names.map(async (scenario) => execute(await prepare({ scenario }), { watchIntervalMs: 10 })));
  const wall = performance.now() - t;
  const failed = [...seq.filter((s) => s.verdict !== 'pass').map((s) => `${s.name} (sequential)`), ...all.filter((r) => r.verdict !== 'pass').map((r) => `${r.scenario} (concurrent)`)];
  rows.push({
    what: `catalogue, ${names.length} scenarios: concurrent (--all) vs one after another`,
    baseline: `${fmtS(sum)} (sum; longest ${fmtS(longest)})`,
    measured: fmtS(wall),
    ratio: `${(wall / sum).toFixed(2)}× the sum, ${(wall / longest).toFixed(2)}× the longest; ${failed.length ? `NOT PASSED: ${failed.join(', ')}` : `all ${2 * names.length} verdicts pass`}`,
  });
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

async function watcherCost(ns: ReturnType<typeof namedNetns>, seconds: number): Promise<number> {
  const p = spawnLong(probeArgv(ns, ['watch', '--interval-ms', '5', '--port', '9000', '--family', '4']));
  await sleep(200);
  const a = await cpuTicks(p.pid!);
  await sleep(seconds * 1000);
  const b = await cpuTicks(p.pid!);
  p.kill('SIGTERM');
  await p;
  return (b - a) / 100 / seconds; // USER_HZ = 100: seconds of CPU per second
}

async function watcher(rows: Row[]): Promise<void> {
  const id = `bench${process.pid}`;
  const global = namedNetns(`harness-${id}-g`);
  const nursery = namedNetns(`harness-${id}-n`);
  const own = namedNetns(`harness-${id}-o`);
  try {
    await run(['ip', 'netns', 'add', global.name]);
    await run(['ip', 'netns', 'add', nursery.name]);
    await run(inNetns(nursery, ['sysctl', '-q', '-w', 'net.ipv4.tcp_child_ehash_entries=1024']));
    await run(inNetns(nursery, ['ip', 'netns', 'add', own.name]));
    const g = await watcherCost(global, 5);
    const o = await watcherCost(own, 5);
    rows.push({
      what: 'state watcher (5 ms polls), CPU per second: own TCP hash vs the global one',
      baseline: `${(g * 100).toFixed(1)} % of a core`,
      measured: `${(o * 100).toFixed(1)} % of a core`,
      ratio: `${(o / g).toFixed(2)}×`,
    });
  } finally {
    for (const ns of [global, nursery, own]) await run(['ip', 'netns', 'del', ns.name], { reject: false });
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
 * plans/catalogue.yaml as `harness run --plan` runs it (longest first, concurrency chosen from the
 * watchers' cost): its wall time against its longest run and against the sum of its runs, both
 * measured in the same run (each run's own set-up + scenario + teardown).
 */
async function plan(rows: Row[]): Promise<void> {
  const entries = await loadPlan('plans/catalogue.yaml');
  const prepared: PreparedRun[] = [];
  for (const [i, e] of entries.entries()) prepared.push({ ...(await prepare(requestOf(e, i, 'catalogue.yaml'))), name: entryLabel(e, i) });
  const est = new Map(await Promise.all(prepared.map(async (p) => [p, await estimateMs(p)] as const)));
  const ordered = [...prepared].sort((a, b) => est.get(b)! - est.get(a)!);
  const { concurrency, watchIntervalMs } = chooseConcurrency(ordered.map((p) => ({ container: p.target.backend === 'container' })));
  // The baseline: the run the model predicts longest, alone (its time with the machine to itself).
  const solo = await execute(await prepare(requestOf(entries[prepared.indexOf(ordered[0]!)]!, 0, 'catalogue.yaml')));
  const soloMs = solo.timing.setupMs + solo.timing.scenarioMs + solo.timing.teardownMs;
  const t = performance.now();
  const results = await pool(ordered, concurrency, (p) => execute(p, { watchIntervalMs }));
  const wall = performance.now() - t;
  const each = results.map((r) => r.timing.setupMs + r.timing.scenarioMs + r.timing.teardownMs);
  const sum = each.reduce((a, x) => a + x, 0);
  const failed = results.filter((r) => r.verdict !== 'pass').map((r) => r.name ?? r.scenario);
  rows.push({
    what: `plans/catalogue.yaml, ${results.length} runs (${concurrency} at a time, watchers every ${watchIntervalMs} ms): wall time vs its runs`,
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

async function main(): Promise<void> {
  await assertRoot();
  const k = await kernelFacts();
  const rows: Row[] = [];
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const want = (n: string) => only.length === 0 || only.includes(n);
  if (want('watcher')) await watcher(rows);
  if (want('overhead')) await overhead(rows);
  if (want('delayer')) await delayer(rows);
  if (want('catalogue')) await catalogue(rows);
  if (want('plan')) await plan(rows);
  const table = [
    `Measured on Linux ${k.release} (HZ=${k.hz}), ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| what | baseline | measured | ratio |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.baseline} | ${r.measured} | ${r.ratio} |`),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  if (process.argv.includes('--write-readme')) {
    const text = await readFile('README.md', 'utf8');
    await writeFile('README.md', replaceSection(text, 'bench', table));
  }
}

await main();
