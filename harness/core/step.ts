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
}

