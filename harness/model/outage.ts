/**
 * A network that goes away for a while and comes back (a partition that heals): does the
 * connection survive, and when does data flow again? Nothing notices the heal itself: the sender
 * learns of it only when its next timer fires and the packet it sends gets through. So the stall
 * ends at the first firing at or after the heal — a retransmission (the loss probe, then RTOs
 * doubling), a keepalive probe, a SYN — and lasts longer than the outage, often much longer; and
 * the connection dies if the timer's budget runs out before the heal (tcp_retries2, keepalive
 * count, tcp_syn_retries).
 *
 * Each firing is known to a window (on time … as late as the timer wheel allows), the heal too
 * (the harness removes the rules within a budget of their due time): the prediction is the first
 * firing that can follow the heal, and the last one that must.
 */
import { timerMs, type DataSysctls } from './data.js';
import { firingRanges, firingWindows, type ScheduleOptions } from './retransmit.js';
import { predictSynTimeout, type SynSysctls } from './tcp.js';
import { chainWindowMs, msToJiffies, type KernelClock } from './timer-wheel.js';

type Range = [number, number];

export interface HealOutcome {
  /** Whether a firing comes after the heal before the budget runs out. */
  survives: 'yes' | 'no' | 'either';
  /** Index (0-based) of the firing that gets through: [earliest, latest]; undefined when none can. */
  through?: Range;
  /** When it goes out (ms from the schedule's start): the stall's end, before the answer's way back. */
  throughMs?: Range;
}

/**
 * The first of `firings` (each a window, in order) at or after a heal within `healMs`. Earliest:
 * the first firing whose latest time can follow the earliest heal; latest: the first whose
 * earliest time must follow the latest heal.
 */
export function firstFiringAfter(firings: readonly Range[], healMs: Range): HealOutcome {
  const lo = firings.findIndex((f) => f[1] >= healMs[0]);
  const hi = firings.findIndex((f) => f[0] >= healMs[1]);
  if (lo < 0) return { survives: 'no' };
  if (hi < 0) return { survives: 'either', through: [lo, firings.length - 1], throughMs: [Math.max(firings[lo]![0], healMs[0]), firings.at(-1)![1]] };
  return { survives: 'yes', through: [lo, hi], throughMs: [Math.max(firings[lo]![0], healMs[0]), firings[hi]![1]] };
}

/**
 * How late the heal may come without changing the outcome: until the earliest time of the first
 * firing after the outage (a heal before it changes nothing; after it, one firing more is lost).
 * At least `minMs` — a heal that cannot be timed that closely makes the prediction span both
 * firings (firstFiringAfter) rather than fail — and at most `maxMs`.
 */
export function healSlackMs(firings: readonly Range[], outageMs: number, minMs: number, maxMs: number): number {
  if (firings.some((f) => f[0] <= outageMs && f[1] >= outageMs)) return minMs;
  const next = firings.find((f) => f[0] > outageMs);
  if (!next) return maxMs; // every firing is over by then: the heal comes too late to matter
  return Math.max(minMs, Math.min(maxMs, next[0] - outageMs));
}

export interface TransferOutagePrediction extends HealOutcome {
  /** The firings of the unacknowledged segment (loss probe, RTOs), each a window, ms from the write. */
  firings: { kind: 'tlp' | 'rto'; atMs: Range }[];
  /** When the connection gives up if nothing gets through (ETIMEDOUT), ms from the write. */
  deadMs: Range;
  /** Retransmissions in all (TcpRetransSegs): every firing up to the one that gets through (or all). */
  retransSegs: Range;
  lossProbes: Range;
  /** RTO firings (TcpExtTCPTimeouts; with a death, the firing that gives up counts too). */
  timeouts: Range;
  /** Segments the outage drops on the way to the server: the original and every firing before the heal. */
  dropped: Range;
}

/**
 * One segment written at the start of the outage (net/ipv4/tcp_timer.c, tcp_output.c; see
 * retransmit.ts): it is retransmitted by the loss probe and the RTOs; the first of them at or
 * after the heal is delivered and the answer comes back at once — or, if every firing falls in
 * the outage, the connection expires at the firing past the tcp_retries2 budget.
 */
export function predictTransferOutage(s: DataSysctls, o: ScheduleOptions, clock: KernelClock, healMs: Range): TransferOutagePrediction {
  const w = firingWindows(s, o, clock);
  const firings = firingRanges(w);
  const n = firings.length;
  const h = firstFiringAfter(firings.map((f) => f.atMs), healMs);
  const probes = firings.filter((f) => f.kind === 'tlp').length;
  const deadMs: Range = [w.onTime.deadMs, w.late.deadMs];
  // Through firing i: i + 1 retransmissions, the original and i firings dropped. None through:
  // all n retransmitted and dropped, and the firing that gives up counts as a timeout too.
  const died = { lo: h.survives === 'no', hi: h.survives !== 'yes' };
  const sent: Range = [died.lo ? n : h.through![0] + 1, died.hi ? n : h.through![1] + 1];
  const rtosOf = (x: number, dead: boolean) => x - Math.min(probes, x) + (dead ? 1 : 0);
  return {
    ...h,
    firings,
    deadMs,
    retransSegs: sent,
    lossProbes: [Math.min(probes, sent[0]), Math.min(probes, sent[1])],
    timeouts: [rtosOf(sent[0], died.lo), rtosOf(sent[1], died.hi)],
    dropped: [died.lo ? 1 + n : 1 + h.through![0], died.hi ? 1 + n : 1 + h.through![1]],
  };
}

export interface KeepaliveOutagePrediction extends HealOutcome {
  /** Each keepalive probe's window, ms from SO_KEEPALIVE (on an idle socket). */
  probesMs: Range[];
  /** The firing that gives up (after `cnt` unanswered probes): ETIMEDOUT, a RST. */
  deadMs: Range;
  /** Probes sent (TcpExtTCPKeepAlive) up to the answered one (or all `cnt`). */
  probes: Range;
}

/**
 * An idle connection with keepalive (net/ipv4/tcp_timer.c tcp_keepalive_timer): probes at idle,
 * idle + intvl, … ; the first sent after the heal is answered (probes_out back to 0, the timer
 * re-armed `idle` after that answer); `cnt` probes unanswered and the next firing resets the
 * connection (ETIMEDOUT, a RST into the void).
 */
export function predictKeepaliveOutage(k: { idleS: number; intvlS: number; cnt: number }, clock: KernelClock, healMs: Range): KeepaliveOutagePrediction {
  const chain = [k.idleS * 1000, ...Array.from({ length: k.cnt }, () => k.intvlS * 1000)];
  let lo = 0;
  let hi = 0;
  const at: Range[] = chain.map((ms, i) => {
    const j = msToJiffies(ms, clock.hz);
    lo += timerMs(j, 'none', clock, i === 0);
    hi += timerMs(j, 'max', clock, i === 0);
    return [lo, hi];
  });
  const probesMs = at.slice(0, k.cnt);
  const h = firstFiringAfter(probesMs, healMs);
  const probes: Range = h.survives === 'yes' ? [h.through![0] + 1, h.through![1] + 1] : h.survives === 'either' ? [h.through![0] + 1, k.cnt] : [k.cnt, k.cnt];
  return { ...h, probesMs, deadMs: at[k.cnt]!, probes };
}

export interface ConnectOutagePrediction extends HealOutcome {
  /** Each SYN retransmission's window, ms from connect(). */
  synsMs: Range[];
  /** connect() fails with ETIMEDOUT here if no SYN gets through. */
  deadMs: Range;
  /** SYN retransmissions (TcpExtTCPSynRetrans) up to the one that gets through (or all). */
  synRetrans: Range;
}

/** connect() during the outage: the SYN schedule (tcp.ts predictSynTimeout); the first SYN after the heal is answered at once. */
export function predictConnectOutage(s: SynSysctls, clock: KernelClock, healMs: Range): ConnectOutagePrediction {
  const p = predictSynTimeout(s, clock);
  const intervals = p.retransmitAtMs.map((t, i) => t - (i ? p.retransmitAtMs[i - 1]! : 0));
  const synsMs = intervals.map((_, i) => chainWindowMs(intervals.slice(0, i + 1), clock));
  const h = firstFiringAfter(synsMs, healMs);
  const n = synsMs.length;
  const synRetrans: Range = h.survives === 'yes' ? [h.through![0] + 1, h.through![1] + 1] : h.survives === 'either' ? [h.through![0] + 1, n] : [n, n];
  return { ...h, synsMs, deadMs: p.windowMs, synRetrans };
}
