import { describe, expect, it } from 'vitest';
import { answer, collapseNumbered, evaluate, NO_SUCH_RULE, serverCallCheck, UNKNOWN_COUNTER, type Observed } from './checks.js';
import type { ServerQuestion } from './expectation.js';
import type { StepResult } from './result.js';
import type { Expectation } from '../../faults/define.js';

const observed = (over: Partial<Observed> = {}): Observed => ({
  steps: [{ label: 'connect', op: 'connect', ok: false, errno: 'ETIMEDOUT', startMs: 0, endMs: 7100, durationMs: 7100, tcp: null }],
  states: { client: [{ tMs: 0, state: 'SYN_SENT', local: 'a', remote: 'b' }], server: [] },
  counters: { client: { TcpExtTCPSynRetrans: 5 }, server: {} },
  rulesHit: { 'drop-syn': 6 },
  ...over,
});

const expected: Expectation = {
  steps: { connect: { errno: 'ETIMEDOUT', windowMs: [7000, 7200] } },
  states: { client: ['SYN_SENT'] },
  statesAbsent: { server: ['SYN_RECV'] },
  counters: { client: { TcpExtTCPSynRetrans: 5 } },
  rulesHit: { 'drop-syn': { min: 1 } },
};

describe('evaluate', () => {
  it('passes when everything matches', () => {
    const { verdict, checks } = evaluate(expected, observed());
    expect(checks.map((c) => c.pass)).toEqual(checks.map(() => true));
    expect(verdict).toBe('pass');
  });

  it('fails on a wrong errno, naming expected and actual', () => {
    const o = observed();
    o.steps[0]!.errno = 'ECONNREFUSED';
    const { verdict, checks } = evaluate(expected, o);
    expect(verdict).toBe('fail');
    expect(checks.find((c) => c.name === 'connect errno')).toMatchObject({ expected: 'ETIMEDOUT', actual: 'ECONNREFUSED', pass: false });
  });

  it('fails outside the window, on either side; a late one says by how much (the judge stage weighs it against the lateness)', () => {
    for (const d of [6999, 7201]) {
      const o = observed();
      o.steps[0]!.durationMs = d;
      const r = evaluate(expected, o);
      expect(r.verdict).toBe('fail');
      const c = r.checks.find((x) => x.name === 'connect duration')!;
      expect(c.lateByMs).toBe(d > 7200 ? 1 : undefined);
    }
  });

  it('a late answered connect the kernel stamped in time passes and says the probe woke late; a stamp out of the window fails', () => {
    const tcp = (lastAckRecvMs: number) => ({ state: 'ESTABLISHED', caState: 0, retransmits: 0, totalRetrans: 0, backoff: 0, rtoUs: 204000, rttUs: 50, unacked: 0, lost: 0, probes: 0, lastAckRecvMs });
    const e: Expectation = { steps: { c: { ok: true, windowMs: [0, 5.3] } } };
    const step = (durationMs: number, ago: number, over: Partial<StepResult> = {}): Observed =>
      observed({ steps: [{ label: 'c', op: 'connect', ok: true, errno: null, startMs: 0, endMs: durationMs, durationMs, tcp: tcp(ago), ...over }], jiffyMs: 4 });
    // 17.8 ms in the syscall; the SYN-ACK 16 ms (4 jiffies) before tcp_info was read: at 0..5.8 ms.
    const late = evaluate(e, step(17.8, 16)).checks.find((c) => c.name === 'c duration')!;
    expect(late).toMatchObject({ pass: true, actual: '17.8 ms; the kernel had it at 0.0..5.8 ms and the probe woke up late' });
    expect(late.lateByMs).toBeUndefined();
    // Stamped 4 ms before the end of 17.8 ms: 9.8..17.8, after the window: the kernel was late too.
    expect(evaluate(e, step(17.8, 4)).checks.find((c) => c.name === 'c duration')).toMatchObject({ pass: false, actual: '17.8 ms', lateByMs: 12.5 });
    // No jiffy known (a caller without the clock), or a step the kernel does not stamp: the syscall's time alone.
    expect(evaluate(e, { ...step(17.8, 16), jiffyMs: undefined }).verdict).toBe('fail');
    expect(evaluate(e, step(17.8, 16, { ok: false, errno: 'ECONNREFUSED' })).verdict).toBe('fail');
    // A read that returned data: tcpi_last_data_recv.
    const read = { label: 'c', op: 'read', ok: true, errno: null, startMs: 0, endMs: 17.8, durationMs: 17.8, bytes: 10, tcp: { ...tcp(0), lastDataRecvMs: 16 } };
    expect(evaluate(e, observed({ steps: [read], jiffyMs: 4 })).verdict).toBe('pass');
    expect(evaluate(e, observed({ steps: [{ ...read, bytes: 0 }], jiffyMs: 4 })).verdict).toBe('fail');
    // fromStep: the stamp counts from the earlier step's start (a request written 2 ms before the read began).
    const req = { label: 'req', op: 'write', ok: true, errno: null, startMs: -2, endMs: -1.9, durationMs: 0.1, tcp: null };
    const from: Expectation = { steps: { c: { windowMs: [0, 7.3], fromStep: 'req' } } };
    const c = evaluate(from, observed({ steps: [req, read], jiffyMs: 4 })).checks[0]!;
    expect(c).toMatchObject({ name: 'c ends after req starts', pass: true, actual: '19.8 ms; the kernel had it at 2.0..7.8 ms and the probe woke up late' });
    expect(evaluate({ steps: { c: { windowMs: [0, 1.9], fromStep: 'req' } } }, observed({ steps: [req, read], jiffyMs: 4 })).checks[0]).toMatchObject({ pass: false, lateByMs: 17.9 });
  });

  it('fromStep: the window spans from that step\'s start to this one\'s end (a request written in two steps, then its reply)', () => {
    const steps = [
      { label: 'req', op: 'write', ok: true, errno: null, startMs: 10, endMs: 10.01, durationMs: 0.01, tcp: null },
      { op: 'write', ok: true, errno: null, startMs: 10.02, endMs: 10.03, durationMs: 0.01, tcp: null },
      { label: 'reply', op: 'read', ok: true, errno: null, startMs: 10.04, endMs: 50.05, durationMs: 40.01, tcp: null },
    ];
    const e = (lo: number, fromStep = 'req'): Expectation => ({ steps: { reply: { windowMs: [lo, 44], fromStep } } });
    const ok = evaluate(e(40.04), observed({ steps }));
    expect(ok.checks).toEqual([{ name: 'reply ends after req starts', expected: '40.0..44.0 ms', actual: '40.0 ms', pass: true }]);
    // 40.05 ms from the request's start: more than the read's own 40.01 ms, so a bound the read alone would miss.
    expect(evaluate(e(40.02), observed({ steps })).verdict).toBe('pass');
    expect(evaluate(e(40.06), observed({ steps })).verdict).toBe('fail');
    expect(evaluate(e(0, 'nope'), observed({ steps })).checks[0]).toMatchObject({ actual: 'no step nope', pass: false });
  });

  it('fails when a fault did not fire (rule never hit) or a counter is off', () => {
    expect(evaluate(expected, observed({ rulesHit: {} })).verdict).toBe('fail');
    expect(evaluate(expected, observed({ counters: { client: { TcpExtTCPSynRetrans: 4 }, server: {} } })).verdict).toBe('fail');
  });

  it('a counter expected to stay 0 passes at 0, and fails when its name is misspelled (never read as 0)', () => {
    const o = observed({ counters: { client: { TcpExtTCPSynRetrans: 5, TcpExtTCPAbortOnTimeout: 0 }, server: {} } });
    const ok = evaluate({ ...expected, counters: { client: { TcpExtTCPSynRetrans: 5, TcpExtTCPAbortOnTimeout: 0 } } }, o);
    expect(ok.verdict).toBe('pass');
    const typo = evaluate({ ...expected, counters: { client: { TcpExtTCPSynRetrans: 5, TcpExtTCPAbortOnTimeuot: 0 } } }, o);
    expect(typo.verdict).toBe('fail');
    expect(typo.checks.find((c) => c.name === 'client TcpExtTCPAbortOnTimeuot')).toEqual({
      name: 'client TcpExtTCPAbortOnTimeuot',
      expected: 0,
      actual: UNKNOWN_COUNTER,
      pass: false,
    });
    // A range that admits 0 does not rescue a misspelled name either.
    expect(evaluate({ ...expected, counters: { server: { TcpOutRst: { max: 3 } } } }, o).checks.find((c) => c.name === 'server TcpOutRst')).toMatchObject({ actual: UNKNOWN_COUNTER, pass: false });
  });

  it('a rule the run never installed is "no such rule"; an installed rule that saw nothing is 0', () => {
    const typo = evaluate({ ...expected, rulesHit: { 'drop-sin': { max: 0 } } }, observed());
    expect(typo.verdict).toBe('fail');
    expect(typo.checks.find((c) => c.name === 'rule drop-sin hit')).toMatchObject({ actual: NO_SUCH_RULE, pass: false });
    expect(evaluate({ ...expected, rulesHit: { 'drop-syn': 0 } }, observed({ rulesHit: { 'drop-syn': 0 } })).verdict).toBe('pass');
    expect(evaluate(expected, observed({ rulesHit: { 'drop-syn': 0 } })).checks.find((c) => c.name === 'rule drop-syn hit')).toMatchObject({ actual: 0, pass: false });
  });

  it('fails when a missing step or a forbidden state shows up', () => {
    expect(evaluate(expected, observed({ steps: [] })).verdict).toBe('fail');
    const o = observed();
    o.states.server.push({ tMs: 1, state: 'SYN_RECV', local: 'b', remote: 'a' });
    expect(evaluate(expected, o).verdict).toBe('fail');
  });

  it('never passes with nothing checked', () => {
    expect(evaluate({ steps: {} }, observed()).verdict).toBe('fail');
  });
});

describe('state spans', async () => {
  const { spanChecks, stateSpans } = await import('./checks.js');
  const s = (tMs: number, state: string, local = 'c:1', retrans = 0) => ({ tMs, state, local, remote: 's:9000', retrans });
  const finWait1 = [s(1, 'FIN_WAIT1'), s(400, 'FIN_WAIT1', 'c:1', 1), s(800, 'FIN_WAIT1', 'c:1', 2), s(3300, 'GONE', 'c:1', 2)];

  it('measures each socket from its first sample in the state to its first sample out of it', () => {
    expect(stateSpans(finWait1, 'FIN_WAIT1')).toEqual([{ local: 'c:1', remote: 's:9000', enteredMs: 1, then: 'GONE', lastsMs: 3299, retrans: 2 }]);
  });

  it('passes a span that matches, and names what differs otherwise', () => {
    const ok = spanChecks({ side: 'client', state: 'FIN_WAIT1', sockets: 1, then: 'GONE', lastsMs: [3200, 3400], retrans: 2 }, finWait1);
    expect(ok.every((c) => c.pass)).toBe(true);
    const late = spanChecks({ side: 'client', state: 'FIN_WAIT1', then: 'GONE', lastsMs: [3000, 3200] }, finWait1);
    expect(late.find((c) => c.name === 'client FIN_WAIT1 lasts')).toMatchObject({ pass: false, actual: '3299 ms', lateByMs: 99 });
    // Early is not late: no lateByMs for the judge to weigh.
    expect(spanChecks({ side: 'client', state: 'FIN_WAIT1', lastsMs: [3300, 3400] }, finWait1).find((c) => c.name === 'client FIN_WAIT1 lasts')!.lateByMs).toBeUndefined();
    const retrans = spanChecks({ side: 'client', state: 'FIN_WAIT1', retrans: 3 }, finWait1);
    expect(retrans.find((c) => c.name === 'client FIN_WAIT1 retransmits')).toMatchObject({ pass: false, actual: '2' });
  });

  it('calls a socket that never left "held", and a held socket fails a duration', () => {
    const tw = [s(1, 'FIN_WAIT1', 'c:1'), s(2, 'TIME_WAIT', 'c:1'), s(3, 'TIME_WAIT', 'c:2')];
    expect(spanChecks({ side: 'client', state: 'TIME_WAIT', sockets: 2, then: 'held' }, tw).every((c) => c.pass)).toBe(true);
    expect(spanChecks({ side: 'client', state: 'TIME_WAIT', sockets: 3 }, tw)[0]!.pass).toBe(false);
    expect(spanChecks({ side: 'client', state: 'TIME_WAIT', lastsMs: [0, 10] }, tw).at(-1)!.pass).toBe(false);
    expect(spanChecks({ side: 'client', state: 'TIME_WAIT', then: 'GONE' }, tw).at(-1)).toMatchObject({ pass: false, actual: 'held' });
  });

  it('fails every check when no socket entered the state', () => {
    const none = spanChecks({ side: 'server', state: 'LAST_ACK', then: 'GONE', lastsMs: [0, 1], retrans: 0 }, finWait1);
    expect(none.map((c) => c.pass)).toEqual([false, false, false, false]);
  });

  it('checks the RTO of a step', () => {
    const o = observed();
    o.steps[0]!.tcp = { state: 'ESTABLISHED', caState: 0, retransmits: 0, totalRetrans: 0, backoff: 0, rtoUs: 204000, rttUs: 40, unacked: 0, lost: 0, probes: 0 };
    expect(evaluate({ steps: { connect: { rtoUs: 204000 } } }, o).verdict).toBe('pass');
    expect(evaluate({ steps: { connect: { rtoUs: 200000 } } }, o).verdict).toBe('fail');
    // Ranges: the RTO and the smoothed RTT of a delayed path are known to a window.
    expect(evaluate({ steps: { connect: { rtoUs: [200000, 208000], rttUs: [1, 100] } } }, o).verdict).toBe('pass');
    const off = evaluate({ steps: { connect: { rttUs: [100, 200] } } }, o).checks[0]!;
    expect(off).toEqual({ name: 'connect tcp rtt (us)', expected: '100..200', actual: 40, pass: false });
  });
});

describe('stateLeft and listen checks (handshake faults)', () => {
  const smp = (tMs: number, state: string, remote = 'c:1', rq = 0, wq = 0) => ({ tMs, state, local: 's:9000', remote, rq, wq });
  const base = (server: ReturnType<typeof smp>[]): Observed => ({
    steps: [{ label: 'write', op: 'write', ok: true, errno: null, startMs: 1000, endMs: 1000.1, durationMs: 0.1, tcp: null }],
    states: { client: [], server },
    counters: { client: {}, server: {} },
    rulesHit: {},
  });

  it('times when the first socket left a state, from t = 0 or from a step', () => {
    const o = base([smp(0.1, 'SYN_RECV'), smp(7200, 'GONE')]);
    expect(evaluate({ steps: {}, stateLeft: [{ side: 'server', state: 'SYN_RECV', to: 'GONE', windowMs: [7000, 7333] }] }, o).verdict).toBe('pass');
    expect(evaluate({ steps: {}, stateLeft: [{ side: 'server', state: 'SYN_RECV', to: 'GONE', windowMs: [7300, 7333] }] }, o).verdict).toBe('fail');
    expect(evaluate({ steps: {}, stateLeft: [{ side: 'server', state: 'SYN_RECV', to: 'ESTABLISHED', windowMs: [0, 1e9] }] }, o).verdict).toBe('fail');
    const fromWrite = base([smp(0.1, 'SYN_RECV'), smp(1003, 'ESTABLISHED')]);
    const e = { steps: {}, stateLeft: [{ side: 'server' as const, state: 'SYN_RECV', to: 'ESTABLISHED', fromStep: 'write', windowMs: [0, 10] as [number, number] }] };
    expect(evaluate(e, fromWrite).checks[0]).toMatchObject({ pass: true, actual: 'ESTABLISHED at 3.0 ms' });
  });

  it('fails when the state was never seen, never left, or the step is missing', () => {
    const e = (fromStep?: string) => ({ steps: {}, stateLeft: [{ side: 'server' as const, state: 'SYN_RECV', windowMs: [0, 1e9] as [number, number], ...(fromStep ? { fromStep } : {}) }] });
    expect(evaluate(e(), base([])).checks[0]).toMatchObject({ pass: false, actual: 'never SYN_RECV' });
    expect(evaluate(e(), base([smp(1, 'SYN_RECV')])).checks[0]).toMatchObject({ pass: false, actual: 'still SYN_RECV at the end' });
    expect(evaluate(e('nope'), base([smp(1, 'SYN_RECV'), smp(2, 'GONE')])).checks[0]).toMatchObject({ pass: false });
  });

  it("checks the listener's most-seen accept queue and its backlog", () => {
    const o = base([smp(-5, 'LISTEN', '*', 0, 1), smp(3, 'LISTEN', '*', 2, 1), smp(9, 'LISTEN', '*', 1, 1)]);
    expect(evaluate({ steps: {}, listen: { server: { rqMax: 2, wq: 1 } } }, o).verdict).toBe('pass');
    expect(evaluate({ steps: {}, listen: { server: { rqMax: 1 } } }, o).verdict).toBe('fail');
    expect(evaluate({ steps: {}, listen: { server: { wq: 2 } } }, o).verdict).toBe('fail');
    expect(evaluate({ steps: {}, listen: { server: { rqMax: 0 } } }, base([])).verdict).toBe('fail');
  });
});

describe('numbered steps that agree are one check', () => {
  const c = (name: string, expected: unknown, actual: unknown, pass = true) => ({ name, expected, actual, pass });
  const steps = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => [c(`connect-${from + i} ok`, true, true), c(`connect-${from + i} duration`, '0.0..1000.0 ms', `${(0.1 * (i + 1)).toFixed(1)} ms`)]).flat();

  it('collapses each check of a run of steps, durations as their range', () => {
    const out = collapseNumbered(steps(4));
    expect(out).toEqual([
      c('connect-0..3 ok (4 steps)', true, true),
      c('connect-0..3 duration (4 steps)', '0.0..1000.0 ms', '0.1..0.4 ms'),
    ]);
  });

  it('a failing step stands alone and splits the run: nothing is hidden', () => {
    const checks = steps(6);
    checks[6] = c('connect-3 ok', true, false, false);
    const out = collapseNumbered(checks);
    expect(out.filter((x) => !x.pass)).toEqual([c('connect-3 ok', true, false, false)]);
    expect(out.map((x) => x.name)).toContain('connect-0..2 ok (3 steps)');
    expect(out.length).toBeGreaterThan(2);
  });

  it('leaves short runs and unnumbered checks as they are', () => {
    const two = steps(2);
    expect(collapseNumbered(two)).toEqual(two);
    const other = [c('connect errno', null, null), c('client visits SYN_SENT', 'SYN_SENT', 'SYN_SENT')];
    expect(collapseNumbered(other)).toEqual(other);
  });
});

describe('questions asked of the server', () => {
  const q: ServerQuestion = { question: 'does it close?', side: 'server', holding: ['ESTABLISHED', 'CLOSE_WAIT'], fromStep: 'end', fromWhat: "the client's close", expect: 'leaves', leaves: 'closed', holds: 'leaked' };
  const step = (label: string, startMs: number): StepResult => ({ label, op: 'close', ok: true, errno: null, startMs, endMs: startMs, durationMs: 0 });
  const sample = (tMs: number, state: string, local = '198.18.0.1:9000') => ({ tMs, state, local, remote: '198.18.0.2:40000' });
  const observed = (server: ReturnType<typeof sample>[], watchLagMs = 13): Observed => ({
    steps: [step('end', 100)],
    states: { client: [], server: [sample(-5, 'LISTEN', '0.0.0.0:9000'), ...server] },
    counters: { client: {}, server: {} },
    rulesHit: {},
    watchLagMs,
  });
  const byLabel = new Map([['end', step('end', 100)]]);

  it('left its holding states after the step: closed, with the time', () => {
    expect(answer(q, observed([sample(1, 'ESTABLISHED'), sample(103.2, 'LAST_ACK'), sample(104, 'GONE')]), byLabel)).toEqual({
      question: 'does it close?',
      answer: "closed: 3.2 ms after the client's close (then LAST_ACK)",
      outcome: 'leaves',
      afterMs: 3.2,
    });
  });

  it('held CLOSE_WAIT to the end: a leak', () => {
    const a = answer(q, observed([sample(1, 'ESTABLISHED'), sample(102, 'CLOSE_WAIT')]), byLabel);
    expect(a.outcome).toBe('holds');
    expect(a.answer).toBe("leaked: CLOSE_WAIT until the end, 2 ms after the client's close");
  });

  it('closed before the client did (never seen holding), or stamped within a poll of the step', () => {
    expect(answer(q, observed([sample(50, 'FIN_WAIT1'), sample(96, 'GONE')]), byLabel).answer).toBe("closed: 50.0 ms before the client's close (then FIN_WAIT1)");
    expect(answer(q, observed([sample(1, 'ESTABLISHED'), sample(99.5, 'GONE')]), byLabel).answer).toBe("closed: within 13 ms of the client's close (then GONE)");
  });

  it('no connection on that side: unanswered, and the check fails', () => {
    const { checks, answers } = evaluate({ steps: {}, asks: [q] }, observed([]));
    expect(answers[0]!.outcome).toBe('unseen');
    expect(checks).toEqual([{ name: 'server: does it close?', expected: 'closed', actual: 'unanswered: no connection seen on the server side', pass: false }]);
  });
});

describe('the built-in server\'s own syscalls', () => {
  const call = (op: string, ok: boolean, errno: string | null, startMs: number, eof = false): StepResult => ({ op, ok, errno, startMs, endMs: startMs, durationMs: 0, ...(eof ? { eof } : {}) });
  const calls = [call('accept', true, null, 0), call('read', false, 'ECONNRESET', 50.9)];

  it('a syscall made, or never made; nothing checked where the target does not report them', () => {
    expect(serverCallCheck({ op: 'read', errno: 'ECONNRESET' }, calls)).toEqual({ name: 'server made read → ECONNRESET', expected: 'read → ECONNRESET', actual: 'read → ECONNRESET at 50.9 ms', pass: true });
    expect(serverCallCheck({ op: 'read', eof: true }, calls)).toMatchObject({ actual: 'read: ECONNRESET', pass: false });
    expect(serverCallCheck({ op: 'close', absent: true }, calls)).toEqual({ name: 'server never made close', expected: 'no close', actual: 'no close', pass: true });
    const base: Observed = { steps: [], states: { client: [], server: [] }, counters: { client: {}, server: {} }, rulesHit: {} };
    expect(evaluate({ steps: {}, serverCalls: [{ op: 'read', errno: 'ECONNRESET' }] }, base).checks).toEqual([]);
    expect(evaluate({ steps: {}, serverCalls: [{ op: 'read', errno: 'ECONNRESET' }] }, { ...base, serverSteps: calls }).checks.map((c) => c.pass)).toEqual([true]);
  });
});
