/**
 * rst-close on the built-in netns target: an abortive close on either side. With unread data or
 * SO_LINGER {1,0} the closer sends exactly one RST and no FIN (counted on its OUTPUT), its socket
 * goes straight from ESTABLISHED to gone (no FIN_WAIT*, no TIME_WAIT), and the peer is reset:
 * ECONNRESET on the client's next read, TcpEstabResets on either peer. With SO_LINGER {1,N} and
 * a dead peer, close() blocks N s (or until tcp_retries2 kills the connection), returns 0, and
 * leaves an orphan in FIN_WAIT1 that dies without a RST.
 */
import { dataSysctlsFrom, predictLingerClose } from '../harness/model/data.js';
import type { Result } from '../harness/verdict/result.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

const labelled = (r: Result, label: string) => r.steps.find((s) => s.label === label)!;

/** Both sides of an abortive close, whoever closed. */
function expectAbort(r: Result, closer: 'client' | 'server', counter: 'TcpExtTCPAbortOnClose' | 'TcpExtTCPAbortOnData') {
  const peer = closer === 'client' ? 'server' : 'client';
  const other = counter === 'TcpExtTCPAbortOnClose' ? 'TcpExtTCPAbortOnData' : 'TcpExtTCPAbortOnClose';
  expect(r).toPass();
  // The proof it fired: one RST out of the closer, no FIN, and the closer counted the abort.
  expect(r.fault.rulesHit).toEqual({ 'rst-sent': 1, 'fin-sent': 0 });
  expect(r.counters[closer][counter]).toBe(1);
  expect(r.counters[closer][other] ?? 0).toBe(0);
  expect(r.counters[closer].TcpOutRsts).toBe(1);
  // Closer: ESTABLISHED → gone, never a FIN state, never TIME_WAIT.
  for (const st of ['FIN_WAIT1', 'FIN_WAIT2', 'CLOSING', 'TIME_WAIT']) expect(r).not.toHaveVisited(closer, st);
  expect(r).toHaveVisited(closer, 'GONE');
  // Peer: reset, never CLOSE_WAIT (no FIN reached it), sent no RST of its own.
  expect(r.counters[peer].TcpEstabResets).toBe(1);
  expect(r.counters[peer].TcpOutRsts ?? 0).toBe(0);
  expect(r).not.toHaveVisited(peer, 'CLOSE_WAIT');
  expect(r).toHaveVisited(peer, 'GONE');
  expect(r.revert.failed).toEqual([]);
}

describe.skipIf(!isRoot)('rst-close (netns)', { tags: ['netns'] }, () => {
  test.concurrent('client closes with unread data: RST (AbortOnClose), close() at once, server reset', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close' });
    expectAbort(r, 'client', 'TcpExtTCPAbortOnClose');
    expect(labelled(r, 'close')).toMatchObject({ ok: true, errno: null });
    expect(labelled(r, 'close').durationMs).toBeInWindow(r.expected.steps.close!.windowMs);
  });

  test.concurrent('client closes with SO_LINGER {1,0} after reading its echo: RST counted as AbortOnData', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close', params: { how: 'linger0' } });
    expectAbort(r, 'client', 'TcpExtTCPAbortOnData');
    expect(labelled(r, 'read-echo')).toMatchObject({ ok: true, bytes: 1000 });
    expect(labelled(r, 'close')).toMatchObject({ ok: true, errno: null });
  });

  test.concurrent('server closes with unread data (close-unread): the client reads ECONNRESET, then EOF, then EPIPE', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close', params: { side: 'server', how: 'unread' } });
    expectAbort(r, 'server', 'TcpExtTCPAbortOnClose');
    expect(r).toFailWith('ECONNRESET', 'read-reset');
    expect(labelled(r, 'read-reset').durationMs).toBeInWindow(r.expected.steps['read-reset']!.windowMs);
    expect(labelled(r, 'read-after')).toMatchObject({ ok: true, eof: true, errno: null });
    expect(r).toFailWith('EPIPE', 'write-epipe');
  });

  test.concurrent('server closes with SO_LINGER {1,0} after reading (linger0): the client reads ECONNRESET', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close', params: { side: 'server', how: 'linger0' } });
    expectAbort(r, 'server', 'TcpExtTCPAbortOnData');
    expect(r).toFailWith('ECONNRESET', 'read-reset');
    expect(r).toFailWith('EPIPE', 'write-epipe');
  });

  test.concurrent('SO_LINGER {1,1} against a dead peer: close() blocks 1 s, returns 0, an orphan FIN_WAIT1 dies without RST', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close', params: { how: 'linger' } });
    expect(r).toPass();
    const p = predictLingerClose(dataSysctlsFrom(r.sysctls.client, r.sysctls.server), { lingerS: 1, orphanRetries: Number(r.sysctls.client['net.ipv4.tcp_orphan_retries']) }, await runClock(r));
    expect(p.closeEndedBy).toBe('linger');
    expect(labelled(r, 'close')).toMatchObject({ ok: true, errno: null });
    expect(labelled(r, 'close').durationMs).toBeInWindow(p.closeWindowMs);
    expect(labelled(r, 'close').durationMs).toBeGreaterThan(990);
    // Both sides: the client lingered in FIN_WAIT1 and vanished; the server heard nothing.
    expect(r).toHaveVisited('client', 'FIN_WAIT1');
    expect(r).not.toHaveVisited('client', 'TIME_WAIT');
    expect(r).not.toHaveVisited('server', 'CLOSE_WAIT');
    expect(r.counters.server.TcpEstabResets ?? 0).toBe(0);
    // No RST anywhere; the orphan timed out; every segment went into the drop rule.
    expect(r.fault.rulesHit['rst-sent']).toBe(0);
    expect(r.counters.client.TcpOutRsts ?? 0).toBe(0);
    expect(r.counters.client.TcpExtTCPAbortOnTimeout).toBe(1);
    expect(r.fault.rulesHit['drop-in']).toBe(p.segments[0]);
    expect(r.fault.rulesHit['fin-sent']).toBe(p.finsSent[0]);
  });

  test.concurrent('SO_LINGER {1,3} with tcp_retries2=1: the connection dies under the linger, close() returns early with 0', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'rst-close', params: { how: 'linger', lingerS: 3 }, sysctls: [{ side: 'client', key: 'net.ipv4.tcp_retries2', value: '1' }] });
    expect(r).toPass();
    expect(r.sysctls.client['net.ipv4.tcp_retries2']).toBe('1');
    expect(labelled(r, 'close')).toMatchObject({ ok: true, errno: null });
    expect(labelled(r, 'close').durationMs).toBeLessThan(3000);
    expect(labelled(r, 'close').durationMs).toBeInWindow(r.expected.steps.close!.windowMs);
    expect(r.counters.client.TcpExtTCPAbortOnTimeout).toBe(1);
    expect(r.fault.rulesHit['rst-sent']).toBe(0);
    expect(r.counters.server.TcpEstabResets ?? 0).toBe(0);
  });
});
