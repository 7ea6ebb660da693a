/**
 * nagle-delack on the real kernel: a request written in two small writes, then its reply, on one
 * connection — against the built-in request-reply server, and against nginx in a container (the
 * same kernel behaviour from a real HTTP server). Both sides observed: the client's round trips
 * and its data segments (a counting rule on its OUTPUT), the server's delayed ACKs
 * (TcpExtDelayedACKs in its namespace), the connection on both watchers. Every window comes from
 * harness/model/ack.ts.
 */
import { kernelFacts } from '../harness/core/kernel.js';
import { predictRequestReply } from '../harness/model/ack.js';
import type { Result } from '../harness/verdict/result.js';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

/** From each request's first write to its reply, ms. */
function roundTrips(r: Result): number[] {
  const at = (label: string) => r.steps.find((s) => s.label === label);
  const out: number[] = [];
  for (let k = 1; at(`request-${k}`); k++) out.push(at(`reply-${k}`)!.endMs - at(`request-${k}`)!.startMs);
  return out;
}

/** What every variant shares: the verdict, each round trip in the model's window, both sides seen. */
async function expectRequestReply(r: Result, variant: 'nagle' | 'nodelay' | 'cork' | 'cork-held', requests: number) {
  expect(r).toPass();
  const m = predictRequestReply(
    { variant, requests, pingpongThresh: Number(r.sysctls.server['net.ipv4.tcp_pingpong_thresh']), rtoMinMs: Number(r.sysctls.client['net.ipv4.tcp_rto_min_us']) / 1000 },
    await kernelFacts(),
  );
  const rtts = roundTrips(r);
  expect(rtts).toHaveLength(requests);
  rtts.forEach((ms, i) => expect(ms).toBeInWindow(m.windowsMs[i]));
  expect(r.counters.server.TcpExtDelayedACKs).toBe(m.delayedAcks);
  expect(r.fault.rulesHit['client-data']).toBe(m.segmentsPerRequest * requests);
  expect(r).toHaveVisited('client', 'ESTABLISHED');
  expect(r).toHaveVisited('server', 'ESTABLISHED');
  // Nothing was lost: every wait is a timer the model names, never a retransmission.
  expect(r.counters.client.TcpRetransSegs ?? 0).toBe(0);
  expect(r.revert.failed).toEqual([]);
  return { m, rtts };
}

// One run at a time: every request's round trip is a timing check that includes the wake-ups of
// the server and the probe, and concurrent runs' watchers would take the CPU those wake-ups need.
describe.skipIf(!isRoot)('nagle-delack (netns)', { tags: ['netns'] }, () => {
  test('Nagle on: the first request at once, each later one waits the server\'s 40 ms delayed ACK', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack' });
    const { rtts, m } = await expectRequestReply(r, 'nagle', 4);
    expect(m.holds).toEqual(['none', 'delayed-ack', 'delayed-ack', 'delayed-ack']);
    // The stalled round trips are the delayed-ACK timer's, never the immediate one's.
    for (const ms of rtts.slice(1)) expect(ms).toBeGreaterThanOrEqual(m.delayedAckMs);
    expect(r.counters.server.TcpExtDelayedACKs).toBe(3);
  });

  test('TCP_NODELAY: both writes at once, no wait, no delayed ACK', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack', params: { variant: 'nodelay' } });
    const { m } = await expectRequestReply(r, 'nodelay', 4);
    expect(m.holds.every((h) => h === 'none')).toBe(true);
  });

  test('TCP_CORK around the writes: one segment per request when uncorked, no wait', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack', params: { variant: 'cork' } });
    await expectRequestReply(r, 'cork', 4);
    expect(r.fault.rulesHit['client-data']).toBe(4);
  });

  test('TCP_CORK never lifted: each request waits for the probe timer (~204 ms), then leaves as one segment', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack', params: { variant: 'cork-held', requests: '2' } });
    const { m, rtts } = await expectRequestReply(r, 'cork-held', 2);
    for (const ms of rtts) expect(ms).toBeGreaterThanOrEqual(m.probeTimerMs);
  });

  test('tcp_pingpong_thresh=3 on the server: the delayed ACK leaves pingpong mode, so only every third request waits', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack', params: { requests: '7' }, sysctls: [{ side: 'server', key: 'net.ipv4.tcp_pingpong_thresh', value: '3' }] });
    const { m, rtts } = await expectRequestReply(r, 'nagle', 7);
    expect(m.holds.flatMap((h, i) => (h === 'delayed-ack' ? [i + 1] : []))).toEqual([4, 7]);
    expect(rtts.filter((ms) => ms >= m.delayedAckMs)).toHaveLength(2);
  });
});

describe.skipIf(!isRoot || !dockerUp)(`nagle-delack against nginx${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('nginx answers HEAD once the request is complete: the same delayed-ACK waits from its kernel, none with TCP_NODELAY', async ({ harness }) => {
    const r = await harness.run({ scenario: 'nagle-delack', target: 'nginx' });
    expect(r.target).toMatchObject({ name: 'nginx', backend: 'container', port: 80 });
    await expectRequestReply(r, 'nagle', 4);
    // nginx's reply is a full HTTP header, not the built-in server's 38 bytes.
    expect(r.steps.find((s) => s.label === 'reply-1')!.bytes).toBeGreaterThan(100);
    const fast = await harness.run({ scenario: 'nagle-delack', target: 'nginx', params: { variant: 'nodelay' } });
    await expectRequestReply(fast, 'nodelay', 4);
  });
});
