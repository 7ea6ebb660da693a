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
  /**
   * 'client' ended it before the kernel would; 'kernel' ended it in its window; 'held' still open;
   * 'before-fault' it was over before the fault struck; 'brief' it opened and closed between two
   * polls of the watcher (seen only as the kernel freed it) while the fault was in force; 'other'
   * not as predicted.
   */
  endedBy: 'client' | 'kernel' | 'held' | 'before-fault' | 'brief' | 'other';
  pass: boolean;
  /** Why it failed, when it did. */
  problem?: string;
  /**
   * When the kernel ends this connection under the fault, ms on the client's clock (the run's
   * pictures draw it on the connection's lane): the prediction's window from the strike, or from
   * when the connection entered the state the fault holds it in. The end is null when the kernel
   * sets none (a reject that ends a connection at the client's next write): JSON has no Infinity.
   * Absent where nothing was judged against a window (over before the strike, seen only at its
   * free, no window predicted).
   */
  windowMs?: [number, number | null];
}

const fmtS = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
/** A window; ends that would print the same (7.1 s–7.1 s) get another digit. */
export const fmtWin = ([lo, hi]: [number, number]): string => {
  if (!Number.isFinite(hi)) return `${fmtS(lo)} or later`;
  if (fmtS(lo) !== fmtS(hi)) return `${fmtS(lo)}–${fmtS(hi)}`;
  return lo >= 1000 ? `${(lo / 1000).toFixed(2)} s–${(hi / 1000).toFixed(2)} s` : `${lo.toFixed(1)} ms–${hi.toFixed(1)} ms`;
};
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * One connection against the prediction. `strikeMs`: when the fault struck (mid-connection
 * faults), ms from the client's start; `lagMs`: how late the watcher can see a transition.
 */
export function explainConnection(c: ClientConnection, p: ConnectionPrediction, opts: { strikeMs?: number; strikeSpanMs?: number; lagMs: number; retransName?: string }): Explained {
  const entered = c.states.find((s) => s.state === p.state);
  const rname = opts.retransName ?? 'retransmission';
  // Before a strike a connection may do anything (the fault is not in force yet).
  const beforeStrike = p.from === 'strike' && (opts.strikeMs === undefined || c.end.tMs < opts.strikeMs);
  // Opened once the fault was in force (first seen connecting after the strike): the kernel
  // treats it as a new connection to what the fault left (a crashed host drops its SYNs).
  const first = c.states[0];
  if (p.afterStrike && opts.strikeMs !== undefined && first && first.tMs >= opts.strikeMs && (first.state === 'SYN_SENT' || seenOnlyFreed(c))) {
    const e = explainConnection(c, { ...p.afterStrike, from: 'enter' }, { lagMs: opts.lagMs, ...(opts.retransName ? { retransName: opts.retransName } : {}) });
    return { ...e, line: `opened after the strike: ${e.line}` };
  }
  if (seenOnlyFreed(c)) {
    // Opened and closed between two polls: its states were never sampled, only its free.
    const freed = `opened and closed between two polls (seen only as the kernel freed it, ${fmtS(c.end.tMs)} in)`;
    if (beforeStrike) return { connection: c, line: `${freed}, before the fault struck`, endedBy: 'before-fault', pass: true };
    if (p.fleeting) return { connection: c, line: `refused at once: ${freed}`, endedBy: 'kernel', pass: true };
    return { connection: c, line: `${freed}: too brief for the fault to hold it in ${p.state}`, endedBy: 'brief', pass: true };
  }
  if (!entered) {
    const seen = c.states.map((s) => s.state).join(' → ');
    if (beforeStrike) return { connection: c, line: `${seen}, before the fault struck`, endedBy: 'before-fault', pass: true };
    return { connection: c, line: `never in ${p.state} (${seen})`, endedBy: 'other', pass: false, problem: `never in ${p.state}, where the fault holds a connection` };
  }
  const t0 = p.from === 'strike' ? (opts.strikeMs ?? entered.tMs) : entered.tMs;
  const after = (t: number) => t - t0;
  // A strike that took a while to fire (docker kill) takes hold anywhere in that span.
  const span = p.from === 'strike' ? (opts.strikeSpanMs ?? 0) : 0;
  const win: [number, number] | undefined = p.endsMs && [p.endsMs[0], p.endsMs[1] + span];
  const leftIdx = c.states.indexOf(entered) + 1;
  const left = c.states[leftIdx];
  const endT = left ? left.tMs : c.end.how === 'gone' ? c.end.tMs : undefined;
  const endState = left ? left.state : c.end.how === 'gone' ? 'GONE' : undefined;
  const retrans = `${plural(c.retrans, rname)}`;
  // The window on the client's clock, for the pictures; the judgement below is relative to t0.
  const explained = againstWindow();
  return win ? { ...explained, windowMs: [t0 + win[0], Number.isFinite(win[1]) ? t0 + win[1] : null] } : explained;

  function againstWindow(): Explained {
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
    if (!win) {
      return { connection: c, line: `left ${p.state} for ${endState} after ${fmtS(d)} (${retrans}): the client's (or the peer's) doing — the kernel alone would hold it`, endedBy: 'client', pass: true };
    }
    if (d <= win[1] + opts.lagMs && (endState === 'FIN_WAIT1' || endState === 'FIN_WAIT2') && p.then !== endState) {
      // Only the application's close (or shutdown) takes a socket from ESTABLISHED to FIN_WAIT: the
      // client ended it, before the kernel would have or within the time it allows (a reject that
      // strikes at the next write: the FIN is that write). Its FIN may be retransmitted meanwhile.
      const when = d < win[0] - opts.lagMs ? `before the kernel would have ended it at ${fmtWin(win)}` : `within the kernel's ${fmtWin(win)}`;
      return { connection: c, line: `closed by the client ${fmtS(d)} ${p.from === 'strike' ? 'after the strike' : `into ${p.state}`} (${endState}, ${retrans}), ${when}`, endedBy: 'client', pass: true };
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
}

/**
 * A connection the state watcher saw only as the kernel freed it (`CLOSE`, then `GONE`: the
 * watcher's destroy notifications; a poll never shows CLOSE, an unhashed state).
 */
export function seenOnlyFreed(c: ClientConnection): boolean {
  return c.states.length === 1 && c.states[0]!.state === 'CLOSE' && c.end.how === 'gone';
}

/** A line summing up several connections ("made 2 connections, each waited the kernel's full SYN schedule"). */
export function summarize(explained: readonly Explained[], attempts?: number): string {
  if (explained.length === 0) return attempts ? `made ${plural(attempts, 'connection attempt')}, each ended by the kernel at once (too fast for the state watcher; counted by the fault's rule)` : 'made no connection to the target';
  const by = (k: Explained['endedBy']) => explained.filter((e) => e.endedBy === k).length;
  if (explained.length === 1) return explained[0]!.line;
  const parts = [`made ${explained.length} connections`];
  if (by('kernel')) parts.push(`${by('kernel')} ended by the kernel as it predicts`);
  if (by('client')) parts.push(`${by('client')} ended earlier by the client's own choice`);
  if (by('held')) parts.push(`${by('held')} still open at the end`);
  if (by('before-fault')) parts.push(`${by('before-fault')} over before the fault struck`);
  if (by('brief')) parts.push(`${by('brief')} opened and closed between two polls`);
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

/**
 * A mid-connection fault (it strikes the client's connection: app-crash, host-crash, …): when it
 * was to strike, and when and why it did — absent if it never came (the client was done first).
 */
export interface StrikeOutcome {
  planned: string;
  struck?: { atMs: number; why: string };
}

/** The checks of a client run: the fault fired, each connection as the kernel allows, the user's own assertions. */
export function clientChecks(
  explained: readonly Explained[],
  rulesHit: Record<string, number>,
  ruleNames: readonly string[],
  outcome: ClientOutcome,
  expect: ClientExpect,
  opts: { prediction?: Pick<ConnectionPrediction, 'fleeting'>; strike?: StrikeOutcome } = {},
): Check[] {
  const { prediction, strike } = opts;
  const checks: Check[] = [];
  // A fault that never struck proved nothing about the client: a run over before it fails.
  if (strike) {
    checks.push({
      name: 'the fault struck while the client ran (the fault fired)',
      expected: strike.planned,
      actual: strike.struck
        ? `${fmtS(strike.struck.atMs)} in: ${strike.struck.why}`
        : outcome.timedOut
          ? `never: the harness stopped the client after ${fmtS(outcome.durationMs)}, before the strike came (strike sooner: --strike at:DURATION)`
          : `never: the client was done after ${fmtS(outcome.durationMs)}, its connections over before the strike (strike at a time instead: --strike at:DURATION)`,
      pass: strike.struck !== undefined,
    });
  }
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
