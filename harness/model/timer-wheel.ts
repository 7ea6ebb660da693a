/**
 * When a kernel timer fires. TCP's retransmission, request-socket, keepalive and TIME_WAIT timers
 * are timer-wheel timers (kernel/time/timer.c, 6.18). calc_wheel_index() picks level L from the
 * delay `expires - base->clk`: level L holds delays below LVL_START(L+1) = 63 << 3L jiffies and
 * has granularity 8^L jiffies; calc_index() then rounds the expiry *up*, strictly:
 * `bucket_expiry = ((expires >> 3L) + 1) << 3L`. So a timer never fires early, always fires
 * between 1 jiffy and one granule late, and — the part that decides outcomes — the lateness is
 * arithmetic, not chance: a timer re-armed from a timer callback starts on a bucket boundary, so
 * after the first level-1 timer of a chain every later level-1 timer of it is late by a fixed
 * number of jiffies (a 1 s RTO of 250 jiffies fires 256 jiffies later, every time). What is
 * unknown is only the phase of the first arm (the jiffy a syscall or packet armed it in, modulo
 * the coarsest granule the chain uses, and where inside that jiffy): the model enumerates every
 * phase and keeps the outcomes that are possible.
 *
 * At HZ=250: level 0 = delays < 252 ms, 1 jiffy (4 ms) late; level 1 < 2.016 s, up to 32 ms;
 * level 2 < 16.1 s, up to 256 ms; level 3 < 129 s, up to 2.048 s.
 */
const LVL_CLK_SHIFT = 3;
const LVL_SIZE = 64;
const LVL_DEPTH = 9;

export interface KernelClock {
  /** CONFIG_HZ of the running kernel. */
  hz: number;
  /**
   * The scheduling lateness this machine showed when the run started (ms): the worst overshoot of
   * the probe's 1 ms sleeps in the calibration stage. Every window's upper edge allows for it once
   * (the probe wakes up that late after the kernel acted). Absent outside a run (unit tests, the
   * library's pure model): one jiffy is assumed.
   */
  lateMs?: number;
}

function lvlStart(n: number): number {
  return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT);
}

export function msToJiffies(ms: number, hz: number): number {
  return Math.ceil((ms * hz) / 1000 - 1e-9);
}

export function jiffiesToMs(j: number, hz: number): number {
  return (j * 1000) / hz;
}

/** Wheel level a timer `delayJiffies` after base->clk lands in. */
export function wheelLevel(delayJiffies: number): number {
  let lvl = 0;
  while (lvl < LVL_DEPTH - 1 && delayJiffies >= lvlStart(lvl + 1)) lvl++;
  return lvl;
}

/** Granularity of the level a timer `delayJiffies` away lands in, jiffies. */
export function granuleJiffies(delayJiffies: number): number {
  return 1 << (wheelLevel(delayJiffies) * LVL_CLK_SHIFT);
}

/** The most a timer asked for `delayMs` can fire late, in ms (its level's granule). */
export function timerSlackMs(delayMs: number, clock: KernelClock): number {
  return jiffiesToMs(granuleJiffies(msToJiffies(delayMs, clock.hz)), clock.hz);
}

/** calc_wheel_index() + calc_index(): the jiffy a timer expiring at `expires` fires at, given base->clk. */
export function bucketExpiry(expires: number, clk: number): number {
  const delta = expires - clk;
  if (delta < 0) return clk;
  const shift = wheelLevel(delta) * LVL_CLK_SHIFT;
  return (Math.floor(expires / 2 ** shift) + 1) * 2 ** shift;
}

/**
 * Who arms a timer decides base->clk at that moment: inside a timer callback base->clk is
 * jiffies + 1 ("while executing timers, base->clk is 1 offset ahead of jiffies",
 * forward_timer_base); from a syscall or a packet it is jiffies, or jiffies + 1 when timers
 * already ran in this jiffy — both are kept.
 */
export type ArmedFrom = 'process' | 'callback';

/** The jiffy a timer armed at jiffy `now` for `delay` jiffies fires at (`lead` = base->clk - jiffies). */
export function fireJiffy(now: number, delay: number, lead: 0 | 1): number {
  return bucketExpiry(now + delay, now + lead);
}

/**
 * How many jiffies late a timer can be re-armed from softirq context. A timer callback (or the ICMP
 * handler that re-arms the RTO) runs in the softirq of its tick; when softirq work is deferred
 * to ksoftirqd — a thread, scheduled as late as the machine wakes threads — it can run after the
 * next tick, and `jiffies + delay` is then a jiffy later. Level-1+ timers absorb that in their
 * rounding (250 jiffies → 256 either way); a level-0 chain (a 51-jiffy RTO re-armed by
 * RFC 6069 reverts) carries it (measured under load: 3 of 15 reverts a jiffy late, death at
 * 3485.9 ms against 3476). One jiffy, plus one per jiffy of calibrated lateness.
 */
export function slipJiffies(clock: KernelClock): number {
  return 1 + Math.floor((clock.lateMs ?? 0) / (1000 / clock.hz));
}

/** One phase of a chain's first arm: the jiffy (modulo the coarsest granule) and base->clk's lead. */
export interface Phase {
  j0: number;
  lead: 0 | 1;
}

/** A large multiple of every granule, so phases stay positive and keep their residues. */
const PHASE_BASE = 2 ** 30;

/**
 * Every phase a chain whose delays are `delaysJiffies` can start in: the first arm's jiffy modulo
 * the coarsest granule any of them lands in (a timer re-armed from a callback may be one jiffy
 * shorter, hence `d - 1`), and both leads.
 */
export function phasesFor(delaysJiffies: readonly number[]): Phase[] {
  let gran = 1;
  for (const d of delaysJiffies) gran = Math.max(gran, granuleJiffies(d), granuleJiffies(Math.max(0, d - 1)));
  const out: Phase[] = [];
  for (let j = 0; j < gran; j++) for (const lead of [0, 1] as const) out.push({ j0: PHASE_BASE + j, lead });
  return out;
}

/**
 * A chain: the first timer armed by a syscall or a packet at some moment inside jiffy j0, each
 * next one re-armed from the previous one's callback. Returns the jiffy each fires at.
 */
export function chainFireJiffies(delaysJiffies: readonly number[], phase: Phase, slip = 0): number[] {
  const out: number[] = [];
  let now = phase.j0;
  delaysJiffies.forEach((d, i) => {
    now = i === 0 ? fireJiffy(now, d, phase.lead) : fireJiffy(now + slip, d, 1);
    out.push(now);
  });
  return out;
}

/**
 * The real time, in ms, from the first arm (somewhere inside jiffy j0) to the tick of jiffy `at`:
 * (at - j0 - 1, at - j0] jiffies. Returns [exclusive low, high].
 */
export function sinceArmMs(at: number, j0: number, hz: number): [number, number] {
  return [jiffiesToMs(at - j0 - 1, hz), jiffiesToMs(at - j0, hz)];
}

/**
 * A timer chain (each interval starts when the previous timer fired; the first armed by a
 * syscall or a packet): the window, over every phase, of the time from the first arm to the last
 * firing — kernel time only, ms.
 */
export function chainWindowMs(intervalsMs: readonly number[], clock: KernelClock): [number, number] {
  const ds = intervalsMs.map((ms) => msToJiffies(ms, clock.hz));
  let lo = Infinity;
  let hi = -Infinity;
  for (const ph of phasesFor(ds)) {
    for (const slip of [0, slipJiffies(clock)]) {
      const fires = chainFireJiffies(ds, ph, slip);
      const [l, h] = sinceArmMs(fires[fires.length - 1] ?? ph.j0, ph.j0, clock.hz);
      lo = Math.min(lo, l);
      hi = Math.max(hi, h);
    }
  }
  return ds.length ? [Math.max(0, lo), hi] : [0, 0];
}

/** The window of each firing of a chain (from the first arm), ms. */
export function chainFiringWindowsMs(intervalsMs: readonly number[], clock: KernelClock): [number, number][] {
  return intervalsMs.map((_, i) => chainWindowMs(intervalsMs.slice(0, i + 1), clock));
}
