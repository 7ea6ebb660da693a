import { describe, expect, it } from 'vitest';
import { evaluate, type Observed } from './checks.js';
import type { Expectation } from '../faults/define.js';

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

  it('fails outside the window, on either side', () => {
    for (const d of [6999, 7201]) {
      const o = observed();
      o.steps[0]!.durationMs = d;
      expect(evaluate(expected, o).verdict).toBe('fail');
    }
  });

  it('fails when a fault did not fire (rule never hit) or a counter is off', () => {
    expect(evaluate(expected, observed({ rulesHit: {} })).verdict).toBe('fail');
    expect(evaluate(expected, observed({ counters: { client: { TcpExtTCPSynRetrans: 4 }, server: {} } })).verdict).toBe('fail');
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
