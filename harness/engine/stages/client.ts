/** Stage `client`: the probe runs the fault's script against the target; barriers fire the fault's triggers. */
import { runProbeClient } from '../../core/probe.js';
import type { RunState } from '../run-state.js';
import { fireTrigger, settleTriggers } from './fault.js';
import { finishServerScripts } from './server-script.js';

export async function driveClient(s: RunState): Promise<void> {
  const { address, port } = s.target!.endpoints;
  try {
    s.probe = await runProbeClient(s.ns!.client, address, port, s.script!, {
      onBarrier: (name) => fireTrigger(s, name),
      signal: s.signal,
    });
    await settleTriggers(s);
  } finally {
    // A server script a trigger started holds what it made (a listener) until the client is done.
    await finishServerScripts(s);
  }
}
