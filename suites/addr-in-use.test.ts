/**
 * addr-in-use on the real kernel: the server closes three connections first (TIME_WAIT on its
 * port), is stopped, and a new listener binds the port in its namespace — with and without
 * SO_REUSEADDR / SO_REUSEPORT, on both ends; and a second listener beside a live server. Both
 * sides observed: the new listener's bind() (errno, µs), the server's TIME_WAITs held through the
 * restart and the new listener on its watcher, the client's connect() after the restart (refused
 * or completed) and its counters. Against the built-in server, the probe's server in a container,
 * and nginx (its own listener: SO_REUSEADDR on).
 */
import { predictBind } from '../harness/model/bind.js';
import type { Result } from '../harness/verdict/result.js';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const step = (r: Result, label: string) => r.steps.find((s) => s.label === label)!;

/** The restart as both sides saw it. */
function expectRestart(r: Result, bound: boolean) {
  expect(r).toPass();
  const listen = step(r, 'listen');
  // The new listener ran in the server's namespace, on the Result's time line after the barrier.
  expect(listen).toMatchObject({ side: 'server', op: 'listen', ok: bound, errno: bound ? null : 'EADDRINUSE' });
  expect(listen.durationMs).toBeInWindow(r.expected.steps.listen!.windowMs);
  expect(listen.startMs).toBeGreaterThan(step(r, 'reply-3').endMs);
  expect(step(r, 'connect-after').startMs).toBeGreaterThan(listen.endMs);
  // Server: three TIME_WAITs, still there when the new listener bound (60 s).
  expect(r.counters.server.TcpExtTW).toBe(3);
  expect(r.states.server.filter((s) => s.state === 'TIME_WAIT')).toHaveLength(3);
  expect(r).toHaveVisited('server', 'TIME_WAIT');
  expect(r).not.toHaveVisited('client', 'TIME_WAIT');
  if (bound) {
    expect(step(r, 'connect-after')).toMatchObject({ ok: true, errno: null });
    expect(r.states.server.filter((s) => s.state === 'LISTEN').at(-1)!.wq).toBe(16);
  } else {
    expect(r).toFailWith('ECONNREFUSED', 'connect-after');
    expect(r.counters.client.TcpAttemptFails).toBe(1);
    expect(r.counters.server.TcpOutRsts).toBe(1);
  }
  expect(r.revert.failed).toEqual([]);
}

describe.skipIf(!isRoot)('addr-in-use (netns)', { tags: ['netns'] }, () => {
  test.concurrent('restart without SO_REUSEADDR: bind() EADDRINUSE at once; the client is refused', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'addr-in-use' });
    expectRestart(r, false);
    expect(r.expected.because!.join(' ')).toMatch(/neither SO_REUSEADDR nor SO_REUSEPORT → EADDRINUSE/);
  });

  test.concurrent('restart with SO_REUSEADDR (the old server had it too): bind() succeeds beside the TIME_WAITs; the client connects', async ({ harness }) => {
    const r = await harness.run({ scenario: 'addr-in-use', params: { reuse: 'reuseaddr' } });
    expectRestart(r, true);
  });

  test.concurrent('restart with SO_REUSEADDR, but the old server lacked it: its TIME_WAITs still refuse the port', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'addr-in-use', params: { reuse: 'reuseaddr', serverReuseaddr: 'false' } });
    expectRestart(r, false);
    expect(r.expected.because!.join(' ')).toMatch(/old listener did not set it/);
  });

  test.concurrent('second listener beside a live server: SO_REUSEADDR never shares it; SO_REUSEPORT on both does', async ({ harness, expect }) => {
    const addr = await harness.run({ scenario: 'addr-in-use', params: { variant: 'second-listener', reuse: 'reuseaddr' } });
    expect(addr).toPass();
    expect(step(addr, 'listen')).toMatchObject({ side: 'server', errno: 'EADDRINUSE' });
    // The old server still answers.
    expect(step(addr, 'connect-after')).toMatchObject({ ok: true });

    const port = await harness.run({ scenario: 'addr-in-use', params: { variant: 'second-listener', reuse: 'reuseport', serverReuseport: 'true' } });
    expect(port).toPass();
    expect(step(port, 'listen')).toMatchObject({ side: 'server', ok: true, errno: null });
    expect(predictBind({ reuseaddr: false, reuseport: true }, [{ state: 'LISTEN', reuseaddr: true, reuseport: true, sameUser: true }]).errno).toBeNull();
    // Neither leaves a TIME_WAIT: no connection was closed by the server before, and the one after is aborted.
    for (const r of [addr, port]) expect(r.counters.server.TcpExtTW).toBe(0);
  });
});

describe.skipIf(!isRoot || !dockerUp)(`addr-in-use in containers${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('nginx closes HTTP/1.0 connections first; stopped, its port refuses a listener without SO_REUSEADDR and takes one with it', async ({ harness }) => {
    const r = await harness.run({ scenario: 'addr-in-use', target: 'nginx' });
    expect(r.target).toMatchObject({ name: 'nginx', backend: 'container', port: 80 });
    expectRestart(r, false);
    // nginx's own reply (an HTTP header), then its FIN.
    expect(step(r, 'reply-1')).toMatchObject({ eof: true });
    expect(step(r, 'reply-1').bytes).toBeGreaterThan(100);
    expectRestart(await harness.run({ scenario: 'addr-in-use', target: 'nginx', params: { reuse: 'reuseaddr' } }), true);
  });

  test('the probe\'s server in a container without SO_REUSEADDR: only the built-in servers take serverReuseaddr', async ({ harness }) => {
    const r = await harness.run({ scenario: 'addr-in-use', target: 'probe-container', params: { reuse: 'reuseaddr', serverReuseaddr: 'false' } });
    expectRestart(r, false);
  });
});
