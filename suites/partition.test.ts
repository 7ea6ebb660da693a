/**
 * partition on the built-in netns target: both directions blackholed for outageMs, then healed
 * by the harness on time. The stall ends at the first retransmission (keepalive probe, SYN) after
 * the heal: the model's firing, not the heal; a budget that runs out first ends the connection
 * (ETIMEDOUT), and the server, which heard nothing, keeps a half-open connection.
 */
import { kernelFacts } from '../harness/core/kernel.js';
import { dataSysctlsFrom, initialRtoJiffies } from '../harness/model/data.js';
import { predictTransferOutage } from '../harness/model/outage.js';
import { partition, partitionPrediction } from '../faults/partition.js';
import { faultContext } from '../faults/context.js';
import { describe, isRoot, test } from './support/fixtures.js';

const step = (r: { steps: { label?: string }[] }, label: string) => r.steps.find((s) => s.label === label)! as { durationMs: number; errno: string | null };

describe.skipIf(!isRoot)('partition (netns)', { tags: ['netns'] }, () => {
  test.concurrent('a 5 s outage during a request costs ~6.5 s: the RTO after the heal, not the heal', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'partition', params: { outageMs: 5000 } });
    expect(r).toPass();
    const clock = await kernelFacts();
    const data = dataSysctlsFrom(r.sysctls.client, r.sysctls.server);
    // The heal's budget the fault allowed this run (the model's, from the sysctls read back).
    const budget = partitionPrediction(faultContext(partition, { params: r.params, sysctls: r.sysctls, hz: clock.hz })).budgetMs;
    const p = predictTransferOutage(data, { rtoJiffies: initialRtoJiffies(data.rtoMinMs, clock), srttUs: 1 }, clock, [5000 - 8, 5000 + budget]);
    expect(step(r, 'stall').durationMs).toBeGreaterThan(6000);
    expect(step(r, 'stall').durationMs).toBeGreaterThanOrEqual(p.throughMs![0]);
    // The heal's mark: removed on time, and the data came only afterwards.
    const write = r.steps.find((s) => s.label === 'write')!;
    const healed = r.fault.marks!.find((m) => m.describe.includes('removed'))!;
    expect(healed.tMs - write.startMs).toBeGreaterThanOrEqual(5000 - 8);
    expect(healed.tMs - write.startMs).toBeLessThanOrEqual(5000 + budget);
    expect(step(r, 'stall').durationMs - (healed.tMs - write.startMs)).toBeGreaterThan(1000);
    expect(r.counters.client.TcpRetransSegs).toBe(6);
    expect(r.fault.rulesHit['drop-to-server']).toBe(6);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('tcp_retries2=3 and an 8 s outage: ETIMEDOUT at ~6.5 s; the server stays ESTABLISHED (half-open)', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'partition', params: { outageMs: 8000 }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_retries2', value: '3' }] });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'stall');
    expect(r).toHaveVisited('server', 'ESTABLISHED');
    expect(r).not.toHaveVisited('server', 'CLOSE_WAIT');
  });

  test.concurrent('idle with keepalive 1 s/1 s/5: probes lost for 3.5 s, the next answered; the connection survives', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'partition', params: { variant: 'idle' } });
    expect(r).toPass();
    expect(r.counters.client.TcpExtTCPKeepAlive).toBe(4);
    expect(r.fault.rulesHit['drop-to-server']).toBe(3);
  });

  test.concurrent('connect() during a 2.5 s outage returns with the SYN at 3 s', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'partition', params: { variant: 'connect' } });
    expect(r).toPass();
    expect(step(r, 'connect').durationMs).toBeGreaterThanOrEqual(3000);
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(3);
  });
});
