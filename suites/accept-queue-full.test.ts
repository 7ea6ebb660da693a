/**
 * accept-queue-full on the built-in netns target: a listener that never accepts holds backlog + 1
 * connections; later SYNs are dropped (connect ETIMEDOUT, ListenOverflows per SYN) whatever
 * tcp_abort_on_overflow says; a connection whose final ACK meets the full queue hangs (abort=0)
 * or is reset (abort=1). The listener's Recv-Q/Send-Q show the queue and the backlog.
 */
import { describe, expect, isRoot, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('accept-queue-full (netns)', { tags: ['netns'] }, () => {
  test.concurrent.for([1, 2])('backlog=%i: backlog + 1 connects complete, the next SYN is dropped', async (backlog, { harness, expect }) => {
    const r = await harness.run({ scenario: 'accept-queue-full', params: { backlog } });
    expect(r).toPass();
    const connects = r.steps.filter((s) => s.op === 'connect');
    expect(connects.map((s) => s.ok)).toEqual([...Array(backlog + 1).fill(true), false]);
    expect(r).toFailWith('ETIMEDOUT', `connect-${backlog + 1}`);
    const listen = r.states.server.filter((s) => s.state === 'LISTEN');
    expect(Math.max(...listen.map((s) => s.rq ?? 0))).toBe(backlog + 1);
    expect(listen.at(-1)?.wq).toBe(backlog);
    const syns = 1 + (connects.at(-1)?.tcp?.totalRetrans ?? 0);
    expect(r.counters.server.TcpExtListenOverflows).toBe(syns);
    expect(r.counters.server.TcpExtListenDrops).toBe(syns);
    expect(r).toHaveVisited('client', 'SYN_SENT');
  });

  test('tcp_abort_on_overflow=1 changes nothing at the SYN: still a timeout, no RST', async ({ harness }) => {
    const r = await harness.run({ scenario: 'accept-queue-full', sysctls: [{ side: 'server', key: 'net.ipv4.tcp_abort_on_overflow', value: '1' }] });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'connect-2');
    expect(r.counters.server.TcpOutRsts ?? 0).toBe(0);
  });

  test.concurrent('overflow at the final ACK, abort=0: the client is ESTABLISHED, its data is dropped, the server resends SYN-ACKs', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'accept-queue-full', params: { overflow: 'ack' } });
    expect(r).toPass();
    expect(r.steps.find((s) => s.label === 'write-late')).toMatchObject({ ok: true, bytes: 100 });
    expect(r.steps.find((s) => s.label === 'read-late')).toMatchObject({ timedOut: true, tcp: { state: 'ESTABLISHED' } });
    expect(r).toHaveVisited('server', 'SYN_RECV');
    expect(r.counters.server.TcpExtTCPSynRetrans).toBeGreaterThanOrEqual(1);
    expect(r.counters.client.TcpRetransSegs).toBeGreaterThanOrEqual(1);
    expect(r.counters.server.TcpOutRsts ?? 0).toBe(0);
    expect(r.fault.rulesHit['hold-ack']).toBeGreaterThanOrEqual(1);
  });

  test.concurrent('overflow at the final ACK, abort=1: RST → ECONNRESET on the first read', async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'accept-queue-full',
      params: { overflow: 'ack' },
      sysctls: [{ side: 'server', key: 'net.ipv4.tcp_abort_on_overflow', value: '1' }],
    });
    expect(r).toPass();
    expect(r).toFailWith('ECONNRESET', 'read-late');
    expect(r.counters.server.TcpExtEmbryonicRsts).toBe(1);
    expect(r.counters.client.TcpEstabResets).toBe(1);
    expect(r.fault.rulesHit['hold-ack']).toBe(1);
  });

  test('somaxconn caps the listen() backlog: backlog 2 with somaxconn 1 holds 2, not 3', async ({ harness }) => {
    const r = await harness.run({ scenario: 'accept-queue-full', params: { backlog: 2 }, sysctls: [{ side: 'server', key: 'net.core.somaxconn', value: '1' }] });
    expect(r.sysctls.server['net.core.somaxconn']).toBe('1');
    expect(r).toPass();
    const listen = r.states.server.filter((s) => s.state === 'LISTEN');
    expect(listen.at(-1)?.wq).toBe(1);
    expect(Math.max(...listen.map((s) => s.rq ?? 0))).toBe(2);
  });

  test.concurrent.for(['0', '1'])(
    'overflow=cookie, abort=%s: the cookie ACK meets a full accept queue and is dropped silently; the client is connected and its read hangs',
    async (abort, { harness, expect }) => {
      const r = await harness.run({
        scenario: 'accept-queue-full',
        params: { overflow: 'cookie', backlog: 2 },
        sysctls: [{ side: 'server', key: 'net.ipv4.tcp_abort_on_overflow', value: abort }],
      });
      expect(r).toPass();
      const read = r.steps.find((s) => s.label === 'read-late')!;
      expect(read).toMatchObject({ ok: false, timedOut: true, errno: null, tcp: { state: 'ESTABLISHED' } });
      // Every copy of the late data was validated as a cookie, then dropped at the full accept queue.
      expect(r.counters.server.TcpExtSyncookiesRecv).toBeGreaterThanOrEqual(3 + 1 + (read.tcp?.totalRetrans ?? 0));
      expect(r.counters.server.TcpOutRsts).toBe(0);
      expect(r.counters.client.TcpEstabResets).toBe(0);
    },
  );
});
