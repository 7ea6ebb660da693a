/**
 * The user's own client, explained: each connection it made to the target (as the client-side
 * state watcher saw it) is set against what the kernel would have done under the fault. Pure:
 * unit-tested without a kernel.
 */
import type { ConnectionPrediction } from './expectation.js';
import type { Check, StateSample } from './result.js';


export interface ClientConnection {
  local: string;
  remote: string;
  /** Every state it was seen in, in order, ms from the client's start. */
  states: { state: string; tMs: number }[];
  /** The most retransmissions (idiag_retrans) it showed. */
  retrans: number;
  /** 'GONE' (closed and released), a state it was last seen in ('held' when observation ended), with when. */
  end: { how: 'gone' | 'held'; state: string; tMs: number };
}

/** Groups the client side's samples into connections to `remote` (address:port of the target). */
export function connectionsOf(samples: readonly StateSample[], remote: string): ClientConnection[] {
  const byKey = new Map<string, ClientConnection>();
  for (const s of samples) {
    if (s.remote !== remote) continue;
    const key = `${s.local}|${s.remote}`;
    let c = byKey.get(key);
    if (!c) {
      if (s.state === 'GONE') continue;
      c = { local: s.local, remote: s.remote, states: [], retrans: 0, end: { how: 'held', state: s.state, tMs: s.tMs } };
      byKey.set(key, c);
    }
    c.retrans = Math.max(c.retrans, s.retrans ?? 0);
    const last = c.states[c.states.length - 1];
    if (s.state === 'GONE') {
      c.end = { how: 'gone', state: last?.state ?? '?', tMs: s.tMs };
      continue;
    }
    if (!last || last.state !== s.state) c.states.push({ state: s.state, tMs: s.tMs });
    c.end = { how: 'held', state: s.state, tMs: s.tMs };
  }
  return [...byKey.values()];
}

export interface Explained {
  connection: ClientConnection;
  /** One line for humans. */
  line: string;
  /** 'client' ended it before the kernel would; 'kernel' ended it in its window; 'held' still open; 'other' not as predicted. */
  endedBy: 'client' | 'kernel' | 'held' | 'peer' | 'other';
  pass: boolean;
  /** Why it failed, when it did. */
  problem?: string;
}

const fmtS = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
const fmtWin = ([lo, hi]: [number, number]) => (Number.isFinite(hi) ? `${fmtS(lo)}–${fmtS(hi)}` : `${fmtS(lo)} or later`);
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * One connection against the prediction. `strikeMs`: when the fault struck (mid-connection
 * faults), ms from the client's start; `lagMs`: how late the watcher can see a transition.
 */
export function explainConnection(c: ClientConnection, p: ConnectionPrediction, opts: { strikeMs?: number; strikeSpanMs?: number; lagMs: number; retransName?: string }): Explained {
  const entered = c.states.find((s) => s.state === p.state);
  const rname = opts.retransName ?? 'retransmission';
  if (!entered) {
    const seen = c.states.map((s) => s.state).join(' → ');
    // Before a strike a connection may do anything (the fault is not in force yet).
    if (p.from === 'strike' && (opts.strikeMs === undefined || c.end.tMs < opts.strikeMs)) {
      return { connection: c, line: `${seen}, before the fault struck`, endedBy: 'other', pass: true };
    }
    return { connection: c, line: `never in ${p.state} (${seen})`, endedBy: 'other', pass: false, problem: `never in ${p.state}, where the fault holds a connection` };
  }
  const t0 = p.from === 'strike' ? (opts.strikeMs ?? entered.tMs) : entered.tMs;
  const after = (t: number) => t - t0;
  const leftIdx = c.states.indexOf(entered) + 1;
  const left = c.states[leftIdx];
  const endT = left ? left.tMs : c.end.how === 'gone' ? c.end.tMs : undefined;
  const endState = left ? left.state : c.end.how === 'gone' ? 'GONE' : undefined;
  const retrans = `${plural(c.retrans, rname)}`;
  if (c.retrans > (p.retrans ?? Infinity)) {
    return { connection: c, line: `${retrans} in ${p.state}, more than the kernel makes (${p.retrans})`, endedBy: 'other', pass: false, problem: `${c.retrans} retransmissions > ${p.retrans}` };
  }
  if (endT === undefined) {
    const held = after(c.end.tMs);
    if (p.endsMs && held > p.endsMs[1] + opts.lagMs) {
      return { connection: c, line: `still ${p.state} ${fmtS(held)} in, past the kernel's ${fmtWin(p.endsMs)}`, endedBy: 'other', pass: false, problem: `held in ${p.state} past the kernel's window` };
    }
    return { connection: c, line: `still ${p.state} when observation ended (${fmtS(held)} in, ${retrans})${p.endsMs ? `; the kernel would give up at ${fmtWin(p.endsMs)}` : ''}`, endedBy: 'held', pass: true };
  }
  const d = after(endT);
  // A strike that took a while to fire (docker kill) takes hold anywhere in that span.
  const span = p.from === 'strike' ? (opts.strikeSpanMs ?? 0) : 0;
  const win: [number, number] | undefined = p.endsMs && [p.endsMs[0], p.endsMs[1] + span];
  if (!win) {
    return { connection: c, line: `left ${p.state} for ${endState} after ${fmtS(d)} (${retrans}): the client's (or the peer's) doing — the kernel alone would hold it`, endedBy: 'client', pass: true };
  }
  if (d < win[0] - opts.lagMs) {
    // Waiting on the fault (retransmitting, or a connect that hangs) and ending first is a timeout;
    // ending with nothing outstanding is a close that came before the fault touched the connection.
    const waiting = c.retrans > 0 || p.state === 'SYN_SENT';
    const line = waiting
      ? `gave up after ${fmtS(d)} in ${p.state} with ${retrans}: the client's own timeout — the kernel would have given up at ${fmtWin(win)}`
      : `closed by the client ${fmtS(d)} ${p.from === 'strike' ? 'after the strike' : `into ${p.state}`}, before the fault touched it (no retransmission)`;
    return { connection: c, line, endedBy: 'client', pass: true };
  }
  if (d <= win[1] + opts.lagMs) {
    const thenOk = !p.then || endState === p.then;
    const what = p.from === 'strike' ? `ended by the kernel under the fault: ${p.state} for ${fmtS(d)} after the strike` : `waited the kernel's full schedule: ${p.state} for ${fmtS(d)}`;
    return {
      connection: c,
      line: `${what} with ${retrans}, then ${endState}${p.errno ? ` (${p.errno})` : ''} — predicted ${fmtWin(win)}`,
      endedBy: 'kernel',
      pass: thenOk,
      ...(thenOk ? {} : { problem: `ended as ${endState}, the kernel ends it as ${p.then}` }),
    };
  }
  return { connection: c, line: `left ${p.state} after ${fmtS(d)}, later than the kernel's ${fmtWin(win)}`, endedBy: 'other', pass: false, problem: 'ended later than the kernel would' };
}

/** A line summing up several connections ("made 2 connections, each waited the kernel's full SYN schedule"). */
export function summarize(explained: readonly Explained[], attempts?: number): string {
  if (explained.length === 0) return attempts ? `made ${plural(attempts, 'connection attempt')}, each ended by the kernel at once (too fast for the state watcher; counted by the fault's rule)` : 'made no connection to the target';
  const by = (k: Explained['endedBy']) => explained.filter((e) => e.endedBy === k).length;
  if (explained.length === 1) return explained[0]!.line;
  const parts = [`made ${explained.length} connections (the client retried)`];
  if (by('kernel')) parts.push(`${by('kernel')} waited the kernel's full schedule`);
  if (by('client')) parts.push(`${by('client')} ended earlier by the client's own choice`);
  if (by('held')) parts.push(`${by('held')} still open at the end`);
  if (by('other')) parts.push(`${by('other')} not as the kernel allows`);
  return parts.join(', ');
}

export interface ClientOutcome {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  timedOut: boolean;
}

export interface ClientExpect {
  /** `--expect-exit`: a code, 'nonzero' or 0. */
  exit?: number | 'nonzero';
  /** `--expect-within`: the client ended within this many ms. */
  withinMs?: number;
}

/** The checks of a client run: the fault fired, each connection as the kernel allows, the user's own assertions. */
export function clientChecks(explained: readonly Explained[], rulesHit: Record<string, number>, ruleNames: readonly string[], outcome: ClientOutcome, expect: ClientExpect, prediction?: Pick<ConnectionPrediction, 'fleeting'>): Check[] {
  const checks: Check[] = [];
  for (const name of ruleNames) {
    const actual = rulesHit[name];
    checks.push({ name: `rule ${name} hit (the fault fired)`, expected: '>= 1', actual: actual ?? 'no such rule', pass: actual !== undefined && actual >= 1 });
  }
  // A refused connect lives shorter than a watcher poll: then the rule hits are the connections' proof.
  if (!prediction?.fleeting) checks.push({ name: 'client connected to the target', expected: '>= 1 connection', actual: explained.length, pass: explained.length > 0 });
  explained.forEach((e, i) => {
    checks.push({ name: `connection ${i + 1} (${e.connection.local}) as the kernel allows`, expected: 'no later and no other than the model', actual: e.problem ?? e.line, pass: e.pass });
  });
  checks.push({ name: 'client ended by itself', expected: 'exited before the harness stopped it', actual: outcome.timedOut ? `killed after ${fmtS(outcome.durationMs)}` : 'exited', pass: !outcome.timedOut });
  if (expect.exit !== undefined) {
    const actual = outcome.exitCode ?? `signal ${outcome.signal}`;
    const pass = expect.exit === 'nonzero' ? outcome.exitCode !== null && outcome.exitCode !== 0 : outcome.exitCode === expect.exit;
    checks.push({ name: 'client exit (--expect-exit)', expected: expect.exit, actual, pass });
  }
  if (expect.withinMs !== undefined) {
    checks.push({ name: 'client ended within (--expect-within)', expected: `<= ${fmtS(expect.withinMs)}`, actual: fmtS(outcome.durationMs), pass: !outcome.timedOut && outcome.durationMs <= expect.withinMs });
  }
  return checks;
}
