/**
 * Everything that watches a run, as one handle: socket states and kernel counters of both
 * namespaces, the fault's rule hits, and packet captures. `stop()` returns what was seen; a run
 * that breaks halfway still stops its observers and keeps what they saw.
 */
import type { Journal } from '../../core/journal.js';
import type { Netns } from '../../core/netns.js';
import { SIDES, type Side } from '../../core/sysctl.js';
import type { Counters } from '../../verdict/result.js';
import { counterDelta, readCounters } from './counters.js';
import { startCapture, type Capture, type CaptureFile } from './pcap.js';
import { readRuleHits } from './rules.js';
import { startStateWatcher, type SocketEvent, type StateWatcher } from './states.js';

export interface ObserveOptions {
  runId: string;
  /** File name stem of captures: `<scenario>-<runId>`. */
  name: string;
  ns: Record<Side, Netns>;
  port: number;
  ipv4Only: Record<Side, boolean>;
  watchIntervalMs: number;
  pcapDir?: string;
}

export interface Observations {
  events: Record<Side, SocketEvent[]>;
  /** Deltas over the run, zero deltas included. */
  counters: Record<Side, Counters>;
  rulesHit: Record<string, number>;
  captures: CaptureFile[];
}

export interface Observers {
  /** The first socket event of `side` that `match` accepts (the strike of a mid-connection fault waits on it). */
  waitFor(side: Side, match: (e: SocketEvent) => boolean, signal?: AbortSignal): Promise<SocketEvent>;
  stop(): Promise<Observations>;
}

export async function startObservers(journal: Journal, o: ObserveOptions): Promise<Observers> {
  const watchers: Partial<Record<Side, StateWatcher>> = {};
  const captures: Capture[] = [];
  const before: Partial<Record<Side, Counters>> = {};
  const stop = async (): Promise<Observations> => {
    const counters = {} as Record<Side, Counters>;
    const events = {} as Record<Side, SocketEvent[]>;
    for (const side of SIDES) {
      const w = watchers[side];
      const b = before[side];
      counters[side] = w && b ? counterDelta(b, await readCounters(w.pid)) : {};
    }
    const rulesHit: Record<string, number> = {};
    for (const side of SIDES) Object.assign(rulesHit, await readRuleHits(o.ns[side], o.runId));
    // Let the watchers catch the last transitions (a few poll intervals) before stopping them.
    await new Promise((r) => setTimeout(r, 4 * o.watchIntervalMs));
    for (const side of SIDES) events[side] = (await watchers[side]?.stop()) ?? [];
    const files: CaptureFile[] = [];
    for (const c of captures) files.push(await c.stop());
    return { events, counters, rulesHit, captures: files };
  };
  try {
    for (const side of SIDES) {
      watchers[side] = await startStateWatcher(journal, o.ns[side], o.port, { ipv4Only: o.ipv4Only[side], intervalMs: o.watchIntervalMs });
    }
    if (o.pcapDir) {
      // The marker goes to a port that is not the target's, so the state watchers ignore it.
      const markerPort = o.port === 9 ? 10 : 9;
      for (const side of SIDES) captures.push(await startCapture(journal, o.ns[side], o.pcapDir, o.name, side, markerPort));
    }
    // Counters last: the captures' markers are not part of the run's deltas.
    for (const side of SIDES) before[side] = await readCounters(watchers[side]!.pid);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { stop, waitFor: (side, match, signal) => watchers[side]!.waitFor(match, signal) };
}
