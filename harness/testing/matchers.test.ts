/**
 * The client matchers on Result objects built by hand (no kernel): each passes on the run it
 * describes, and a failing one prints expected and actual side by side.
 */
import { describe, expect, test } from 'vitest';
import type { ClientResult, Result } from '../verdict/result.js';
import './matchers.js';

type Conn = ClientResult['connections'][number];

/** A syn-drop connection: SYN_SENT from 300 ms, gone at `endMs`, ended by `endedBy`. */
function conn(port: number, endMs: number, endedBy: string, end: Conn['end'] = { how: 'gone', state: 'SYN_SENT', tMs: endMs }): Conn {
  return {
    local: `198.18.0.2:${port}`,
    remote: '198.18.0.1:9000',
    states: [{ state: 'SYN_SENT', tMs: 300 }],
    retrans: 1,
    end,
    explanation: endedBy === 'client' ? "gave up after 2.0 s in SYN_SENT with 1 retransmission: the client's own timeout" : "waited the kernel's full schedule",
    endedBy,
  };
}

/** A Result whose client is python3 giving up after 2 s under syn-drop, with `over` replacing its fields. */
function run(over: Partial<ClientResult> = {}): Result {
  const client: ClientResult = {
    argv: ['python3', '-c', 'socket.create_connection(…, timeout=2)', '{host}', '{port}'],
    exitCode: 1,
    signal: null,
    durationMs: 2303,
    timedOut: false,
    stdoutTail: '',
    stderrTail: 'Traceback (most recent call last):\nTimeoutError: timed out\n',
    prediction: { state: 'SYN_SENT', from: 'enter', endsMs: [7000, 7200], errno: 'ETIMEDOUT', then: 'GONE', retrans: 5, because: 'syn retries 2' },
    connections: [conn(51202, 2292, 'client')],
    summary: "gave up after 2.0 s in SYN_SENT with 1 retransmission: the client's own timeout",
    ...over,
  };
  return {
    version: 1,
    runId: 'abc123',
    scenario: 'syn-drop',
    params: {},
    target: { name: 'builtin', backend: 'netns', address: '198.18.0.1', port: 9000 },
    sysctls: { client: {}, server: {} },
    steps: [],
    states: { client: [], server: [] },
    counters: { client: {}, server: {} },
    fault: { rulesHit: { 'drop-syn': 2 }, applied: [] },
    expected: { steps: {} },
    checks: [],
    verdict: 'pass',
    client,
    timing: { setupMs: 100, scenarioMs: 2400, teardownMs: 100 },
    revert: { reverted: 3, failed: [] },
  };
}

/** The message of the assertion error `fn` throws (fails the test if it throws none). */
function failure(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the matcher passed; it should have failed');
}

describe('toHaveClientExit', () => {
  test('passes on the exit code and on nonzero', () => {
    expect(run()).toHaveClientExit(1);
    expect(run()).toHaveClientExit('nonzero');
    expect(run({ exitCode: 0 })).not.toHaveClientExit('nonzero');
  });

  test('a failure prints expected and actual, and what the client did', () => {
    const m = failure(() => expect(run()).toHaveClientExit(0));
    expect(m).toContain('expected the client to exit 0, got 1');
    expect(m).toContain('TimeoutError: timed out');
    expect(m).toContain("gave up after 2.0 s in SYN_SENT");
  });

  test('a client the harness killed, or one ended by a signal, is not "nonzero"', () => {
    expect(failure(() => expect(run({ exitCode: null, timedOut: true })).toHaveClientExit('nonzero'))).toContain('got killed by the harness (timeout)');
    expect(failure(() => expect(run({ exitCode: null, signal: 'SIGSEGV' })).toHaveClientExit('nonzero'))).toContain('expected the client to exit non-zero, got signal SIGSEGV');
  });

  test('a run without a client is a misuse, also under .not', () => {
    const { client: _c, ...noClient } = run();
    expect(() => expect(noClient).not.toHaveClientExit(0)).toThrow(/no client: pass client: \{ argv \}/);
    const broken = { ...noClient, verdict: 'error' as const, error: { code: 'E_PROBE_MISSING', message: 'the native probe is not built', stage: 'target' } };
    expect(() => expect(broken).toHaveClientExit(0)).toThrow(/broke at stage target .*E_PROBE_MISSING/);
  });
});

describe('toHaveClientEndedWithin', () => {
  test('passes at and under the limit', () => {
    expect(run()).toHaveClientEndedWithin(2303);
    expect(run()).toHaveClientEndedWithin(3000);
  });

  test('a failure prints the limit and the duration', () => {
    expect(failure(() => expect(run()).toHaveClientEndedWithin(2000))).toContain('expected the client to end within 2000 ms, it ended after 2303 ms');
  });

  test('a client the harness killed did not end within anything', () => {
    expect(failure(() => expect(run({ timedOut: true, exitCode: null, signal: 'SIGTERM', durationMs: 900 })).toHaveClientEndedWithin(1000))).toContain(
      'it was killed by the harness after 900 ms',
    );
  });
});

describe('toHaveConnectionsEndedIn', () => {
  test('passes when every connection went away from that state', () => {
    expect(run({ connections: [conn(1, 2292, 'client'), conn(2, 4500, 'client')] })).toHaveConnectionsEndedIn('SYN_SENT');
  });

  test('a failure lists each connection\'s end', () => {
    const r = run({ connections: [conn(1, 2292, 'client'), conn(2, 4500, 'client', { how: 'held', state: 'ESTABLISHED', tMs: 4500 })] });
    const m = failure(() => expect(r).toHaveConnectionsEndedIn('SYN_SENT'));
    expect(m).toContain('expected every connection of the client to end in SYN_SENT, got SYN_SENT, still open in ESTABLISHED');
    expect(m).toContain('2. 198.18.0.2:2 SYN_SENT → still open');
  });

  test('no connection at all is a failure, not a vacuous pass', () => {
    const m = failure(() => expect(run({ connections: [], summary: 'made no connection to the target' })).toHaveConnectionsEndedIn('SYN_SENT'));
    expect(m).toContain('got no connection seen');
    expect(m).toContain('made no connection to the target');
  });
});

describe('toHaveClientEndedBy', () => {
  test('passes when every connection was ended by that party', () => {
    expect(run()).toHaveClientEndedBy('client');
    expect(run({ connections: [conn(1, 7100, 'kernel')] })).toHaveClientEndedBy('kernel');
  });

  test('a failure prints who ended each connection', () => {
    const m = failure(() => expect(run({ connections: [conn(1, 2292, 'client'), conn(2, 7100, 'kernel')] })).toHaveClientEndedBy('kernel'));
    expect(m).toContain('expected every connection of the client to be ended by the kernel, got client, kernel');
  });

  test('the parameter is typed: only client or kernel', () => {
    // @ts-expect-error -- 'nobody' is not an EndedBy; tsc -p tsconfig.check.json proves the augmentation is typed
    expect(failure(() => expect(run()).toHaveClientEndedBy('nobody'))).toContain('ended by the nobody');
  });
});
