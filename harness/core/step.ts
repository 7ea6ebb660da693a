/**
 * The journaled step: one reversible change a fault plans (pure) and the engine applies inside a
 * namespace, with its revert recorded first.
 */
import type { Side } from './sysctl.js';

/** One reversible change: argv run inside the namespace of `side`, and the argv that undoes it. */
export interface FaultStep {
  side: Side;
  describe: string;
  apply: string[];
  revert: string[];
  /** Regex on the revert's stderr that means "nothing left to undo". */
  absent?: string;
  /** Standard input of `apply` and of `revert` (e.g. an `iptables-restore` batch). */
  input?: string;
  revertInput?: string;
  /** A batch's parts, one line each in the Result's `fault.applied` (default: `describe`). */
  describes?: string[];
  /** It installs iptables rules of the run: their hits are read on this side at the end. */
  rules?: true;
}

/**
 * A process that must run for as long as the fault is in force (the latency fault's delayer): the
 * native probe with `probeArgs`, started inside the namespace of `side`. The engine journals it as
 * a `kill` entry with its start time before anything relies on it, and waits for a line on its
 * stdout matching `ready` (it exited, or 5 s passed: the run fails with its stderr). Reverting
 * kills it; processes start before the plan's rules, so a rule never sends packets to a process
 * that is not there yet, and are killed after the rules are gone (the journal reverts newest first).
 */
export interface ProcessStep {
  side: Side;
  describe: string;
  probeArgs: string[];
  ready: string;
}
