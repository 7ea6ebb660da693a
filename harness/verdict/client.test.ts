import { describe, expect, test } from 'vitest';
import { clientChecks, connectionsOf, explainConnection, summarize } from './client.js';
import type { ConnectionPrediction } from './expectation.js';
import type { StateSample } from './result.js';

const T = '198.18.0.1:9000';
const sample = (tMs: number, state: string, local = '198.18.0.2:40000', retrans = 0): StateSample => ({ tMs, state, local, remote: T, retrans });

const synDrop: ConnectionPrediction = { state: 'SYN_SENT', from: 'enter', endsMs: [7000, 7200], errno: 'ETIMEDOUT', then: 'GONE', retrans: 5, because: 'syn schedule' };
const lag = { lagMs: 13 };

describe('connectionsOf', () => {
  test('groups samples per connection to the target, with state history, retransmissions and end', () => {
    const cs = connectionsOf(
      [
        sample(10, 'SYN_SENT'),
        sample(1010, 'SYN_SENT', undefined, 1),
        { tMs: 500, state: 'ESTABLISHED', local: '198.18.0.2:1', remote: '10.0.0.1:80' },
        sample(2010, 'GONE'),
        sample(3000, 'SYN_SENT', '198.18.0.2:40001'),
      ],
      T,
    );
    expect(cs).toHaveLength(2);
    expect(cs[0]).toMatchObject({ local: '198.18.0.2:40000', states: [{ state: 'SYN_SENT', tMs: 10 }], retrans: 1, end: { how: 'gone', state: 'SYN_SENT', tMs: 2010 } });
    expect(cs[1]).toMatchObject({ end: { how: 'held', state: 'SYN_SENT', tMs: 3000 } });
  });
});

describe('explainConnection', () => {
  const conn = (endMs: number, retrans: number, then = 'GONE') => connectionsOf([sample(100, 'SYN_SENT', undefined, retrans), sample(100 + endMs, then)], T)[0]!;

  test("ended before the kernel's window: the client's own timeout", () => {
    const e = explainConnection(conn(2000, 1), synDrop, lag);
    // The kernel's window on the client's clock, from when the connection entered SYN_SENT (100 ms).
    expect(e).toMatchObject({ endedBy: 'client', pass: true, windowMs: [7100, 7300] });
    expect(e.line).toBe("gave up after 2.0 s in SYN_SENT with 1 retransmission: the client's own timeout — the kernel would have given up at 7.0 s–7.2 s");
  });

  test("inside the window: the kernel's full schedule; later than it: a failure", () => {
    expect(explainConnection(conn(7100, 5), synDrop, lag)).toMatchObject({ endedBy: 'kernel', pass: true });
    expect(explainConnection(conn(7300, 5), synDrop, lag)).toMatchObject({ endedBy: 'other', pass: false, problem: 'ended later than the kernel would' });
  });

  test('more retransmissions than the kernel makes, or another end state, fail', () => {
    expect(explainConnection(conn(7100, 6), synDrop, lag)).toMatchObject({ pass: false });
    expect(explainConnection(conn(7100, 5, 'ESTABLISHED'), synDrop, lag)).toMatchObject({ pass: false, problem: 'ended as ESTABLISHED, the kernel ends it as GONE' });
  });

  test('held past the window fails; held inside it is fine', () => {
    const held = (ms: number) => connectionsOf([sample(100, 'SYN_SENT'), sample(100 + ms, 'SYN_SENT')], T)[0]!;
    expect(explainConnection(held(3000), synDrop, lag)).toMatchObject({ endedBy: 'held', pass: true });
    expect(explainConnection(held(9000), synDrop, lag)).toMatchObject({ pass: false });
  });

  test('mid-connection faults measure from the strike; a connection over before it is not judged', () => {
    const crash: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [0, 8], because: 'crash' };
    const c = connectionsOf([sample(100, 'ESTABLISHED'), sample(506, 'GONE')], T)[0]!;
    expect(explainConnection(c, crash, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'kernel', pass: true });
    expect(explainConnection(c, crash, { lagMs: 5, strikeMs: 200 })).toMatchObject({ endedBy: 'other', pass: false });
    // A strike that took 60 ms to fire (docker kill) may take hold anywhere in those 60 ms.
    const slow = connectionsOf([sample(100, 'ESTABLISHED'), sample(555, 'CLOSE_WAIT')], T)[0]!;
    expect(explainConnection(slow, crash, { lagMs: 5, strikeMs: 500 })).toMatchObject({ pass: false });
    expect(explainConnection(slow, crash, { lagMs: 5, strikeMs: 500, strikeSpanMs: 60 })).toMatchObject({ endedBy: 'kernel', pass: true, windowMs: [500, 568] });
    const before = connectionsOf([sample(100, 'SYN_SENT'), sample(150, 'GONE')], T)[0]!;
    expect(explainConnection(before, crash, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'before-fault', pass: true });
  });

  test("a close by the client (ESTABLISHED → FIN_WAIT1) is the client's doing, within the kernel's window only", () => {
    // reject once established: the connection dies at its next write; a FIN is that write.
    const reject: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [0, Infinity], errno: 'ECONNRESET', then: 'GONE', because: 'rst' };
    const closed = connectionsOf([sample(100, 'ESTABLISHED'), sample(700, 'FIN_WAIT1'), sample(701, 'GONE')], T)[0]!;
    expect(explainConnection(closed, reject, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'client', pass: true, line: expect.stringMatching(/^closed by the client 200 ms after the strike \(FIN_WAIT1, 0 retransmissions\), within the kernel's 0 ms or later$/) });
    // A crashed host: the client's close (its FIN retransmitted) comes long before tcp_retries2 would end it.
    const crashed: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [6600, Infinity], errno: 'ETIMEDOUT', then: 'GONE', because: 'retries2' };
    const fin = connectionsOf([sample(100, 'ESTABLISHED'), sample(700, 'FIN_WAIT1', undefined, 3), sample(900, 'FIN_WAIT1', undefined, 3)], T)[0]!;
    expect(explainConnection(fin, crashed, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'client', pass: true, line: 'closed by the client 200 ms after the strike (FIN_WAIT1, 3 retransmissions), before the kernel would have ended it at 6.6 s or later' });
    // The window on the client's clock, from the strike; no end the kernel sets is null (JSON has no Infinity).
    expect(explainConnection(closed, reject, { lagMs: 5, strikeMs: 500 }).windowMs).toEqual([500, null]);
    // A close later than the kernel's end: the kernel did not end it when it should have.
    const crash: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [0, 8], then: 'GONE', because: 'crash' };
    expect(explainConnection(closed, crash, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'other', pass: false });
  });

  test("a connection opened after the strike is explained against what the fault left (a crashed host drops its SYNs)", () => {
    const crash: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [0, Infinity], because: 'crash', afterStrike: { state: 'SYN_SENT', endsMs: [7000, 7200], errno: 'ETIMEDOUT', then: 'GONE', retrans: 5, because: 'syn schedule' } };
    const reconnect = (endMs: number, retrans: number) => connectionsOf([sample(600, 'SYN_SENT', '198.18.0.2:40001', retrans), sample(600 + endMs, 'GONE', '198.18.0.2:40001', retrans)], T)[0]!;
    // The client's own 3 s timeout: earlier than the SYN schedule.
    expect(explainConnection(reconnect(3000, 2), crash, { lagMs: 5, strikeMs: 300 })).toMatchObject({ endedBy: 'client', pass: true, line: expect.stringMatching(/^opened after the strike: gave up after 3.0 s in SYN_SENT/) });
    // A narrow window prints with another digit, not as 7.1 s–7.1 s.
    const narrow = { ...crash, afterStrike: { ...crash.afterStrike!, endsMs: [7080, 7130] as [number, number] } };
    expect(explainConnection(reconnect(3000, 2), narrow, { lagMs: 5, strikeMs: 300 }).line).toMatch(/would have given up at 7\.08 s–7\.13 s$/);
    // The whole SYN schedule: the kernel's end; past it, or more SYNs than it sends: a failure.
    expect(explainConnection(reconnect(7100, 5), crash, { lagMs: 5, strikeMs: 300 })).toMatchObject({ endedBy: 'kernel', pass: true });
    expect(explainConnection(reconnect(7100, 6), crash, { lagMs: 5, strikeMs: 300 })).toMatchObject({ pass: false });
    // Without a prediction for it, a connect after the strike is never in ESTABLISHED: a failure.
    const { afterStrike: _a, ...plain } = crash;
    expect(explainConnection(reconnect(3000, 2), plain, { lagMs: 5, strikeMs: 300 })).toMatchObject({ pass: false });
  });

  test('a connection seen only as the kernel freed it (CLOSE, GONE between two polls)', () => {
    const freed = (t: number) => connectionsOf([sample(t, 'CLOSE'), sample(t, 'GONE')], T)[0]!;
    const crash: ConnectionPrediction = { state: 'ESTABLISHED', from: 'strike', endsMs: [0, 8], because: 'crash' };
    // No strike yet (a request over before it): over before the fault struck.
    expect(explainConnection(freed(40), crash, { lagMs: 5 })).toMatchObject({ endedBy: 'before-fault', pass: true, line: 'opened and closed between two polls (seen only as the kernel freed it, 40 ms in), before the fault struck' });
    // After the strike: too brief for the fault to hold, not a contradiction of the model.
    expect(explainConnection(freed(900), crash, { lagMs: 5, strikeMs: 500 })).toMatchObject({ endedBy: 'brief', pass: true });
    // A refused connect is over at once: what the kernel does.
    const refused: ConnectionPrediction = { state: 'SYN_SENT', from: 'enter', endsMs: [0, 1], fleeting: true, because: 'rst' };
    expect(explainConnection(freed(3), refused, lag)).toMatchObject({ endedBy: 'kernel', pass: true, line: expect.stringMatching(/^refused at once: /) });
    // CLOSE followed by more states is not a freed-only connection.
    const more = connectionsOf([sample(3, 'CLOSE'), sample(4, 'SYN_SENT')], T)[0]!;
    expect(explainConnection(more, synDrop, lag)).toMatchObject({ pass: true, endedBy: 'held' });
    expect(summarize([explainConnection(freed(40), crash, { lagMs: 5 }), explainConnection(freed(900), crash, { lagMs: 5, strikeMs: 500 })])).toBe(
      'made 2 connections, 1 over before the fault struck, 1 opened and closed between two polls',
    );
  });
});

describe('clientChecks and summarize', () => {
  const outcome = { exitCode: 1, signal: null, durationMs: 2100, timedOut: false };

  test("the fault's rules must have fired, by name: an unknown rule is not read as 0", () => {
    const checks = clientChecks([], { 'drop-syn': 2 }, ['drop-syn', 'drop-sin'], outcome, {});
    expect(checks.find((c) => c.name.startsWith('rule drop-syn'))?.pass).toBe(true);
    expect(checks.find((c) => c.name.startsWith('rule drop-sin'))).toMatchObject({ pass: false, actual: 'no such rule' });
    expect(checks.find((c) => c.name === 'client connected to the target')).toMatchObject({ pass: false, actual: 0 });
  });

  test('--expect-exit and --expect-within', () => {
    const c = (exp: Parameters<typeof clientChecks>[4]) => clientChecks([], {}, [], outcome, exp, { prediction: { fleeting: true } });
    expect(c({ exit: 'nonzero' }).find((x) => x.name.startsWith('client exit'))?.pass).toBe(true);
    expect(c({ exit: 0 }).find((x) => x.name.startsWith('client exit'))?.pass).toBe(false);
    expect(c({ withinMs: 2000 }).find((x) => x.name.startsWith('client ended within'))?.pass).toBe(false);
    expect(c({ withinMs: 2500 }).find((x) => x.name.startsWith('client ended within'))?.pass).toBe(true);
    // A refused connect is too short for the watcher: no "connected" check, the rule hits prove it.
    expect(c({}).some((x) => x.name === 'client connected to the target')).toBe(false);
  });

  test('a mid-connection fault that never struck fails the run: it proved nothing about the client', () => {
    const planned = 'when a connection of the client is ESTABLISHED (+100 ms)';
    const never = clientChecks([], {}, [], { ...outcome, exitCode: 0, durationMs: 40 }, {}, { strike: { planned } });
    expect(never.find((x) => x.name.startsWith('the fault struck'))).toMatchObject({ pass: false, expected: planned, actual: expect.stringMatching(/^never: the client was done after 40 ms/) });
    // A client the harness stopped (its timeout) before the strike: said so, with the other fix.
    const stopped = clientChecks([], {}, [], { ...outcome, exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 9000 }, {}, { strike: { planned } });
    expect(stopped.find((x) => x.name.startsWith('the fault struck'))).toMatchObject({ pass: false, actual: expect.stringMatching(/^never: the harness stopped the client after 9\.0 s, before the strike came \(strike sooner/) });
    const struck = clientChecks([], {}, [], outcome, {}, { strike: { planned, struck: { atMs: 612, why: 'the connection was ESTABLISHED (+100 ms)' } } });
    expect(struck.find((x) => x.name.startsWith('the fault struck'))).toMatchObject({ pass: true, actual: '612 ms in: the connection was ESTABLISHED (+100 ms)' });
    // Faults that hold from the start (syn-drop, reject at connect) have no strike: no such check.
    expect(clientChecks([], {}, [], outcome, {}).some((x) => x.name.startsWith('the fault struck'))).toBe(false);
  });

  test('a client retried: the summary says so', () => {
    const a = explainConnection(connectionsOf([sample(0, 'SYN_SENT'), sample(7100, 'GONE')], T)[0]!, synDrop, lag);
    expect(summarize([a, a])).toBe('made 2 connections, 2 ended by the kernel as it predicts');
    expect(summarize([], 3)).toMatch(/^made 3 connection attempts, each ended by the kernel at once/);
  });
});
