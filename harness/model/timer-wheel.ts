/**
 * How late a kernel timer fires. TCP's retransmission timers are timer-wheel timers
 * (kernel/time/timer.c): a timer `d` jiffies away is put in wheel level L, chosen by `d`, and
 * rounded *up* to that level's granularity so it never fires early. Level L has granularity
 * 8^L jiffies and holds delays below LVL_START(L+1) = 63 << 3L. So a timer asked for `d` fires
 * after a real delay in (d, d + gran(L)]. With HZ=250 a 1 s RTO is 250 jiffies: level 1, up to
 * 32 ms late; a 4 s RTO is level 2, up to 256 ms late; 32 s is level 3, up to 2.048 s late.
 */
const LVL_CLK_SHIFT = 3;
const LVL_SIZE = 64;

export interface KernelClock {
  /** CONFIG_HZ of the running kernel. */
  hz: number;
}

function lvlStart(n: number): number {
  return (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT);
}

export function msToJiffies(ms: number, hz: number): number {
  return Math.ceil((ms * hz) / 1000);
}

export function jiffiesToMs(j: number, hz: number): number {
  return (j * 1000) / hz;
}

/** Wheel level a timer `delayJiffies` away lands in. */
export function wheelLevel(delayJiffies: number): number {
  let lvl = 0;
  while (lvl < 8 && delayJiffies >= lvlStart(lvl + 1)) lvl++;
  return lvl;
}

/** The most a timer asked for `delayMs` can fire late, in ms. */
export function timerSlackMs(delayMs: number, clock: KernelClock): number {
  const gran = 1 << (wheelLevel(msToJiffies(delayMs, clock.hz)) * LVL_CLK_SHIFT);
  return jiffiesToMs(gran, clock.hz);
}

/** A timer chain: each interval starts when the previous timer fired. */
export function chainWindowMs(intervalsMs: readonly number[], clock: KernelClock): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const d of intervalsMs) {
    lo += d;
    hi += d + timerSlackMs(d, clock);
  }
  return [lo, hi];
}
