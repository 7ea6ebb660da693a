/**
 * syn-queue-full on the built-in netns target: half-open connections fill the SYN queue (backlog
 * + 1 of them on 6.18), then a fresh connect completes through a SYN cookie (tcp_syncookies 1, 2)
 * or times out (0, or tcp_max_syn_backlog's reserved quarter); the server's counters prove which.
 */
import { describe, isRoot, test } from './support/fixtures.js';

const server = (key: string, value: string) => ({ side: 'server' as const, key: `net.ipv4.${key}`, value });

describe.skipIf(!isRoot)('syn-queue-full (netns)', { tags: ['netns'] }, () => {
  test.concurrent('syncookies=1 (default): backlog + 1 requests stored, the fresh connect gets a cookie', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-queue-full' });
    expect(r).toPass();
    const synRecv = new Set(r.states.server.filter((s) => s.state === 'SYN_RECV').map((s) => s.remote));
    expect(synRecv.size).toBe(3);
    expect(r.steps.find((s) => s.label === 'connect-fresh')).toMatchObject({ ok: true });
    expect(r).toHaveVisited('server', 'ESTABLISHED');
    expect(r.counters.server).toMatchObject({ TcpExtSyncookiesSent: 1, TcpExtSyncookiesRecv: 1, TcpExtTCPReqQFullDoCookies: 1 });
    expect(r.counters.server.TcpExtListenDrops ?? 0).toBe(0);
  });

  test.concurrent('syncookies=0: the fresh SYN is dropped at every retransmission, connect ETIMEDOUT', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-queue-full', sysctls: [server('tcp_syncookies', '0')] });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'connect-fresh');
    const syns = 1 + (r.steps.find((s) => s.label === 'connect-fresh')?.tcp?.totalRetrans ?? 0);
    expect(r.counters.server.TcpExtTCPReqQFullDrop).toBe(syns);
    expect(r.counters.server.TcpExtListenDrops).toBe(syns);
    expect(r.counters.server.TcpExtSyncookiesSent ?? 0).toBe(0);
  });

  test.concurrent('syncookies=2: nothing is stored, every SYN gets a cookie', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-queue-full', sysctls: [server('tcp_syncookies', '2')] });
    expect(r).toPass();
    expect(r).not.toHaveVisited('server', 'SYN_RECV');
    expect(r.counters.server.TcpExtSyncookiesSent).toBe(4);
    expect(r.counters.server.TcpExtSyncookiesRecv).toBe(1);
  });

  test.concurrent('syncookies=0, tcp_max_syn_backlog=4 under backlog 16: the 5th SYN is dropped by the reserved quarter', async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'syn-queue-full',
      params: { backlog: 16 },
      sysctls: [server('tcp_syncookies', '0'), server('tcp_max_syn_backlog', '4')],
    });
    expect(r).toPass();
    expect(r.steps.filter((s) => s.label?.startsWith('half-open')).length).toBe(4);
    expect(r).toFailWith('ETIMEDOUT', 'connect-fresh');
    expect(r.counters.server.TcpExtTCPReqQFullDrop ?? 0).toBe(0);
    expect(r.counters.server.TcpExtListenDrops).toBeGreaterThan(0);
  });

  test.concurrent(
    'cookies off, backlog 4, 8 half-opens, tcp_synack_retries 3: the pruned request frees a slot at ~7 s for the 8th half-open (reqsk_timer_handler)',
    { tags: ['slow'] },
    async ({ harness, expect }) => {
      const r = await harness.run({
        scenario: 'syn-queue-full',
        kernelDefaults: true,
        params: { backlog: 4, halfOpens: 8 },
        sysctls: [
          { side: 'client', key: 'net.ipv4.tcp_syn_retries', value: '1' },
          server('tcp_syncookies', '0'),
          server('tcp_max_syn_backlog', '2048'),
          server('tcp_synack_retries', '3'),
        ],
      });
      expect(r).toPass();
      expect(r.steps.find((s) => s.label === 'half-open-7')).toMatchObject({ ok: true, tcp: { totalRetrans: 1 } });
      // Six requests were stored; one was pruned before the end: five SYN_RECV sockets remain, plus the 8th's.
      const synRecv = new Set(r.states.server.filter((s) => s.state === 'SYN_RECV').map((s) => s.remote));
      expect(synRecv.size).toBe(6);
      expect(r).toFailWith('ETIMEDOUT', 'connect-fresh');
    },
  );
});
