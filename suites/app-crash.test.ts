/**
 * app-crash on the built-in netns target: the server process is SIGKILLed at a barrier. Idle
 * connection: EOF, a write that succeeds, EOF again, EPIPE (6.18's order); unread data: ECONNRESET
 * at once; after death: ECONNREFUSED at once. The proof the kill happened is on the server side:
 * its socket leaves ESTABLISHED (FIN_WAIT2, or gone by a RST) and its RST counters move.
 */
import type { Result, StepResult } from '../harness/verdict/result.js';
import { describe, isRoot, test } from './support/fixtures.js';

const labelled = (r: Result, label: string): StepResult => r.steps.find((s) => s.label === label)!;

describe.skipIf(!isRoot)('app-crash (netns)', { tags: ['netns'] }, () => {
  test.concurrent('idle: EOF, write ok, EOF, EPIPE, EPIPE; server FIN then RST', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'app-crash', params: { variant: 'idle' } });
    expect(r).toPass();
    expect(labelled(r, 'read-eof')).toMatchObject({ ok: true, eof: true });
    expect(labelled(r, 'write-after-fin')).toMatchObject({ ok: true, bytes: 1000 });
    expect(labelled(r, 'read-after-rst')).toMatchObject({ ok: true, eof: true, errno: null });
    expect(r).toFailWith('EPIPE', 'write-epipe');
    expect(r).toFailWith('EPIPE', 'write-again');
    expect(r).toHaveVisited('client', 'CLOSE_WAIT');
    expect(r).toHaveVisited('server', 'FIN_WAIT2');
    expect(r).not.toHaveVisited('client', 'TIME_WAIT');
    expect(r.counters.server.TcpOutRsts).toBe(1);
    expect(r.counters.server.TcpExtTCPAbortOnData ?? 0).toBe(0);
    expect(r.counters.client.TcpEstabResets).toBe(1);
    expect(r.fault.applied).toContain('kill -SIGKILL server');
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent('unread data: RST instead of FIN, ECONNRESET at once, no CLOSE_WAIT', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'app-crash', params: { variant: 'unread' } });
    expect(r).toPass();
    expect(r).toFailWith('ECONNRESET', 'read-reset');
    expect(labelled(r, 'read-reset').durationMs).toBeInWindow(r.expected.steps['read-reset']!.windowMs);
    expect(r).toFailWith('EPIPE', 'write-epipe');
    expect(r).not.toHaveVisited('client', 'CLOSE_WAIT');
    expect(r).not.toHaveVisited('server', 'FIN_WAIT1');
    expect(r).toHaveVisited('server', 'GONE');
    expect(r.counters.server.TcpExtTCPAbortOnClose).toBe(1);
    expect(r.counters.server.TcpOutRsts).toBe(1);
    expect(r.counters.client.TcpEstabResets).toBe(1);
  });

  test.concurrent('after death: a new connect is refused at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'app-crash', params: { variant: 'after-death' } });
    expect(r).toPass();
    expect(r).toFailWith('ECONNREFUSED', 'connect-after');
    expect(labelled(r, 'connect-after').durationMs).toBeLessThan(r.expected.steps['connect-after']!.windowMs![1]);
    expect(r.counters.client.TcpAttemptFails).toBe(1);
    expect(r.counters.server.TcpOutRsts).toBe(1);
    // The listener is gone with the process.
    expect(r.states.server.some((s) => s.local === '0.0.0.0:9000' && s.state === 'GONE')).toBe(true);
  });
});
