/**
 * The state watcher as an instrument: how often it samples and how late it can report a
 * transition. Every window that includes a watcher observation widens by `watchLagMs`, and a
 * script that must let the watchers see a state before it moves on sleeps `settleMs`.
 */
import type { KernelClock } from './timer-wheel.js';

/** The watchers' default poll interval (ms); large concurrent batches poll less often. */
export const DEFAULT_WATCH_INTERVAL_MS = 5;

/**
 * How late the watcher can report a transition: one poll interval plus the wake-up slack of its
 * timerfd (two jiffies). A span measured between two samples can be off by this much at each end.
 */
export function watchLagMs(clock: KernelClock, intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): number {
  return intervalMs + (2 * 1000) / clock.hz;
}

/**
 * How long a script pauses so that both watchers have sampled the state it just made (and the
 * peer's kernel has answered on a veth, well under a millisecond): ten poll intervals, 50 ms at
 * the default 5 ms.
 */
export function settleMs(intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): number {
  return 10 * intervalMs;
}
