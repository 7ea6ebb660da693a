/**
 * Packet loss on one direction, and what must follow: every lost data segment is sent again —
 * by the tail loss probe when it is the only one in flight, by an RTO if the probe is lost too
 * (or tcp_early_retrans disables probes) — so the sender's retransmissions equal the losses.
 *
 * Deterministic loss (iptables `-m statistic --mode nth --every n`, xt_statistic.c: a counter
 * that matches every n-th packet the rule sees, retransmissions included) is simulated packet by
 * packet; random loss (`--mode random --probability p`) can only be bounded: a request needs a
 * geometric number of tries, so the losses over R requests are negative-binomial, and the bounds
 * given are those outside which a run falls with probability below 1e-6 on each side.
 */
import type { Firing } from './retransmit.js';

type Range = [number, number];

/** One request/response exchange: how many times its segment was lost, and when it got through. */
export interface LossRound {
  /** Transmissions of the segment the rule dropped (0: the first went through). */
  drops: number;
  /** The firing that got it through (undefined: the original did). */
  through?: Firing['kind'];
  /** When it got through, ms from the original transmission (a window). */
  atMs: Range;
}

export interface NthLossPrediction {
  rounds: LossRound[];
  /** Packets the rule dropped (its hits): every retransmission of every one of them. */
  drops: number;
  /** Retransmissions by kind: loss probes and RTOs. */
  probes: number;
  rtos: number;
}

/**
 * `rounds` requests of one segment each, sent one after another (each after the previous was
 * answered), through a rule that drops every `every`-th matched packet. A dropped transmission
 * is followed by the next firing of the segment's schedule (`firings`, each a window [on time,
 * late]); the rule counts that one too. `every` >= 2, so a probe right after a loss is never lost
 * itself — unless the schedule has no probe.
 */
export function predictNthLoss(every: number, rounds: number, firings: readonly { kind: Firing['kind']; atMs: Range }[]): NthLossPrediction {
  if (!Number.isInteger(every) || every < 1) throw new RangeError('every must be a whole number >= 1');
  let seen = 0;
  const out: LossRound[] = [];
  for (let k = 0; k < rounds; k++) {
    let drops = 0;
    for (;;) {
      seen++;
      if (seen % every !== 0) break;
      drops++;
      if (drops > firings.length) throw new RangeError(`every=${every} loses every retransmission: the connection would time out`);
    }
    const f = drops ? firings[drops - 1]! : undefined;
    out.push({ drops, ...(f ? { through: f.kind } : {}), atMs: f ? f.atMs : [0, 0] });
  }
  const retx = out.flatMap((r) => firings.slice(0, r.drops));
  return { rounds: out, drops: retx.length, probes: retx.filter((f) => f.kind === 'tlp').length, rtos: retx.filter((f) => f.kind === 'rto').length };
}

/** log C(n, k) */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * Losses over `rounds` requests when each transmission is lost with probability `p` (negative
 * binomial: P(D = d) = C(d + R - 1, d) p^d (1 - p)^R): the least and greatest D a run shows
 * except with probability `tail` on each side.
 */
export function randomLossBounds(rounds: number, p: number, tail = 1e-6): Range {
  let cdf = 0;
  let lo = -1;
  for (let d = 0; d < 100_000; d++) {
    cdf += Math.exp(logChoose(d + rounds - 1, d) + d * Math.log(p) + rounds * Math.log1p(-p));
    if (lo < 0 && cdf >= tail) lo = d;
    if (cdf >= 1 - tail) return [lo, d];
  }
  throw new RangeError('loss bound did not converge');
}

/** The most times one request's segment is lost in a run of `rounds`, except with probability `tail` (P(a request lost m+1 times) = p^(m+1)). */
export function randomLossPerRound(rounds: number, p: number, tail = 1e-6): number {
  let m = 0;
  while (rounds * p ** (m + 1) > tail) m++;
  return m;
}
