/** Human-readable report of a Result: what was set up, what was injected, observed vs expected, verdict. */
import { basename } from 'node:path';
import type { Result, StepResult } from '../verdict/result.js';

/**
 * A run's name for people and CI (JUnit test names, the report index): stable across runs (no
 * runId). A plan entry's own name leads (two entries may differ only in sysctls); your own
 * client's command is named, so the probe's run and a client's of the same scenario differ.
 */
export function runName(r: Result): string {
  const params = Object.entries(r.params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const client = r.client ? ` with ${r.client.image ? `${r.client.image}: ` : ''}${basename(r.client.argv[0] ?? '')}` : '';
  const what = `${r.scenario}${params ? ` [${params}]` : ''} on ${r.target.name}${client}`;
  return r.name ? `${r.name} (${what})` : what;
}

export function formatResult(r: Result): string {
  const L: string[] = [];
  const mark = r.verdict === 'pass' ? 'PASS' : r.verdict === 'fail' ? 'FAIL' : r.verdict === 'inconclusive' ? 'INCONCLUSIVE' : 'ERROR';
  L.push(`${mark}  ${r.scenario}  (run ${r.runId}, target ${r.target.name}/${r.target.backend} ${r.target.address}:${r.target.port})`);
  const sys = (['client', 'server'] as const)
    .map((side) => Object.entries(r.sysctls[side]).map(([k, v]) => `${side}:${k.replace(/^net\.ipv4\./, '')}=${v}`).join(' '))
    .filter(Boolean)
    .join(' ');
  if (sys) L.push(`  sysctls   ${sys}`);
  if (r.api) L.push(`  api       ${r.api}: connect/read/write/close block (SO_SNDTIMEO/SO_RCVTIMEO)`);
  const cal = r.calibration;
  if (cal) {
    const after = cal.after ? `, after a failed check ${cal.after.maxMs} ms` : '';
    L.push(`  machine   wake-up lateness ${cal.before.medianMs}/${cal.before.p90Ms}/${cal.before.maxMs} ms (median/p90/max of ${cal.before.samples})${after}; windows +${cal.slackMs} ms${cal.loaded ? `; above ${cal.boundMs} ms: too loaded to judge` : ''}`);
  }
  for (const a of r.fault.applied) L.push(`  injected  ${a}`);
  for (const b of r.expected.because ?? []) L.push(`  model     ${b}`);
  const what = (s: StepResult) => (s.ok ? 'ok' : s.timedOut ? 'still waiting (step timeout)' : (s.errno ?? 'failed'));
  for (const run of numberedRuns(r.steps, what)) {
    const s = run[0]!;
    if (run.length > 2) {
      // connect-0 … connect-511 alike: one line.
      const ds = run.map((x) => x.durationMs);
      const label = `${s.label!.replace(/-\d+$/, '')}-${s.label!.match(/\d+$/)![0]}..${run.at(-1)!.label!.match(/\d+$/)![0]}`;
      L.push(`  step      ${label.padEnd(14)} ${what(s).padEnd(12)} ${Math.min(...ds).toFixed(1)}..${Math.max(...ds).toFixed(1)} ms  (${run.length} steps alike)`);
      continue;
    }
    for (const x of run) {
      const extra = [x.bytes ? `${x.bytes} B` : '', x.eof ? 'EOF' : '', x.tcp ? `tcp ${x.tcp.state} retrans ${x.tcp.totalRetrans}` : ''].filter(Boolean).join(', ');
      L.push(`  ${x.side === 'server' ? 'srv step ' : 'step     '} ${(x.label ?? x.op).padEnd(14)} ${what(x).padEnd(12)} ${x.durationMs.toFixed(1).padStart(9)} ms${extra ? `  (${extra})` : ''}`);
    }
  }
  for (const s of r.serverSteps ?? []) {
    const extra = [s.bytes ? `${s.bytes} B` : '', s.eof ? 'EOF' : ''].filter(Boolean).join(', ');
    L.push(`  server    ${s.op.padEnd(14)} ${what(s).padEnd(12)} at ${s.startMs.toFixed(1).padStart(9)} ms${extra ? `  (${extra})` : ''}`);
  }
  for (const a of r.answers ?? []) L.push(`  asked     ${a.question} ${a.answer}`);
  for (const side of ['client', 'server'] as const) {
    const seq = r.states[side].map((s) => `${s.state}@${s.tMs.toFixed(0)}`);
    if (seq.length) L.push(`  ${side.padEnd(9)} ${seq.slice(0, 12).join(' → ')}${seq.length > 12 ? ` … (${seq.length})` : ''}`);
  }
  const hits = Object.entries(r.fault.rulesHit).map(([k, v]) => `${k}=${v}`).join(' ');
  if (hits) L.push(`  rules hit ${hits}`);
  if (r.client) {
    const c = r.client;
    const end = c.timedOut ? `killed by the harness after ${c.durationMs.toFixed(0)} ms` : `exit ${c.exitCode ?? `signal ${c.signal}`} after ${c.durationMs.toFixed(0)} ms`;
    L.push(`  client    ${c.image ? `[${c.image}] ` : ''}${c.argv.map((a) => (/^[\w@%+=:,./{}-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}: ${end}`);
    if (c.struck) L.push(`  struck    at ${c.struck.atMs.toFixed(0)} ms: ${c.struck.why}`);
    c.connections.forEach((k, i) => L.push(`  conn ${String(i + 1).padEnd(4)} ${k.local}: ${k.explanation}`));
    L.push(`  summary   ${c.summary}`);
    const err = c.stderrTail.trim().split('\n').slice(-3).join(' | ');
    if (err) L.push(`  stderr    ${err.slice(0, 300)}`);
  }
  for (const c of r.checks) {
    L.push(`  ${c.pass ? '✓' : '✗'} ${c.name}: expected ${fmt(c.expected)}, got ${fmt(c.actual)}`);
  }
  if (r.error) L.push(`  error     ${r.error.code}${r.error.stage ? ` at stage ${r.error.stage}` : ''}: ${r.error.message}`);
  for (const c of r.captures ?? []) L.push(`  pcap      ${c.file} (${c.side}, ${c.packets} packets)`);
  if (r.revert.failed.length) L.push(`  NOT REVERTED: ${r.revert.failed.map((f) => f.describe).join('; ')} — run harness gc`);
  L.push(`  timing    setup ${r.timing.setupMs} ms, scenario ${r.timing.scenarioMs} ms, teardown ${r.timing.teardownMs} ms`);
  return `${L.join('\n')}\n`;
}

/** Consecutive steps numbered alike (`connect-0`, `connect-1`, …) with the same outcome, grouped. */
function numberedRuns(steps: readonly StepResult[], what: (s: StepResult) => string): StepResult[][] {
  const out: StepResult[][] = [];
  const key = (s: StepResult) => {
    const m = s.label ? /^(.+)-(\d+)$/.exec(s.label) : null;
    return m ? { prefix: m[1]!, n: Number(m[2]), same: `${m[1]}|${s.op}|${what(s)}|${s.tcp?.state ?? ''}` } : undefined;
  };
  for (const s of steps) {
    const last = out.at(-1);
    const k = key(s);
    const prev = last && key(last.at(-1)!);
    if (k && prev && prev.same === k.same && k.n === prev.n + 1) last!.push(s);
    else out.push([s]);
  }
  return out;
}

function fmt(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
