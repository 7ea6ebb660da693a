/**
 * What a fault is: one object made with `defineFault`. Its parameters are a zod schema (the CLI's
 * `--set` flags and the README table come from it); `plan` is pure and returns reversible argv
 * steps; `script` is the client's step script; `expect` derives the outcome from the sysctls in
 * force through the kernel timer model. A fault never spawns anything itself.
 */
import type { z } from 'zod';
import type { KernelClock } from '../harness/model/timer-wheel.js';
import type { ClientStep, ServerMode } from '../harness/core/probe.js';
import type { Side, SidedSysctls } from '../harness/core/sysctl.js';
import type { Endpoints, ServerNeeds, TargetTraits } from '../targets/target.js';
import type { ConnectionPrediction, Expectation, StepExpectation } from '../harness/verdict/expectation.js';
import type { FaultStep, ProcessStep } from '../harness/core/step.js';
import type { Mechanism } from '../harness/core/mechanisms.js';
import type { Rule } from './iptables.js';
import type { Qdisc } from './tc.js';

// Fault authors import everything from here; each contract lives beside its interpreter.
export type { FaultStep, ProcessStep } from '../harness/core/step.js';
export type { Mechanism } from '../harness/core/mechanisms.js';
export type { Qdisc } from './tc.js';
export type { ConnectionPrediction, CounterExpectation, Expectation, ServerCallExpectation, ServerQuestion, StateLeftExpectation, StateSpanExpectation, StepExpectation } from '../harness/verdict/expectation.js';
export type { Endpoints, ServerNeeds, TargetTraits } from '../targets/target.js';

/** The server under the fault, as the harness found it once the target was up. */
export interface ServerFacts {
  /** The built-in server mode it runs (the probe's server); undefined: a server of the user's own. */
  mode?: ServerMode;
  /**
   * Its listener, read from its LISTEN socket (sock_diag) before expect(), for faults that set
   * `readsListener`: the backlog in force (sk_max_ack_backlog: listen()'s argument capped by
   * somaxconn then) and the connections already in its accept queue.
   */
  listener?: { backlog: number; queued: number; local: string };
}

/**
 * What a scenario needs from the server it is played against (checked before anything runs):
 * - 'any': network rules and sysctls only — works on any server;
 * - 'freeze': the server must stop accepting and reading (its processes are frozen: SIGSTOP to
 *   the process group, or the cgroup freezer for a container) — works on any target that can be
 *   frozen;
 * - 'kill': the server process is killed — works on any target;
 * - {mode}: a behaviour only the built-in server has (one of the probe's server modes).
 */
export type ServerNeed = 'any' | 'freeze' | 'kill' | { mode: ServerMode; why?: string };

export interface FaultContext<P> {
  runId: string;
  params: P;
  endpoints: Endpoints;
  server: ServerFacts;
  /** Sysctl values in force in each namespace, read back after they were set. */
  sysctls: SidedSysctls;
  clock: KernelClock;
  /** How often the state watchers sample (ms): a transition is seen up to this much late. */
  watchIntervalMs: number;
  /**
   * The client's syscalls block (`--blocking`: connect/read/write/close sleep in the kernel, with
   * SO_SNDTIMEO/SO_RCVTIMEO as their limit) instead of non-blocking + epoll. A fault whose outcome
   * differs between the two predicts each (reject at connect); the engine marks the script's steps.
   */
  blocking: boolean;
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
  /**
   * What it needs from the server it is played against (see ServerNeed). Every fault declares
   * it: prepare refuses a scenario its target cannot play (exit 2), never a failing verdict.
   */
  needs(params: z.infer<S>): ServerNeed;
  /**
   * Parameters that configure the built-in server (e.g. `backlog`): refused with --set on a
   * server that chose its own.
   */
  serverParams?: readonly string[];
  /** The model needs the server's listener as it is (ServerFacts.listener): read before expect(). */
  readsListener?: boolean;
  /** Sysctls that make the default scenario finish in seconds (skipped with --kernel-defaults). */
  fastSysctls(params: z.infer<S>): Partial<SidedSysctls>;
  /**
   * Kernel mechanisms beyond plain iptables the fault needs (NFQUEUE, a qdisc, a match module):
   * checked while the run is prepared, before anything changes; a machine that lacks one is
   * refused with the reason and the fix (exit 3).
   */
  mechanisms?(params: z.infer<S>): readonly Mechanism[];
  /**
   * What the fault puts in place before the client starts, applied in this order: processes it
   * needs running (the delayer), iptables rules, qdiscs on a side's egress, other reversible
   * steps; `freeze`: freeze the server once they are in, before the client starts (journaled,
   * thawed on revert). Pure.
   */
  plan(ctx: FaultContext<z.infer<S>>): { processes?: ProcessStep[]; rules?: Rule[]; qdiscs?: Qdisc[]; steps?: FaultStep[]; freeze?: boolean };
  expect(ctx: FaultContext<z.infer<S>>): Expectation;
  /** The client's steps, given what is expected (to size its timeouts). Pure. */
  script(ctx: FaultContext<z.infer<S>>, expected: Expectation): ClientStep[];
  /**
   * Actions the harness performs when the client script reaches `{op: 'barrier', name}`: a
   * fault that strikes mid-connection (a crash after the handshake, a FIN that is lost later).
   */
  triggers?: Record<string, (ctx: FaultContext<z.infer<S>>) => Trigger>;
  /**
   * What the kernel does to a connection of the user's own client under this fault. A fault
   * without it cannot drive a client command (its outcome depends on the probe's script).
   */
  connection?(ctx: FaultContext<z.infer<S>>, expected: Expectation): ConnectionPrediction;
  /**
   * Why this fault cannot mean anything on a target (undefined: it can): a reason about the target,
   * or about one of its parameters there (`{param, why}`: the error names `--set param`). For a
   * fault whose outcome depends on how the server behaves, not only on the kernel: the run is
   * refused before anything is made. Absent: every target.
   */
  refuseTarget?(target: { name: string; traits?: TargetTraits }, params: z.infer<S>): string | { param: string; why: string } | undefined;
  /**
   * What this machine must have for the fault (a kernel feature, a sysctl the model reads): throws
   * an EnvironmentError saying what is missing and the fix, before anything runs.
   */
  check?(params: z.infer<S>): Promise<void>;
}

export type Trigger =
  /** Install more rules (journaled like the plan's). */
  | { kind: 'rules'; rules: Rule[] }
  /**
   * Remove rules a trigger installed (a partition heals): their reverts run now, jumps first, both
   * sides at once. The journal keeps its entries; at the final revert they find nothing to undo.
   */
  | { kind: 'remove-rules'; rules: Rule[] }
  /**
   * Fire `trigger` `ms` after this one (the client's script goes on meanwhile): the end of an
   * outage, timed from when the rules of the outage were in force. The run waits for it before it
   * collects; it must be done within `budgetMs` of its due time, or the run fails (the
   * prediction allows the heal that much lateness, no more).
   */
  | { kind: 'after'; ms: number; budgetMs: number; trigger: Trigger }
  /** Signal the server process. */
  | { kind: 'kill-server'; signal: NodeJS.Signals }
  /**
   * Run probe steps in the server's namespace, e.g. a server restarting on its port (options,
   * bind, listen). The trigger is done once that script reaches a barrier (or ends); the rest of
   * it — closing what it holds — runs after the client's script. Its steps join the Result's,
   * with `side: 'server'`.
   */
  | { kind: 'server-script'; steps: ClientStep[] }
  /** Freeze the server's processes (journaled; thawed on revert, or by thaw-server). */
  | { kind: 'freeze-server' }
  /** Resume a frozen server. */
  | { kind: 'thaw-server' }
  /** Several of the above, in order. */
  | { kind: 'all'; triggers: Trigger[] };

export function defineFault<S extends z.ZodObject>(def: FaultDefinition<S>): FaultDefinition<S> {
  return def;
}

/**
 * What changes when the client's connect() blocks, for every fault: a blocking connect() that
 * fails leaves through inet_stream_connect()'s error path (net/ipv4/af_inet.c: sock_error →
 * sk->sk_prot->disconnect = tcp_disconnect), which zeroes tp->total_retrans — TCP_INFO read after
 * it shows 0 retransmissions, whatever went out (the counters still count them). A non-blocking
 * connect() learns its error from SO_ERROR and never disconnects.
 */
export function forBlockingApi(e: Expectation, script: readonly ClientStep[]): Expectation {
  const connects = new Set(script.filter((s) => s.op === 'connect' && s.label).map((s) => s.label!));
  const steps: Record<string, StepExpectation> = {};
  let changed = false;
  for (const [label, st] of Object.entries(e.steps)) {
    const failed = st.ok === false && typeof st.errno === 'string';
    if (connects.has(label) && failed && st.totalRetrans !== undefined && st.totalRetrans !== 0) {
      steps[label] = { ...st, totalRetrans: 0 };
      changed = true;
    } else steps[label] = st;
  }
  if (!changed) return e;
  return { ...e, steps, because: [...(e.because ?? []), 'blocking connect(): a failed one is disconnected (tcp_disconnect), so TCP_INFO shows 0 retransmissions after it'] };
}

/** A step timeout long enough to see the predicted outcome: the window's end plus one second. */
export function stepTimeoutMs(e: StepExpectation | undefined, fallbackMs = 10_000): number {
  return e?.windowMs ? Math.ceil(e.windowMs[1]) + 1000 : fallbackMs;
}
