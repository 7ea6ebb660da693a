/**
 * Turns an Expectation and what was observed into named checks, each with expected and actual
 * side by side (packetdrill style). Pure: unit-tested without a kernel.
 */
import type { CountRef, CounterExpectation, Expectation, ServerCallExpectation, ServerQuestion, StateLeftExpectation, StateSpanExpectation, StepExpectation } from './expectation.js';
import type { Answer, Check, Counters, StateSample, StepResult, Verdict } from './result.js';
import { SIDES, type Side } from '../core/sysctl.js';

export interface Observed {
  steps: StepResult[];
  /** The built-in server's syscalls, where the target reports them. */
  serverSteps?: StepResult[];
  /** How late the state watcher can report a transition (ms): a sample is stamped when its poll began. */
  watchLagMs?: number;
  /** One jiffy of the client's kernel (ms): the resolution of the receive stamps in tcp_info. */
  jiffyMs?: number;
  states: Record<Side, StateSample[]>;
  counters: Record<Side, Counters>;
  rulesHit: Record<string, number>;
}

function counterOk(e: CounterExpectation, actual: number): boolean {
  if (typeof e === 'number') return actual === e;
  return (e.min === undefined || actual >= e.min) && (e.max === undefined || actual <= e.max);
}

function fmtCounter(e: CounterExpectation): string | number {
  if (typeof e === 'number') return e;
  if (e.min !== undefined && e.max !== undefined) return `${e.min}..${e.max}`;
  return e.min !== undefined ? `>= ${e.min}` : `<= ${e.max}`;
}

/**
 * When the kernel itself stamped the event a step waited for, ms after the step began: a connect
 * that completed (tcp_ack stamps the SYN-ACK: tcpi_last_ack_recv) or a read that returned data
 * (tcp_event_data_recv: tcpi_last_data_recv). tcp_info is read just after the syscall returns; its
 * stamps count whole jiffies, so `d` jiffies ago is between d - 1 and d + 1 jiffies ago. A later
 * segment only moves the stamp later, never earlier: the range is never too early.
 */
export function kernelStampMs(s: StepResult, jiffyMs: number): [number, number] | undefined {
  const ago = s.op === 'connect' && s.ok && s.tcp?.state === 'ESTABLISHED' ? s.tcp.lastAckRecvMs : s.op === 'read' && (s.bytes ?? 0) > 0 ? s.tcp?.lastDataRecvMs : undefined;
  if (ago === undefined) return undefined;
  const at = (msAgo: number) => Math.min(s.durationMs, Math.max(0, Math.round((s.durationMs - msAgo) * 100) / 100));
  return [at(ago + jiffyMs), at(ago - jiffyMs)];
}

/**
 * A step's time against its window: its duration, or (fromStep) from an earlier step's start to
 * its end. Late, but the kernel stamped its event inside the window: the kernel was on time and
 * the probe woke up late (a loaded machine); the check passes and says so, with both numbers.
 * Every other late time fails with lateByMs.
 */
function timeCheck(name: string, [lo, hi]: [number, number], s: StepResult, from: StepResult | undefined, jiffyMs: number | undefined): Check {
  const base = { name, expected: `${lo.toFixed(1)}..${hi.toFixed(1)} ms` };
  // The step's own times are ms from its start; an origin at an earlier step's start shifts them.
  const shift = from ? s.startMs - from.startMs : 0;
  const ms = from ? Math.round((s.endMs - from.startMs) * 100) / 100 : s.durationMs;
  if (ms >= lo && ms <= hi) return { ...base, actual: `${ms.toFixed(1)} ms`, pass: true };
  const stamp = ms > hi && jiffyMs !== undefined ? kernelStampMs(s, jiffyMs)?.map((t) => Math.round((t + shift) * 100) / 100) : undefined;
  if (stamp && stamp[0]! <= hi && stamp[1]! >= lo) {
    return { ...base, actual: `${ms.toFixed(1)} ms; the kernel had it at ${stamp[0]!.toFixed(1)}..${stamp[1]!.toFixed(1)} ms and the probe woke up late`, pass: true };
  }
  return { ...base, actual: `${ms.toFixed(1)} ms`, pass: false, ...(ms > hi ? { lateByMs: Math.round((ms - hi) * 100) / 100 } : {}) };
}

function stepChecks(label: string, e: StepExpectation, s: StepResult | undefined, byLabel: ReadonlyMap<string, StepResult>, jiffyMs?: number): Check[] {
  if (!s) return [{ name: `${label}: step ran`, expected: true, actual: false, pass: false }];
  const out: Check[] = [];
  const eq = (what: string, expected: unknown, actual: unknown) =>
    out.push({ name: `${label} ${what}`, expected, actual, pass: expected === actual });
  if (e.ok !== undefined) eq('ok', e.ok, s.ok);
  if (e.errno !== undefined) eq('errno', e.errno, s.errno);
  if (e.timedOut !== undefined) eq('timed out', e.timedOut, Boolean(s.timedOut));
  if (typeof e.bytes === 'number') eq('bytes', e.bytes, s.bytes ?? 0);
  else if (e.bytes !== undefined) out.push({ name: `${label} bytes`, expected: fmtCounter(e.bytes), actual: s.bytes ?? 0, pass: counterOk(e.bytes, s.bytes ?? 0) });
  if (e.eof !== undefined) eq('eof', e.eof, Boolean(s.eof));
  if (e.tcpState !== undefined) eq('tcp state', e.tcpState, s.tcp?.state ?? null);
  if (e.totalRetrans !== undefined) eq('tcp total retransmits', e.totalRetrans, s.tcp?.totalRetrans ?? null);
  const inRange = (what: string, [lo, hi]: [number, number], actual: number | undefined) =>
    out.push({ name: `${label} ${what}`, expected: `${lo}..${hi}`, actual: actual ?? null, pass: actual !== undefined && actual >= lo && actual <= hi });
  if (typeof e.rtoUs === 'number') eq('tcp rto (us)', e.rtoUs, s.tcp?.rtoUs ?? null);
  else if (e.rtoUs) inRange('tcp rto (us)', e.rtoUs, s.tcp?.rtoUs);
  if (e.rttUs) inRange('tcp rtt (us)', e.rttUs, s.tcp?.rttUs);
  for (const [field, want] of Object.entries(e.tcp ?? {})) {
    const actual = (s.tcp as Record<string, unknown> | null | undefined)?.[field];
    out.push({ name: `${label} tcp ${field}`, expected: fmtCounter(want), actual: typeof actual === 'number' ? actual : null, pass: typeof actual === 'number' && counterOk(want, actual) });
  }
  if (e.windowMs && e.fromStep === undefined) out.push(timeCheck(`${label} duration`, e.windowMs, s, undefined, jiffyMs));
  else if (e.windowMs) {
    const from = byLabel.get(e.fromStep!);
    const name = `${label} ends after ${e.fromStep} starts`;
    out.push(from ? timeCheck(name, e.windowMs, s, from, jiffyMs) : { name, expected: `${e.windowMs[0].toFixed(1)}..${e.windowMs[1].toFixed(1)} ms`, actual: `no step ${e.fromStep}`, pass: false });
  }
  return out;
}

/** The actual of a counter check whose name the kernel does not have (a typo, or an older kernel). */
export const UNKNOWN_COUNTER = 'unknown counter';
/** The actual of a rule check whose rule the run never installed (a typo, or a trigger that never fired). */
export const NO_SUCH_RULE = 'no such rule';

/**
 * A counter (or rule hit) check. The observed counters list every counter of the kernel, zero
 * deltas included, and the rule hits every rule the run installed, unhit ones included: a name
 * that is not there fails with `missing` as its actual, never reads as 0.
 */
function countCheck(name: string, e: CounterExpectation, observed: Record<string, number>, key: string, missing: string): Check {
  const actual = Object.hasOwn(observed, key) ? observed[key] : undefined;
  if (actual === undefined) return { name, expected: fmtCounter(e), actual: missing, pass: false };
  return { name, expected: fmtCounter(e), actual, pass: counterOk(e, actual) };
}

export function evaluate(expected: Expectation, observed: Observed): { checks: Check[]; verdict: Verdict; answers: Answer[] } {
  const checks: Check[] = [];
  const byLabel = new Map(observed.steps.filter((s) => s.label).map((s) => [s.label!, s]));
  const stepped: Check[] = [];
  for (const [label, e] of Object.entries(expected.steps)) stepped.push(...stepChecks(label, e, byLabel.get(label), byLabel, observed.jiffyMs));
  checks.push(...collapseNumbered(stepped));
  for (const side of SIDES) {
    const seen = [...new Set(observed.states[side].map((s) => s.state))];
    for (const st of expected.states?.[side] ?? []) {
      checks.push({ name: `${side} visits ${st}`, expected: st, actual: seen.join(' ') || '(none)', pass: seen.includes(st) });
    }
    for (const st of expected.statesAbsent?.[side] ?? []) {
      checks.push({ name: `${side} never ${st}`, expected: `not ${st}`, actual: seen.join(' ') || '(none)', pass: !seen.includes(st) });
    }
    for (const [name, e] of Object.entries(expected.counters?.[side] ?? {})) {
      checks.push(countCheck(`${side} ${name}`, e, observed.counters[side], name, UNKNOWN_COUNTER));
    }
  }
  for (const [name, e] of Object.entries(expected.rulesHit ?? {})) {
    checks.push(countCheck(`rule ${name} hit`, e, observed.rulesHit, name, NO_SUCH_RULE));
  }
  for (const e of expected.stateLeft ?? []) checks.push(stateLeftCheck(e, observed, byLabel));
  for (const side of SIDES) {
    const e = expected.listen?.[side];
    if (e) checks.push(...listenChecks(side, e, observed.states[side]));
  }
  for (const e of expected.spans ?? []) checks.push(...spanChecks(e, observed.states[e.side]));
  for (const e of expected.same ?? []) checks.push(sameCheck(e, observed));
  if (observed.serverSteps) for (const e of expected.serverCalls ?? []) checks.push(serverCallCheck(e, observed.serverSteps));
  const answers: Answer[] = [];
  for (const q of expected.asks ?? []) {
    const a = answer(q, observed, byLabel);
    answers.push(a);
    checks.push({ name: `${q.side}: ${q.question}`, expected: q.expect === 'leaves' ? q.leaves : q.holds, actual: a.answer, pass: a.outcome === q.expect });
  }
  const verdict: Verdict = checks.length > 0 && checks.every((c) => c.pass) ? 'pass' : 'fail';
  return { checks, verdict, answers };
}

function describeCall(e: ServerCallExpectation): string {
  const outcome = e.eof ? 'EOF' : e.errno ? e.errno : e.ok === false ? 'failed' : e.ok ? 'ok' : undefined;
  return outcome ? `${e.op} → ${outcome}` : e.op;
}

/** Whether the built-in server made a syscall with this outcome (or, `absent`, never did). */
export function serverCallCheck(e: ServerCallExpectation, calls: readonly StepResult[]): Check {
  const match = (c: StepResult) =>
    c.op === e.op && (e.ok === undefined || c.ok === e.ok) && (e.errno === undefined || c.errno === e.errno) && (e.eof === undefined || Boolean(c.eof) === e.eof);
  const found = calls.find(match);
  const same = calls.filter((c) => c.op === e.op).map((c) => (c.eof ? 'EOF' : (c.errno ?? (c.ok ? 'ok' : 'failed'))));
  const actual = found ? `${describeCall(e)} at ${found.startMs.toFixed(1)} ms` : same.length ? `${e.op}: ${[...new Set(same)].join(', ')}` : `no ${e.op}`;
  return e.absent
    ? { name: `server never made ${describeCall(e)}`, expected: `no ${describeCall(e)}`, actual, pass: !found }
    : { name: `server made ${describeCall(e)}`, expected: describeCall(e), actual, pass: Boolean(found) };
}

/**
 * Answers a question from the watcher's samples of `q.side`: the connection's socket is the
 * first one seen in a `holding` state; its first sample in another state (GONE included) says
 * when it left. Times count from the start of step `q.fromStep`; the watcher reports a
 * transition up to one poll late.
 */
export function answer(q: ServerQuestion, observed: Observed, byLabel: Map<string, StepResult>): Answer {
  const t0 = byLabel.get(q.fromStep)?.startMs;
  const samples = observed.states[q.side];
  // The connection's socket: the first one seen holding; else the first one seen at all (it left before a sample caught it holding).
  const first = samples.find((s) => q.holding.includes(s.state)) ?? samples.find((s) => s.state !== 'LISTEN' && s.state !== 'GONE');
  if (t0 === undefined || !first) {
    return { question: q.question, answer: t0 === undefined ? `unanswered: no step ${q.fromStep}` : `unanswered: no connection seen on the ${q.side} side`, outcome: 'unseen' };
  }
  const mine = samples.filter((s) => s.local === first.local && s.remote === first.remote);
  const left = mine.find((s) => !q.holding.includes(s.state));
  if (left) {
    const from = q.fromWhat ?? q.fromStep;
    const raw = Math.round((left.tMs - t0) * 10) / 10;
    // A sample carries the time its poll began: a change right after the step can be stamped a poll early.
    const early = raw < 0 && -raw <= (observed.watchLagMs ?? 0);
    const afterMs = early ? 0 : raw;
    const when = early ? `within ${observed.watchLagMs} ms of ${from}` : afterMs < 0 ? `${(-afterMs).toFixed(1)} ms before ${from}` : `${afterMs.toFixed(1)} ms after ${from}`;
    return { question: q.question, answer: `${q.leaves}: ${when} (then ${left.state})`, outcome: 'leaves', afterMs };
  }
  const last = mine.at(-1)!;
  const endMs = Math.max(...observed.steps.map((s) => s.endMs), last.tMs);
  return { question: q.question, answer: `${q.holds}: ${last.state} until the end, ${(endMs - t0).toFixed(0)} ms after ${q.fromWhat ?? q.fromStep}`, outcome: 'holds' };
}

/**
 * Checks of numbered steps (`connect-0` … `connect-511`) that agree are one line: same check,
 * same expectation, all passing, consecutive numbers — "connect-0..511 errno: expected null, got
 * null (×512)". Durations are given as their range. A check that differs (a failure, another
 * expectation) breaks the run and stands alone, so nothing is hidden.
 */
export function collapseNumbered(checks: readonly Check[]): Check[] {
  const out: Check[] = [];
  const parse = (c: Check) => {
    const m = /^(.+)-(\d+) (.+)$/.exec(c.name);
    return m ? { prefix: m[1]!, n: Number(m[2]), what: m[3]! } : undefined;
  };
  const ms = (a: unknown) => (typeof a === 'string' ? /^(-?[\d.]+) ms$/.exec(a)?.[1] : undefined);
  let i = 0;
  while (i < checks.length) {
    const first = checks[i]!;
    const p = parse(first);
    if (p && first.pass) {
      // The same check of the following numbers: connect-0 ok, connect-1 ok, … (checks of one step are interleaved).
      const group = [first];
      let next = p.n + 1;
      for (let k = i + 1; k < checks.length; k++) {
        const q = parse(checks[k]!);
        if (!q || q.prefix !== p.prefix) break;
        if (q.what !== p.what) continue;
        const c = checks[k]!;
        const sameActual = c.actual === first.actual || (ms(c.actual) !== undefined && ms(first.actual) !== undefined);
        if (q.n !== next || !c.pass || JSON.stringify(c.expected) !== JSON.stringify(first.expected) || !sameActual) break;
        group.push(c);
        next++;
      }
      if (group.length >= 3) {
        const values = group.map((c) => ms(c.actual));
        const actual = values.every((v) => v !== undefined)
          ? `${Math.min(...values.map(Number)).toFixed(1)}..${Math.max(...values.map(Number)).toFixed(1)} ms`
          : first.actual;
        out.push({ name: `${p.prefix}-${p.n}..${p.n + group.length - 1} ${p.what} (${group.length} steps)`, expected: first.expected, actual, pass: true });
        const taken = new Set(group);
        // Drop the grouped checks; keep the others of the same steps in order.
        const rest = checks.slice(i + 1).filter((c) => !taken.has(c));
        return [...out, ...collapseNumbered(rest)];
      }
    }
    out.push(first);
    i++;
  }
  return out;
}

/** Two sums of observed counts that must be equal; a name the run lacks fails like a counter check. */
export function sameCheck(e: { name: string; left: CountRef[]; right: CountRef[] }, observed: Observed): Check {
  const missing: string[] = [];
  const value = (r: CountRef): number => {
    const table = 'rule' in r ? observed.rulesHit : observed.counters[r.side];
    const key = 'rule' in r ? r.rule : r.counter;
    if (!Object.hasOwn(table, key)) missing.push(`${'rule' in r ? `rule ${r.rule}: ${NO_SUCH_RULE}` : `${r.side} ${r.counter}: ${UNKNOWN_COUNTER}`}`);
    return table[key] ?? 0;
  };
  const fmt = (rs: CountRef[]) => rs.map((r) => ('rule' in r ? `rule ${r.rule}` : `${r.side} ${r.counter}`)).join(' + ');
  const expected = `${fmt(e.left)} = ${fmt(e.right)}`;
  const l = e.left.reduce((a, r) => a + value(r), 0);
  const r = e.right.reduce((a, x) => a + value(x), 0);
  if (missing.length) return { name: e.name, expected, actual: missing.join('; '), pass: false };
  return { name: e.name, expected, actual: `${l} vs ${r}`, pass: l === r };
}

/**
 * When the first socket seen in `e.state` left it: its next sample with another state (GONE when
 * it disappeared), in ms from the start of step `e.fromStep` (or t = 0).
 */
export function stateLeftCheck(e: StateLeftExpectation, observed: Observed, byLabel: Map<string, StepResult>): Check {
  const name = `${e.side} leaves ${e.state}${e.to ? ` for ${e.to}` : ''}${e.fromStep ? ` (from ${e.fromStep})` : ''}`;
  const [lo, hi] = e.windowMs;
  const expected = `${e.to ?? 'any'} at ${lo.toFixed(1)}..${hi.toFixed(1)} ms`;
  const t0 = e.fromStep ? byLabel.get(e.fromStep)?.startMs : 0;
  if (t0 === undefined) return { name, expected, actual: `no step ${e.fromStep}`, pass: false };
  const samples = observed.states[e.side];
  const first = samples.find((s) => s.state === e.state);
  if (!first) return { name, expected, actual: `never ${e.state}`, pass: false };
  const next = samples.find((s) => s.tMs >= first.tMs && s.local === first.local && s.remote === first.remote && s.state !== e.state);
  if (!next) return { name, expected, actual: `still ${e.state} at the end`, pass: false };
  const at = next.tMs - t0;
  const rightState = !e.to || next.state === e.to;
  return { name, expected, actual: `${next.state} at ${at.toFixed(1)} ms`, pass: rightState && at >= lo && at <= hi, ...(rightState && at > hi ? { lateByMs: Math.round((at - hi) * 100) / 100 } : {}) };
}

/** The LISTEN socket's accept queue (rq: most seen) and backlog (wq: last seen). */
export function listenChecks(side: Side, e: { rqMax?: CounterExpectation; wq?: number; local?: string }, samples: StateSample[]): Check[] {
  const listen = samples.filter((s) => s.state === 'LISTEN' && (e.local === undefined || s.local === e.local));
  const out: Check[] = [];
  if (e.rqMax !== undefined) {
    const actual = listen.length ? Math.max(...listen.map((s) => s.rq ?? 0)) : null;
    out.push({ name: `${side} listener accept queue (max Recv-Q)`, expected: fmtCounter(e.rqMax), actual, pass: actual !== null && counterOk(e.rqMax, actual) });
  }
  if (e.wq !== undefined) {
    const actual = listen.length ? (listen[listen.length - 1]!.wq ?? null) : null;
    out.push({ name: `${side} listener backlog (Send-Q)`, expected: e.wq, actual, pass: actual === e.wq });
  }
  return out;
}

export interface StateSpan {
  local: string;
  remote: string;
  enteredMs: number;
  /** The next state ('GONE' included), or 'held' if the socket never left while observed. */
  then: string;
  /** ms from the first sample in the state to the first sample out of it; null when held. */
  lastsMs: number | null;
  /** Highest idiag_retrans seen in the state. */
  retrans: number;
}

/** Each socket's first stay in `state` (a socket is local+remote; samples are in time order). */
export function stateSpans(samples: readonly StateSample[], state: string): StateSpan[] {
  const spans = new Map<string, StateSpan>();
  const closed = new Set<string>();
  for (const s of samples) {
    const key = `${s.local}|${s.remote}`;
    const span = spans.get(key);
    if (!span) {
      if (s.state === state) spans.set(key, { local: s.local, remote: s.remote, enteredMs: s.tMs, then: 'held', lastsMs: null, retrans: s.retrans ?? 0 });
    } else if (!closed.has(key)) {
      if (s.state === state) span.retrans = Math.max(span.retrans, s.retrans ?? 0);
      else {
        span.then = s.state;
        span.lastsMs = Math.round((s.tMs - span.enteredMs) * 100) / 100;
        closed.add(key);
      }
    }
  }
  return [...spans.values()];
}

function range(xs: readonly number[]): string {
  if (!xs.length) return '(none)';
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? String(lo) : `${lo}..${hi}`;
}

/** Checks of one StateSpanExpectation, aggregated over the sockets that entered the state. */
export function spanChecks(e: StateSpanExpectation, samples: readonly StateSample[]): Check[] {
  const spans = stateSpans(samples, e.state);
  const p = `${e.side} ${e.state}`;
  const out: Check[] = [];
  const count = e.sockets ?? { min: 1 };
  out.push({ name: `${p} sockets`, expected: fmtCounter(count), actual: spans.length, pass: counterOk(count, spans.length) });
  if (e.then !== undefined) {
    const nexts = [...new Set(spans.map((s) => s.then))];
    out.push({ name: `${p} then`, expected: e.then, actual: nexts.join(' ') || '(none)', pass: spans.length > 0 && nexts.every((n) => n === e.then) });
  }
  if (e.lastsMs) {
    const [lo, hi] = e.lastsMs;
    const ds = spans.map((s) => s.lastsMs);
    const held = ds.some((d) => d === null);
    const vals = ds.filter((d): d is number => d !== null);
    // Late only: every span that ended, ended within the window or after it (none early, none held).
    const late = spans.length > 0 && !held && vals.every((d) => d >= lo) && vals.some((d) => d > hi);
    out.push({
      name: `${p} lasts`,
      expected: `${lo.toFixed(1)}..${hi.toFixed(1)} ms`,
      actual: held ? `held (${vals.length} left)` : vals.length ? `${range(vals.map((v) => Math.round(v * 10) / 10))} ms` : '(none)',
      pass: spans.length > 0 && !held && vals.every((d) => d >= lo && d <= hi),
      ...(late ? { lateByMs: Math.round((Math.max(...vals) - hi) * 100) / 100 } : {}),
    });
  }
  if (e.retrans !== undefined) {
    const rs = spans.map((s) => s.retrans);
    out.push({ name: `${p} retransmits`, expected: fmtCounter(e.retrans), actual: range(rs), pass: spans.length > 0 && rs.every((r) => counterOk(e.retrans!, r)) });
  }
  return out;
}
