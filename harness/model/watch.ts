/**
 * The state watcher as an instrument: how often it samples and how late it can report a
 * transition. Every window that includes a watcher observation widens here — `watchedWindowMs`
 * for a moment, `watchedSpanMs` for a span between two samples — and nowhere else; a script that
 * must let the watchers see a state before it moves on sleeps `settleMs`.
 */
import { wakeupSlackMs } from './tcp.js';
import type { KernelClock } from './timer-wheel.js';

/** The watchers' default poll interval (ms); large concurrent batches poll less often. */
export const DEFAULT_WATCH_INTERVAL_MS = 5;

/**
 * How late the watcher can report a transition: one poll interval plus the wake-up slack of its
 * timerfd (two jiffies). A span measured between two samples can be off by this much at each end.
 */
export function watchLagMs(clock: KernelClock, intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): number {
  return intervalMs + wakeupSlackMs(clock);
}

/**
 * When the watcher reports a transition the kernel makes within `w` (ms): never before it
 * happened, at most `watchLagMs` after (`stateLeft` windows).
 */
export function watchedWindowMs(w: readonly [number, number], clock: KernelClock, intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): [number, number] {
  return [w[0], w[1] + watchLagMs(clock, intervalMs)];
}

/**
 * How long the watcher sees a state last that the kernel holds for a time within `w` (ms): both
 * ends are samples, each up to `watchLagMs` late, so the span can be that much shorter or longer
 * (`spans[].lastsMs`).
 */
export function watchedSpanMs(w: readonly [number, number], clock: KernelClock, intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): [number, number] {
  const lag = watchLagMs(clock, intervalMs);
  return [w[0] - lag, w[1] + lag];
}

/**
 * How long a script keeps observing so that a transition the watcher reports by `seenByMs` (the
 * end of a watched window, from the same start) is in the record: one more lag and 100 ms.
 */
export function observeUntilMs(seenByMs: number, clock: KernelClock, intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): number {
  return Math.ceil(seenByMs + watchLagMs(clock, intervalMs)) + 100;
}

/**
 * How long a script pauses so that both watchers have sampled the state it just made (and the
 * peer's kernel has answered on a veth, well under a millisecond): ten poll intervals, 50 ms at
 * the default 5 ms.
 */
export function settleMs(intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): number {
  return 10 * intervalMs;
}
