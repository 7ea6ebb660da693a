/**
 * app-hang on the real kernel: the server's processes are frozen (SIGSTOP) after the handshake
 * and its kernel carries on. The client's writes stop when both buffers are full — what the
 * server's kernel acknowledged plus what waits in the client's queue is exactly what write()
 * took — the zero-window probes are answered, keepalive is answered, TCP_USER_TIMEOUT counts
 * from the first probe, and only a read with a timeout (a heartbeat) notices. Also on a `process`
 * target (a server of the user's own), and with the user's own client command.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processTarget } from '../targets/process.js';
import { describe, isRoot, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('app-hang', { tags: ['netns'] }, () => {
  test.concurrent('write: stops where the buffers are full, window zero, probes answered, ESTABLISHED', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'app-hang' });
    expect(r).toPass();
    const step = (l: string) => r.steps.find((s) => s.label === l)!;
    const fill = step('fill');
    const stalled = step('stalled').tcp!;
    // Every byte write() took is in one of the two queues: acknowledged by the frozen server's kernel (+1: the SYN), or unsent.
    expect(fill.bytes).toBe(stalled.bytesAcked! - 1 + stalled.notsentBytes!);
    expect(stalled.sndWnd).toBe(0);
    expect(r.fault.applied[0]).toMatch(/^freeze: SIGSTOP to the process group of echo/);
    expect(r.counters.client.TcpExtTCPWinProbe).toBe(step('still').tcp!.backoff);
    // The server never read or wrote anything: it was frozen before the first byte.
    expect(r.serverSteps?.map((s) => s.op)).toEqual(['accept']);
  });

  test.concurrent('user-timeout: the blocked write fails with ETIMEDOUT the user timeout after the first probe', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'app-hang', params: { variant: 'user-timeout', userTimeoutMs: '1500' } });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'fill');
    expect(r.counters.client.TcpExtTCPAbortOnTimeout).toBe(1);
  });

  // The idle wait (an epoll timeout of 5.5 s) ended at 5505.5 ms against a window ending at 5505.4
  // until the model gave epoll's hrtimer its slack: 0.1 % of the timeout (data.ts pollSlackMs).
  test.concurrent('keepalive: more probes than TCP_KEEPCNT, every one answered; heartbeat: the read times out', async ({ harness, expect }) => {
    const [k, h] = await Promise.all([harness.run({ scenario: 'app-hang', params: { variant: 'keepalive' } }), harness.run({ scenario: 'app-hang', params: { variant: 'heartbeat' } })]);
    expect(k).toPass();
    expect(k.counters.client.TcpExtTCPKeepAlive).toBeGreaterThan(3);
    expect(k.steps.find((s) => s.label === 'alive')!.tcp!.state).toBe('ESTABLISHED');
    expect(h).toPass();
    expect(h.steps.find((s) => s.label === 'pong')).toMatchObject({ timedOut: true });
  });

  test.concurrent('on a server of the user\'s own (a process target): the same, frozen by its process group', async ({ harness, expect }) => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-app-hang-'));
    try {
      const js = "require('http').createServer((q, s) => s.end('ok')).listen(7125, () => console.log('listening'))";
      const target = processTarget({ name: 'node-http', argv: ['node', '-e', js], cwd: dir, port: 7125, ready: { log: 'listening' } });
      const r = await harness.run({ scenario: 'app-hang', target });
      expect(r).toPass();
      expect(r.fault.applied[0]).toMatch(/^freeze: SIGSTOP to the process group of node-http/);
      expect(r.serverSteps).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test.concurrent('your own client: it ends only by its own timeout; the kernel never would', async ({ harness, expect }) => {
    // A pooled connection used a moment later (the hang struck in between); the client gives up on an answer after 1 s.
    const client =
      "const s = require('net').connect(+process.argv[2], process.argv[1], () => setTimeout(() => { s.write('ping\\n'); setTimeout(() => process.exit(1), 1000); }, 300)); s.on('data', () => process.exit(0))";
    const r = await harness.run({ scenario: 'app-hang', client: { argv: ['node', '-e', client, '{host}', '{port}'] } });
    expect(r).toPass();
    expect(r).toHaveClientExit(1);
    expect(r).toHaveClientEndedBy('client');
    expect(r.client!.struck?.why).toMatch(/ESTABLISHED/);
  });
});
