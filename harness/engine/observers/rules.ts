/** Proof that a fault fired: the packet counters of the rules the run installed. */
import { inNetns, run } from '../../core/exec.js';
import type { Netns } from '../../core/netns.js';
import { parseRuleCounters } from '../../../faults/iptables.js';

export async function readRuleHits(ns: Netns, runId: string): Promise<Record<string, number>> {
  const r = await run(inNetns(ns, ['iptables-save', '-c', '-t', 'filter']));
  const hits: Record<string, number> = {};
  for (const c of parseRuleCounters(r.stdout)) if (c.runId === runId) hits[c.name] = (hits[c.name] ?? 0) + c.packets;
  return hits;
}
