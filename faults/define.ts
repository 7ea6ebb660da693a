/**
 * What a fault is: one object made with `defineFault`. Its parameters are a zod schema (the CLI's
 * `--set` flags and the README table come from it); `plan` is pure and returns reversible argv
 * steps; `script` is the client's step script; `expect` derives the outcome from the sysctls in
 * force through the kernel timer model. A fault never spawns anything itself.
 */
import type { z } from 'zod';
import type { KernelClock } from '../harness/model/timer-wheel.js';
import type { ClientStep } from '../harness/probe.js';
import type { Side, SidedSysctls } from '../harness/sysctl.js';
import type { Rule } from './iptables.js';

/** One reversible change: argv run inside the namespace of `side`, and the argv that undoes it. */
export interface FaultStep {
  side: Side;
  describe: string;
  apply: string[];
  revert: string[];
  /** Regex on the revert's stderr that means "nothing left to undo". */
  absent?: string;
}

/** The built-in server a fault needs when the target is the built-in one. */
export type ServerMode = 'echo' | 'no-accept' | 'no-close' | 'sink' | 'close-on-accept' | 'close-unread' | 'linger0';
export const SERVER_MODES: readonly ServerMode[] = ['echo', 'no-accept', 'no-close', 'sink', 'close-on-accept', 'close-unread', 'linger0'];

export interface ServerNeeds {
  mode: ServerMode;
  backlog?: number;
}

export interface Endpoints {
  /** Address and port the client connects to (the target's own address, never a mapped port). */
  address: string;
  port: number;
  clientAddress: string;
}

export interface FaultContext<P> {
  runId: string;
  params: P;
  endpoints: Endpoints;
  /** Sysctl values in force in each namespace, read back after they were set. */
  sysctls: SidedSysctls;
  clock: KernelClock;
  /** How often the state watchers sample (ms): a transition is seen up to this much late. */
  watchIntervalMs: number;
}

export type CounterExpectation = number | { min?: number; max?: number };

export interface StepExpectation {
  ok?: boolean;
  errno?: string | null;
  /** durationMs must fall in [lo, hi]. */
  windowMs?: [number, number];
  timedOut?: boolean;
  bytes?: number;
  eof?: boolean;
  /** TCP_INFO state right after the step. */
  tcpState?: string;
  /** TCP_INFO total retransmissions right after the step. */
  totalRetrans?: number;
  /** TCP_INFO rto (µs) right after the step: the RTO a later timer chain starts from. */
  rtoUs?: number;
}

export interface StateLeftExpectation {
  side: Side;
  state: string;
  /** The state it must leave to ('GONE' when the socket disappears). */
  to?: string;
  fromStep?: string;
  windowMs: [number, number];
}

export interface Expectation {
  /** Keyed by step label. */
  steps: Record<string, StepExpectation>;
  /** States that must be seen on each side. */
  states?: Partial<Record<Side, string[]>>;
  /** States that must never be seen on each side. */
  statesAbsent?: Partial<Record<Side, string[]>>;
  /** Kernel counter deltas, per side. */
  counters?: Partial<Record<Side, Record<string, CounterExpectation>>>;
  /** Packet counts of the fault's rules, by rule name: the proof it fired. */
  rulesHit?: Record<string, CounterExpectation>;
  /**
   * When the first socket seen in `state` on `side` left it (to `to`, e.g. GONE or ESTABLISHED),
   * in ms from the start of step `fromStep` (default: t = 0, the first client step).
   */
  stateLeft?: StateLeftExpectation[];
  /** The LISTEN socket of a side, from the watcher: the most connections its accept queue held (rq), its backlog (wq). */
  listen?: Partial<Record<Side, { rqMax?: CounterExpectation; wq?: number }>>;
  /** Every socket of a side that enters a state: how many, how long it stays, how it leaves (see StateSpanExpectation). */
  spans?: StateSpanExpectation[];
  /** Why these numbers: a line for humans, e.g. "tcp_syn_retries=2 + 4 linear timeouts". */
  because?: string[];
}

/**
 * The sockets (keyed local+remote) of `side` that enter `state`. Each one's span runs from its
 * first sample in the state to its next sample in another state (GONE when it disappeared); a
 * socket still in the state when observation ended is "held". Every socket must satisfy it.
 */
export interface StateSpanExpectation {
  side: Side;
  state: string;
  /** How many distinct sockets enter the state (default: at least one). */
  sockets?: CounterExpectation;
  /** What each does next: a state, 'GONE', or 'held' (never left while observed). */
  then?: string;
  /** How long each stays, ms (from its first sample in the state to its first sample out of it). */
  lastsMs?: [number, number];
  /** The highest idiag_retrans (icsk_retransmits) each shows while in the state. */
  retrans?: CounterExpectation;
}

export interface FaultDefinition<S extends z.ZodObject = z.ZodObject> {
  name: string;
  /** What it reproduces (one line). */
  summary: string;
  /** What a client observes (one line). */
  observes: string;
  /** Sysctls that shape the outcome, read back and reported, per side. */
  shapedBy: Partial<Record<Side, readonly string[]>>;
  params: S;
  /** The built-in server this fault wants when no --target is given. */
  server(params: z.infer<S>): ServerNeeds;
  /** Sysctls that make the default scenario finish in seconds (skipped with --kernel-defaults). */
  fastSysctls(params: z.infer<S>): Partial<SidedSysctls>;
  /** iptables rules and other reversible steps. Pure. */
  plan(ctx: FaultContext<z.infer<S>>): { rules?: Rule[]; steps?: FaultStep[] };
  expect(ctx: FaultContext<z.infer<S>>): Expectation;
  /** The client's steps, given what is expected (to size its timeouts). Pure. */
  script(ctx: FaultContext<z.infer<S>>, expected: Expectation): ClientStep[];
  /**
   * Actions the harness performs when the client script reaches `{op: 'barrier', name}`: a
   * fault that strikes mid-connection (a crash after the handshake, a FIN that is lost later).
   */
  triggers?: Record<string, (ctx: FaultContext<z.infer<S>>) => Trigger>;
}

export type Trigger =
  /** Install more rules (journaled like the plan's). */
  | { kind: 'rules'; rules: Rule[] }
  /** Signal the server process. */
  | { kind: 'kill-server'; signal: NodeJS.Signals }
  /** Several of the above, in order. */
  | { kind: 'all'; triggers: Trigger[] };

export function defineFault<S extends z.ZodObject>(def: FaultDefinition<S>): FaultDefinition<S> {
  return def;
}

/** A step timeout long enough to see the predicted outcome: the window's end plus one second. */
export function stepTimeoutMs(e: StepExpectation | undefined, fallbackMs = 10_000): number {
  return e?.windowMs ? Math.ceil(e.windowMs[1]) + 1000 : fallbackMs;
}
