/**
 * bandwidth on the built-in netns target: a tbf on the target's veth. The echo of N bytes arrives
 * in (N + headers − burst) / rate; tc -s counts the packets that waited and proves none dropped;
 * the target never resends a segment still in its own queue.
 */
import { kernelFacts } from '../harness/core/kernel.js';
import { predictShapedTransfer } from '../harness/model/rate.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';
import { describe, isRoot, test } from './support/fixtures.js';

const transfer = (r: { steps: { label?: string; durationMs: number }[] }) => r.steps.find((s) => s.label === 'transfer')!.durationMs;

describe.skipIf(!isRoot)('bandwidth (netns)', { tags: ['netns'] }, () => {
  test.concurrent('64000 B back at 1 Mbit/s with a 3028 B bucket: ~0.51 s, tc shows the wait, no drop', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'bandwidth' });
    expect(r).toPass();
    const p = predictShapedTransfer({ rateBitsPerS: 1e6, burstBytes: 3028, limitBytes: 1e6 }, 64_000, [0, 45], 2 * wakeupSlackMs(await kernelFacts()));
    expect(transfer(r)).toBeInWindow(p.windowMs);
    expect(r.fault.rulesHit['shape:overlimits']).toBeGreaterThan(0);
    expect(r.fault.rulesHit['shape:drops']).toBe(0);
    expect(r.counters.server.TcpRetransSegs).toBe(0);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('a quarter of the rate takes four times as long (256 kbit/s)', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'bandwidth', params: { rate: '256kbit', bytes: 16_000 } });
    expect(r).toPass();
    // 16000 B = 12 segments, 16792 B of frames; less the bucket: 13764 B at 32 kB/s.
    expect(transfer(r)).toBeGreaterThanOrEqual(430);
  });

  test.concurrent('an answer within the bucket passes at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'bandwidth', params: { bytes: 1000 } });
    expect(r).toPass();
    expect(transfer(r)).toBeLessThan(20);
    expect(r.fault.rulesHit['shape:overlimits']).toBe(0);
  });
});
