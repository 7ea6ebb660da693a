import { describe, expect, it } from 'vitest';
import { wakeupSlackMs } from './tcp.js';
import { DEFAULT_WATCH_INTERVAL_MS, observeUntilMs, settleMs, watchedSpanMs, watchedWindowMs, watchLagMs } from './watch.js';

const hz250 = { hz: 250 };

describe('the state watcher as an instrument', () => {
  it('reports a transition up to one poll and two jiffies late', () => {
    expect(watchLagMs(hz250)).toBe(DEFAULT_WATCH_INTERVAL_MS + wakeupSlackMs(hz250));
    expect(watchLagMs(hz250, 10)).toBe(10 + 2 * (1000 / 250));
    expect(watchLagMs({ hz: 1000 }, 5)).toBe(5 + 2);
  });

  it('widens a moment at its end only (never seen before it happened)', () => {
    expect(watchedWindowMs([7000, 7320], hz250, 5)).toEqual([7000, 7320 + watchLagMs(hz250, 5)]);
    expect(watchedWindowMs([7000, 7320], hz250)).toEqual(watchedWindowMs([7000, 7320], hz250, DEFAULT_WATCH_INTERVAL_MS));
  });

  it('widens a span at both ends (both are samples)', () => {
    const lag = watchLagMs(hz250, 10);
    expect(watchedSpanMs([2000, 2032], hz250, 10)).toEqual([2000 - lag, 2032 + lag]);
  });

  it('observes one more lag and 100 ms past the end of a watched window', () => {
    expect(observeUntilMs(3500.5, hz250, 5)).toBe(Math.ceil(3500.5 + watchLagMs(hz250, 5)) + 100);
  });

  it('settles for ten polls', () => {
    expect(settleMs()).toBe(10 * DEFAULT_WATCH_INTERVAL_MS);
    expect(settleMs(10)).toBe(100);
  });
});
