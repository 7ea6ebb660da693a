/**
 * When a sender retransmits one unacknowledged segment, whatever the reason nothing comes back —
 * the segment was lost, the path went away (a partition), or the answer is only slow (a delay
 * larger than the RTO): the tail loss probe, then the RTO firings, each doubling, until the
 * tcp_retries2 budget (or TCP_USER_TIMEOUT) gives up. The same timers as `predictDataTimeout`
 * (data.ts), but every firing is named, so a fault can ask which firing is the first after some
 * moment (a heal) or how many come before an answer arrives (spurious retransmissions).
 *
 * net/ipv4/tcp_output.c tcp_schedule_loss_probe: PTO = usecs_to_jiffies(2·srtt) + TCP_RTO_MIN
 * with one packet out (TCP_TIMEOUT_MIN with more), no later than the RTO; armed from the
 * sending syscall, so up to a jiffy early. The probe re-arms the RTO a full RTO later
 * (tcp_send_loss_probe → tcp_rearm_rto); net/ipv4/tcp_timer.c tcp_retransmit_timer doubles it
 * after each firing up to the RTO max (icsk_backoff); tcp_write_timeout gives up at the first
 * firing whose time since the first RTO retransmission (tp->retrans_stamp) reaches
 * tcp_model_timeout(tcp_retries2, TCP_RTO_MIN) — or TCP_USER_TIMEOUT, to which the last timer is
 * clamped (tcp_clamp_rto_to_user_timeout).
 */
import { timerMs, type DataSysctls, type Lateness } from './data.js';
import { modelTimeoutMs, TCP_RTO_MIN_MS } from './tcp.js';
import { jiffiesToMs, msToJiffies, type KernelClock } from './timer-wheel.js';

export interface Firing {
  /** The loss probe, or an RTO retransmission (the firing that gives up is `dead`, not a firing). */
  kind: 'tlp' | 'rto';
  /** When it goes out, ms from the segment's first transmission. */
  atMs: number;
}

export interface FiringSchedule {
  firings: Firing[];
  /** The RTO firing that gives up (ETIMEDOUT), ms from the first transmission. */
  deadMs: number;
}

export interface ScheduleOptions {
  /** The socket's RTO when the segment goes out, jiffies. */
  rtoJiffies: number;
  /** Its smoothed RTT, µs (the loss probe waits 2·srtt + TCP_RTO_MIN). */
  srttUs: number;
  /** Segments in flight when the last one went out: with more than one the probe waits 2·srtt + 2 jiffies. */
  packetsOut?: number;
  /** TCP_USER_TIMEOUT, ms (0: tcp_retries2 decides). */
  userTimeoutMs?: number;
}

/** usecs_to_jiffies: rounded up. */
export function usToJiffies(us: number, clock: KernelClock): number {
  return Math.ceil((us * clock.hz) / 1_000_000);
}

/** The loss probe's timeout, jiffies (tcp_schedule_loss_probe). */
export function ptoJiffies(o: ScheduleOptions, clock: KernelClock): number {
  const rtoMinJ = msToJiffies(TCP_RTO_MIN_MS, clock.hz);
  const extra = (o.packetsOut ?? 1) > 1 ? 2 /* TCP_TIMEOUT_MIN */ : rtoMinJ;
  return Math.min(usToJiffies(2 * o.srttUs, clock) + extra, o.rtoJiffies);
}

/**
 * The firings for one segment nothing answers, every timer on time (`none`) or as late as its
 * timer-wheel level allows (`max`).
 */
export function retransmitFirings(s: DataSysctls, o: ScheduleOptions, clock: KernelClock, late: Lateness): FiringSchedule {
  const rtoMaxJ = msToJiffies(s.rtoMaxMs, clock.hz);
  const ut = o.userTimeoutMs ?? 0;
  const limitMs = ut > 0 ? ut : modelTimeoutMs(s.retries2, TCP_RTO_MIN_MS, s.rtoMaxMs);
  const firings: Firing[] = [];
  let t = 0;
  let fromProcess = true;
  if (s.tlp) {
    t += timerMs(ptoJiffies(o, clock), late, clock, true);
    firings.push({ kind: 'tlp', atMs: t });
    fromProcess = false;
  }
  t += timerMs(o.rtoJiffies, late, clock, fromProcess);
  firings.push({ kind: 'rto', atMs: t });
  const stamp = t;
  let rto = Math.min(o.rtoJiffies * 2, rtoMaxJ);
  for (;;) {
    let next = rto;
    if (ut > 0) {
      const remaining = ut - (t - stamp);
      next = remaining <= 0 ? 1 : Math.min(rto, msToJiffies(remaining, clock.hz));
    }
    t += timerMs(next, late, clock, false, next < rto ? rto : next);
    if (t - stamp >= limitMs) return { firings, deadMs: t };
    firings.push({ kind: 'rto', atMs: t });
    rto = Math.min(rto * 2, rtoMaxJ);
  }
}

/** Both schedules: the earliest and the latest the kernel can be. */
export function firingWindows(s: DataSysctls, o: ScheduleOptions, clock: KernelClock): { onTime: FiringSchedule; late: FiringSchedule } {
  return { onTime: retransmitFirings(s, o, clock, 'none'), late: retransmitFirings(s, o, clock, 'max') };
}

/** The firings as windows [on time, late], index by index (the shorter schedule decides how many). */
export function firingRanges(w: { onTime: FiringSchedule; late: FiringSchedule }): { kind: Firing['kind']; atMs: [number, number] }[] {
  const n = Math.min(w.onTime.firings.length, w.late.firings.length);
  return Array.from({ length: n }, (_, i) => ({ kind: w.onTime.firings[i]!.kind, atMs: [w.onTime.firings[i]!.atMs, w.late.firings[i]!.atMs] }));
}

/**
 * How many firings come before an answer that arrives within `answerMs` (ms from the
 * transmission): [fewest, most], and how many of them are the loss probe.
 */
export function firingsBefore(w: { onTime: FiringSchedule; late: FiringSchedule }, answerMs: readonly [number, number]): { firings: [number, number]; probes: [number, number]; rtos: [number, number] } {
  // Fewest: the timers as late as they can be, the answer as early; most: the other way round.
  const few = w.late.firings.filter((f) => f.atMs < answerMs[0]);
  const many = w.onTime.firings.filter((f) => f.atMs < answerMs[1]);
  const count = (fs: Firing[], k: Firing['kind']) => fs.filter((f) => f.kind === k).length;
  return {
    firings: [few.length, many.length],
    probes: [count(few, 'tlp'), count(many, 'tlp')],
    rtos: [count(few, 'rto'), count(many, 'rto')],
  };
}

/** The RTO in force on a path whose RTT is far below a jiffy, as jiffies (data.ts initialRtoJiffies), in ms. */
export function rtoMs(rtoJiffies: number, clock: KernelClock): number {
  return jiffiesToMs(rtoJiffies, clock.hz);
}
