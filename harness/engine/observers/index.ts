/**
 * Everything that watches a run, as one handle: socket states and kernel counters of both
 * namespaces (one watcher process for both), the fault's rule hits, and packet captures. `stop()`
 * returns what was seen; a run that breaks halfway still stops its observers and keeps what they
 * saw.
 */
import type { Journal } from '../../core/journal.js';
import type { Netns } from '../../core/netns.js';
import { SIDES, type Side } from '../../core/sysctl.js';
import type { Counters } from '../../verdict/result.js';
import { counterDelta } from './counters.js';
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
  /** The sides the run put iptables rules in, asked at stop (absent: both): the others have no hits to read. */
  ruleSides?: () => Iterable<Side>;
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

/** The watcher's namespaces, in this order: index i of its events and counters is SIDES[i]. */
const sideIndex = (side: Side) => SIDES.indexOf(side);

export async function startObservers(journal: Journal, o: ObserveOptions): Promise<Observers> {
  let watcher: StateWatcher | undefined;
  const captures: Capture[] = [];
  let before: Counters[] | undefined;
  const stop = async (): Promise<Observations> => {
    const counters = {} as Record<Side, Counters>;
    const events = {} as Record<Side, SocketEvent[]>;
    // A watcher that cannot answer still gets stopped with the rest; its error comes after.
    let failed: { err: unknown } | undefined;
    const after = watcher && before ? await watcher.counters().catch((err: unknown) => void (failed = { err })) : undefined;
    for (const side of SIDES) counters[side] = after && before ? counterDelta(before[sideIndex(side)]!, after[sideIndex(side)]!) : {};
    const rulesHit: Record<string, number> = {};
    const ruleSides = [...new Set(o.ruleSides?.() ?? SIDES)];
    // Let the kernel finish what is in flight (two poll intervals) while the rules' counters are
    // read; the watcher polls once more as it stops, so nothing before the stop goes unseen.
    const [hits] = await Promise.all([Promise.all(ruleSides.map((side) => readRuleHits(o.ns[side], o.runId))), new Promise((r) => setTimeout(r, 2 * o.watchIntervalMs))]);
    for (const h of hits) Object.assign(rulesHit, h);
    const seen = (await watcher?.stop()) ?? [];
    for (const side of SIDES) events[side] = seen[sideIndex(side)] ?? [];
    const files: CaptureFile[] = [];
    for (const c of captures) files.push(await c.stop());
    if (failed) throw failed.err;
    return { events, counters, rulesHit, captures: files };
  };
  try {
    watcher = await startStateWatcher(
      journal,
      SIDES.map((side) => ({ ns: o.ns[side], port: o.port, ipv4Only: o.ipv4Only[side] })),
      { intervalMs: o.watchIntervalMs },
    );
    if (o.pcapDir) {
      // The marker goes to a port that is not the target's, so the state watcher ignores it.
      const markerPort = o.port === 9 ? 10 : 9;
      for (const side of SIDES) captures.push(await startCapture(journal, o.ns[side], o.pcapDir, o.name, side, markerPort));
    }
    // Counters last: the captures' markers are not part of the run's deltas.
    before = await watcher.counters();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const w = watcher;
  return { stop, waitFor: (side, match, signal) => w.waitFor(sideIndex(side), match, signal) };
}
