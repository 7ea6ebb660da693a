/**
 * Probe scripts a trigger runs in the server's namespace (a server restarting on its port): each
 * is started, holds at its first barrier while the client's script goes on, and is let finish —
 * closing what it holds — once the client's script has ended. Its steps join the Result's.
 */
import { runProbeClient, type ClientStep } from '../../core/probe.js';
import type { RunState, ServerScriptRun } from '../run-state.js';

/** Starts `steps` in the server's namespace; returns once they reach a barrier, or have ended. */
export async function startServerScript(s: RunState, steps: ClientStep[]): Promise<void> {
  const { address, port } = s.target!.endpoints;
  let reached!: () => void;
  const atBarrier = new Promise<void>((r) => (reached = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const run: ServerScriptRun = { steps, release, done: Promise.resolve() };
  run.done = runProbeClient(s.ns!.server, address, port, steps, {
    onBarrier: async () => {
      reached();
      await released;
    },
    signal: s.signal,
  }).then((out) => {
    run.output = out;
  });
  (s.serverScripts ??= []).push(run);
  // A script that broke before its barrier surfaces in finishServerScripts, after the client's.
  await Promise.race([atBarrier, run.done.catch(() => undefined)]);
}

/** Lets every held server script finish and collects its output (once the client's script has ended). */
export async function finishServerScripts(s: RunState): Promise<void> {
  const runs = s.serverScripts ?? [];
  for (const r of runs) r.release();
  await Promise.all(runs.map((r) => r.done));
}
