/**
 * latency, loss, bandwidth and partition against a real third-party server: Debian's nginx in a
 * container. Every mechanism acts in the container's own namespace (and the client holder's): the
 * delayer runs there through nsenter, the rules and the qdisc go there. nginx answers the probe's
 * bytes with a 400 and closes, which every scenario's default script allows for.
 */
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, isRoot, roundTripMs, test } from './support/fixtures.js';

const step = (r: { steps: { label?: string; durationMs: number }[] }, label: string) => r.steps.find((s) => s.label === label)!.durationMs;

describe.skipIf(!isRoot || !dockerUp)(`network faults on nginx${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('latency: connect and the request each take 2 × 100 ms', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'latency', target: 'nginx' });
    expect(r).toPass();
    expect(roundTripMs(r, 1)).toBeGreaterThanOrEqual(200);
    expect((r.fault.processes ?? []).length).toBe(2);
  });

  test('partition: a 5 s outage costs nginx\'s client the RTO at ~6.5 s', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'partition', target: 'nginx' });
    expect(r).toPass();
    expect(step(r, 'stall')).toBeGreaterThan(6000);
  });

  test('loss: every 3rd request lost and resent by the loss probe', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'loss', target: 'nginx' });
    expect(r).toPass();
    expect(r.fault.rulesHit['loss-to-server']).toBe(2);
  });

  test('bandwidth: nginx\'s answer passes through the shaper on the pod\'s end of the veth', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'bandwidth', target: 'nginx' });
    expect(r).toPass();
    expect(r.fault.applied.some((a) => a.includes(`on harness${r.runId}t (server)`))).toBe(true);
  });
});
