/**
 * loss on the built-in netns target: every n-th (or randomly chosen) data segment on one
 * direction is dropped in the receiving namespace. Each loss is resent exactly once — by the tail
 * loss probe one RTO later, or the RTO itself without probes — so the requests that lost their
 * segment take ~204 ms, the others a fraction of a ms; the sender's retransmissions equal the
 * rule's hits.
 */
import { describe, isRoot, roundTripMs as round, test } from './support/fixtures.js';


describe.skipIf(!isRoot)('loss (netns)', { tags: ['netns'] }, () => {
  test.concurrent('every 3rd request lost: requests 3 and 5 wait for the loss probe; 2 probes, 2 hits', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'loss' });
    expect(r).toPass();
    expect([1, 2, 4, 6].map((k) => round(r, k)).every((ms) => ms < 100)).toBe(true);
    expect(round(r, 3)).toBeGreaterThanOrEqual(200);
    expect(round(r, 5)).toBeGreaterThanOrEqual(200);
    expect(r.counters.client.TcpExtTCPLossProbes).toBe(2);
    expect(r.fault.rulesHit['loss-to-server']).toBe(2);
  });

  test.concurrent('without loss probes (tcp_early_retrans=0) each loss waits a full RTO', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'loss', params: { every: 2 }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_early_retrans', value: '0' }] });
    expect(r).toPass();
    expect(r.counters.client.TcpExtTCPTimeouts).toBe(5);
    expect(r.counters.client.TcpExtTCPLossProbes).toBe(0);
  });

  test.concurrent('answers lost (to-client): the server retransmits each', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'loss', params: { direction: 'to-client' } });
    expect(r).toPass();
    expect(r.counters.server.TcpRetransSegs).toBe(r.fault.rulesHit['loss-to-client']);
  });

  test.concurrent('random loss p=0.3 over 20 requests: whatever was lost was resent once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'loss', params: { probability: 0.3, rounds: 20 } });
    expect(r).toPass();
    const hits = r.fault.rulesHit['loss-to-server']!;
    expect(r.counters.client.TcpRetransSegs).toBe(hits);
    expect((r.counters.client.TcpExtTCPLossProbes ?? 0) + (r.counters.client.TcpExtTCPTimeouts ?? 0)).toBe(hits);
  });
});
