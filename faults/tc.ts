/**
 * The typed `tc` builder: queueing disciplines a fault puts on a namespace's egress, as argv
 * pairs (never a shell string). A qdisc has a name, like an iptables rule: the engine reads its
 * statistics (`tc -s`) at the end of the run and reports them among the rule hits as `<name>`
 * (packets it sent), `<name>:overlimits` (packets that had to wait for tokens: the proof it
 * shaped) and `<name>:drops` (packets it dropped: its queue overflowed).
 *
 * The device is the interface that leads to the other side, which only the running target knows
 * (the veth named for the run): the engine resolves it by asking the
 * namespace's routing table (`ip route get <peer>`) and passes it to `planQdiscs`.
 */
import type { FaultStep } from '../harness/core/step.js';
import type { Side } from '../harness/core/sysctl.js';

/** A token bucket (sch_tbf): `rate` refills the bucket, `burst` is its size, `limit` its queue. */
export interface TbfQdisc {
  name: string;
  /** Whose egress toward the peer it shapes. */
  side: Side;
  kind: 'tbf';
  rateBitsPerS: number;
  burstBytes: number;
  limitBytes: number;
}

export type Qdisc = TbfQdisc;

/** What `tc qdisc del` says when the qdisc (or its device, or its namespace) is already gone. */
export const TC_ABSENT = 'Invalid handle|Cannot find device|No such file|Cannot delete qdisc with handle of zero|does not exist';

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** Root qdiscs get handles 10:, 11:, … in plan order (hex majors; 0 is reserved). */
function handleOf(index: number): string {
  return `${(0x10 + index).toString(16)}:`;
}

/** The steps that put each qdisc at the root of its side's device toward the peer, and remove it. */
export function planQdiscs(qdiscs: readonly Qdisc[], devOf: (side: Side) => string): FaultStep[] {
  const names = new Set<string>();
  return qdiscs.map((q, i) => {
    if (!NAME_RE.test(q.name)) throw new RangeError(`qdisc name "${q.name}" must be lowercase letters, digits and dashes`);
    if (names.has(q.name)) throw new RangeError(`two qdiscs are named ${q.name}`);
    names.add(q.name);
    for (const [k, v] of [['rate', q.rateBitsPerS], ['burst', q.burstBytes], ['limit', q.limitBytes]] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`qdisc ${q.name}: ${k} must be a positive whole number, not ${v}`);
    }
    const dev = devOf(q.side);
    const at = ['dev', dev, 'root', 'handle', handleOf(i)];
    return {
      side: q.side,
      describe: `qdisc ${q.name}: tbf rate ${q.rateBitsPerS}bit burst ${q.burstBytes} limit ${q.limitBytes} on ${dev} (${q.side})`,
      apply: ['tc', 'qdisc', 'add', ...at, 'tbf', 'rate', `${q.rateBitsPerS}bit`, 'burst', String(q.burstBytes), 'limit', String(q.limitBytes)],
      revert: ['tc', 'qdisc', 'del', ...at],
      absent: TC_ABSENT,
    };
  });
}

export interface QdiscStats {
  kind: string;
  handle: string;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
}

/** Parses `tc -s -j qdisc show dev DEV`. */
export function parseQdiscStats(json: string): QdiscStats[] {
  const doc = JSON.parse(json) as unknown;
  if (!Array.isArray(doc)) return [];
  return doc.map((q: Record<string, unknown>) => ({
    kind: String(q.kind),
    handle: String(q.handle),
    bytes: Number(q.bytes ?? 0),
    packets: Number(q.packets ?? 0),
    drops: Number(q.drops ?? 0),
    overlimits: Number(q.overlimits ?? 0),
  }));
}

/** The rule-hit entries of one qdisc of the plan, from the stats of its device. */
export function qdiscHits(q: Qdisc, index: number, stats: readonly QdiscStats[]): Record<string, number> {
  const s = stats.find((x) => x.handle === handleOf(index) && x.kind === q.kind);
  if (!s) return {};
  return { [q.name]: s.packets, [`${q.name}:overlimits`]: s.overlimits, [`${q.name}:drops`]: s.drops };
}
