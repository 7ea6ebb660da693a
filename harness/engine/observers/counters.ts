/**
 * Per-namespace kernel counters (/proc/net/netstat and /proc/net/snmp) as deltas. A run's come
 * from its state watcher, which opened those files inside each namespace (states.ts); `readCounters`
 * reads them through /proc/<pid>/net/… of any process that lives in the namespace (a container's).
 * Either way, sampling spawns nothing.
 */
import { readFile } from 'node:fs/promises';

import type { Counters } from '../../verdict/result.js';

export type { Counters };

/**
 * Parses the header/value line pairs of /proc/net/netstat or /proc/net/snmp into
 * `{TcpExtListenOverflows: 3, TcpRetransSegs: 7, …}` (prefix without the colon + field name).
 */
export function parseProcNetCounters(text: string): Counters {
  const out: Counters = {};
  const lines = text.split('\n').filter((l) => l.includes(':'));
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [prefix, ...names] = lines[i]!.trim().split(/\s+/);
    const [prefix2, ...values] = lines[i + 1]!.trim().split(/\s+/);
    if (!prefix || prefix !== prefix2) continue;
    const p = prefix.replace(/:$/, '');
    names.forEach((n, j) => {
      const v = Number(values[j]);
      if (Number.isFinite(v)) out[`${p}${n}`] = v;
    });
  }
  return out;
}

export async function readCounters(pid: number): Promise<Counters> {
  const [netstat, snmp] = await Promise.all([
    readFile(`/proc/${pid}/net/netstat`, 'utf8'),
    readFile(`/proc/${pid}/net/snmp`, 'utf8'),
  ]);
  return { ...parseProcNetCounters(snmp), ...parseProcNetCounters(netstat) };
}

/**
 * after - before for every counter, zero deltas included: a counter that did not move is there
 * with 0, so a check can tell "did not move" from "no such counter" (a misspelled name). Gauges
 * (CurrEstab) show their change too; a counter only in `after` counts from 0.
 */
export function counterDelta(before: Counters, after: Counters): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}
