import { describe, expect, it } from 'vitest';
import { delayedAckJiffies, predictRequestReply, probe0Jiffies, type RequestReplyOptions } from './ack.js';
import { initialRtoJiffies } from './data.js';
import { wakeupSlackMs } from './tcp.js';
import { chainWindowMs } from './timer-wheel.js';

const clock = { hz: 250 };
const opts = (o: Partial<RequestReplyOptions> = {}): RequestReplyOptions => ({ variant: 'nagle', requests: 4, pingpongThresh: 1, rtoMinMs: 200, ...o });
const stalled = (o: Partial<RequestReplyOptions>) =>
  predictRequestReply(opts(o), clock).holds.flatMap((h, i) => (h === 'delayed-ack' ? [i + 1] : []));

describe('delayed ACK', () => {
  it('is TCP_DELACK_MIN = HZ/25 jiffies: 40 ms at every common HZ', () => {
    for (const hz of [100, 250, 300, 1000]) expect((delayedAckJiffies({ hz }) * 1000) / hz).toBe(40);
    expect(delayedAckJiffies(clock)).toBe(10);
  });
});

describe('predictRequestReply', () => {
  it('Nagle, tcp_pingpong_thresh 1: the first request at once, every later one waits the delayed ACK', () => {
    const m = predictRequestReply(opts(), clock);
    expect(m.holds).toEqual(['none', 'delayed-ack', 'delayed-ack', 'delayed-ack']);
    expect(m.delayedAcks).toBe(3);
    expect(m.segmentsPerRequest).toBe(2);
    // No timer: the server's application and the probe each wake once.
    expect(m.windowsMs[0]).toEqual([0, 2 * wakeupSlackMs(clock)]);
    // A level-0 wheel timer of 10 jiffies fires 10-11 jiffies after it was armed, plus the two wake-ups.
    const [lo, hi] = chainWindowMs([40], clock);
    expect(m.windowsMs[1]).toEqual([lo, hi + 2 * wakeupSlackMs(clock)]);
    expect(m.windowsMs[1]).toEqual([40, 60]);
  });
  it('the pingpong threshold spaces the stalls: the delayed ACK leaves pingpong mode, the next replies count again (measured on 6.18)', () => {
    // Measured with 12 requests: thresh 2 → 3, 5, 7, 9, 11; thresh 3 → 4, 7, 10.
    expect(stalled({ requests: 12, pingpongThresh: 2 })).toEqual([3, 5, 7, 9, 11]);
    expect(stalled({ requests: 12, pingpongThresh: 3 })).toEqual([4, 7, 10]);
    expect(stalled({ requests: 1 })).toEqual([]);
  });
  it('TCP_NODELAY and an uncorked TCP_CORK never stall; cork sends one segment per request', () => {
    for (const variant of ['nodelay', 'cork'] as const) {
      const m = predictRequestReply(opts({ variant, requests: 6 }), clock);
      expect(m.holds.every((h) => h === 'none')).toBe(true);
      expect(m.delayedAcks).toBe(0);
      expect(m.segmentsPerRequest).toBe(variant === 'cork' ? 1 : 2);
    }
  });
  it('a held TCP_CORK waits for the probe timer: max(RTO, TCP_RTO_MIN) — 51 jiffies on a LAN, whatever tcp_rto_min_us is below 200 ms', () => {
    const m = predictRequestReply(opts({ variant: 'cork-held' }), clock);
    expect(m.holds).toEqual(['probe-timer', 'probe-timer', 'probe-timer', 'probe-timer']);
    expect(m.probeTimerMs).toBe(204);
    expect(probe0Jiffies(200, clock)).toBe(initialRtoJiffies(200, clock));
    const [lo, hi] = chainWindowMs([204], clock);
    expect(m.windowsMs[0]).toEqual([lo, hi + 2 * wakeupSlackMs(clock)]);
    expect(m.delayedAcks).toBe(0);
    expect(m.segmentsPerRequest).toBe(1);
    // A 5 ms rto_min makes the RTO 2 jiffies; tcp_probe0_base still floors it at TCP_RTO_MIN.
    expect(probe0Jiffies(5, clock)).toBe(50);
    // A 300 ms rto_min: 76 jiffies, wheel level 1 (8-jiffy granularity).
    const slow = predictRequestReply(opts({ variant: 'cork-held', rtoMinMs: 300 }), clock);
    expect(slow.probeTimerMs).toBe(304);
    expect(slow.windowsMs[0]).toEqual([304, 304 + 32 + 2 * wakeupSlackMs(clock)]);
  });
});
