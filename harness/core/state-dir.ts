/**
 * The state directory (`/run/harness`, or `HARNESS_STATE_DIR`): journals (argv that `harness gc`
 * replays as root), namespace markers (`ns/`) and the private temp dirs of runs in flight (`tmp/`).
 * Whoever can write there can have root run their commands, so it is refused unless it and every
 * directory above it belong to root (or to the user running the harness, when that is not root)
 * and nobody else can write to it; a sticky world-writable ancestor (/tmp) is fine.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError } from './errors.js';
import { checkTrustedPath } from './ownership.js';

export function stateDir(): string {
  return process.env.HARNESS_STATE_DIR ?? '/run/harness';
}

/** Markers of the namespaces the harness made: `ns/<name>` holds the runId. */
export function markerDir(): string {
  return join(stateDir(), 'ns');
}

/** Private temp dirs of processes with runs in flight: `tmp/<pid>-<startTicks>-XXXXXX`. */
export function privateTmpBase(): string {
  return join(stateDir(), 'tmp');
}

/** Root, and ourselves when not root (a user's unit tests): never the sudo user for state. */
export function stateOwners(): number[] {
  const euid = process.geteuid?.() ?? 0;
  return [...new Set([0, euid])];
}

/** Refuses a state directory someone else could write. Undefined when it does not exist. */
export async function checkStateDir(dir = stateDir()): Promise<{ message: string; fix: string } | undefined> {
  const why = await checkTrustedPath(dir, { uids: stateOwners() });
  if (!why || why.problem === 'unreadable') return undefined;
  return {
    message: `state directory ${dir} cannot be trusted: ${why.message} (it holds the commands \`harness gc\` replays as root)`,
    fix: `${why.fix}${process.env.HARNESS_STATE_DIR ? ', or unset HARNESS_STATE_DIR' : ''}`,
  };
}

export async function assertStateDir(dir = stateDir()): Promise<void> {
  const bad = await checkStateDir(dir);
  if (bad) throw new EnvironmentError('E_STATE_DIR', bad.message, bad.fix);
}

/** Creates the state directory (0700) and its sub-directories if missing, then checks it. */
export async function ensureStateDir(): Promise<string> {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await assertStateDir(dir);
  for (const sub of [markerDir(), privateTmpBase()]) mkdirSync(sub, { recursive: true, mode: 0o700 });
  return dir;
}
