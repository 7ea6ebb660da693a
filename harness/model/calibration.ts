/**
 * The machine as an instrument: how late it wakes a process up. A run measures this when it
 * starts (the `calibrate` stage: the probe times 64 waits of 0.5 ms, ~35 ms), and every window's
 * upper edge allows for the worst lateness seen (`KernelClock.lateMs`, through wakeupSlackMs).
 * When the machine is so loaded that this lateness reaches the size of the timer arithmetic the
 * model decides with, a failed check cannot be told from a busy machine: the verdict says
 * `inconclusive` instead of blaming the kernel.
 */
import { jiffiesToMs, type KernelClock } from './timer-wheel.js';

/** One calibration: the probe's timed waits and how much each overshot, ms. */
export interface Calibration {
  samples: number;
  sleepMs: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

/** What a run reports about its machine (Result.calibration). */
export interface CalibrationReport {
  /** Measured when the run started (before the model derived its windows). */
  before: Calibration;
  /** Measured again after a check failed, to see whether the machine was loaded by then. */
  after?: Calibration;
  /** How much every window's upper edge was widened: one jiffy plus before.maxMs (wakeupSlackMs). */
  slackMs: number;
  /** The lateness above which a failed check is inconclusive (latenessBoundMs). */
  boundMs: number;
  /** Lateness above the bound was seen (before or after). */
  loaded: boolean;
}

/**
 * The probe's calibration: 64 timed waits of 0.5 ms, about 35 ms on an idle machine. The wait's
 * length does not matter to what is measured — the overshoot of an hrtimer wake-up (its 50 µs
 * slack, then the scheduler) — only the number of chances to catch a late one does.
 */
export const CALIBRATION_SAMPLES = 64;
export const CALIBRATION_SLEEP_US = 500;

/**
 * The most scheduling lateness at which a failed timing check still blames the kernel: one
 * level-1 granule of the timer wheel (8 jiffies: 32 ms at HZ=250). Every second-scale timer the
 * model tells outcomes apart with lands on 8-jiffy buckets (a 1 s SYN timer fires 1024 ms later, a
 * retransmission 4 jiffies either side of a tcp_retries2 boundary decides it); a machine that
 * wakes the probe later than that can move an observation across such a step by itself.
 */
export function latenessBoundMs(clock: Pick<KernelClock, 'hz'>): number {
  return jiffiesToMs(8, clock.hz);
}

/** Whether a calibration shows more lateness than the model can judge through. */
export function tooLoaded(c: Calibration, clock: Pick<KernelClock, 'hz'>): boolean {
  return c.maxMs > latenessBoundMs(clock);
}

/** The report of a run: the calibrations it made, the slack they gave, whether the machine was too loaded. */
export function calibrationReport(before: Calibration, after: Calibration | undefined, clock: Pick<KernelClock, 'hz'>): CalibrationReport {
  const jiffyMs = 1000 / clock.hz;
  return {
    before,
    ...(after ? { after } : {}),
    slackMs: Math.round((jiffyMs + before.maxMs) * 1000) / 1000,
    boundMs: latenessBoundMs(clock),
    loaded: tooLoaded(before, clock) || (after ? tooLoaded(after, clock) : false),
  };
}
