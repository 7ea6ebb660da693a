import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { loss } from './loss.js';
import { faultContext } from './context.js';
import { wakeupSlackMs } from '../harness/model/tcp.js';

const wake = wakeupSlackMs({ hz: 250 });
const ctx = (params: Record<string, unknown> = {}, client: Record<string, string> = {}) => faultContext(loss, { params, sysctls: { client, server: {} } });

describe('loss', () => {
  it('drops every 3rd data segment to the server (longer than any bare ACK), in the target namespace', () => {
    const c = ctx();
    const argv = planRules('abc123', loss.plan(c).rules!).map((s) => [s.side, ...s.apply]);
    expect(argv).toContainEqual([
      'server', 'iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '-s', '198.18.0.2', '--dport', '9000',
      '-m', 'length', '--length', '81:65535', '-m', 'statistic', '--mode', 'nth', '--every', '3', '--packet', '2',
      '-m', 'comment', '--comment', 'harness:abc123:loss-to-server', '-j', 'DROP',
    ]);
    expect(loss.mechanisms!(c.params)).toEqual(['iptables-statistic', 'iptables-length']);
  });
  it('every 3rd, 6 requests: rounds 3 and 5 wait for the loss probe (~204 ms); two probes, two hits', () => {
    const e = loss.expect(ctx());
    expect(e.steps['round-1']!.windowMs).toEqual([0, 2 * wake]);
    expect(e.steps['round-3']!.windowMs).toEqual([200, 208 + 2 * wake]);
    expect(e.counters).toEqual({ client: { TcpRetransSegs: 2, TcpExtTCPLossProbes: 2, TcpExtTCPTimeouts: 0 }, server: { TcpRetransSegs: 0 } });
    expect(e.rulesHit).toEqual({ 'loss-to-server': 2 });
    expect(e.same!.map((x) => x.name)).toEqual(['client retransmits each loss once', 'client loss probes + RTOs = losses']);
    expect(loss.script(ctx(), e).filter((s) => s.op === 'connect')).toHaveLength(6);
  });
  it('to-client: the answers are lost; the server retransmits each', () => {
    const c = ctx({ direction: 'to-client' });
    expect(loss.plan(c).rules![0]).toMatchObject({ name: 'loss-to-client', side: 'client', src: '198.18.0.1', tcp: { sport: 9000 } });
    const e = loss.expect(c);
    expect(e.counters!.server).toEqual({ TcpRetransSegs: 2 });
    expect(e.same).toEqual([{ name: 'server retransmits each loss once', left: [{ side: 'server', counter: 'TcpRetransSegs' }], right: [{ rule: 'loss-to-client' }] }]);
  });
  it('random: bounds the losses and checks what must follow from the ones seen', () => {
    const c = ctx({ probability: '0.3', rounds: '20' });
    expect(loss.plan(c).rules![0]).toMatchObject({ probability: 0.3 });
    const e = loss.expect(c);
    expect(e.rulesHit!['loss-to-server']).toEqual({ min: 0, max: expect.any(Number) });
    expect(e.same).toHaveLength(2);
  });
  it('refuses bad probabilities, counts and sizes, naming the parameter', () => {
    const path = (raw: Record<string, unknown>) => loss.params.safeParse(raw).error?.issues[0]?.path.join('.');
    expect(path({ probability: '2' })).toBe('probability');
    expect(path({ probability: '0' })).toBe('probability');
    expect(path({ probability: '1' })).toBe('probability');
    expect(path({ probability: 'often' })).toBe('probability');
    expect(path({ every: '1' })).toBe('every');
    expect(path({ every: '3', probability: '0.1' })).toBe('probability');
    expect(path({ bytes: '20' })).toBe('bytes'); // a 20-byte segment is no longer than a bare ACK
    expect(path({ rounds: '0' })).toBe('rounds');
  });
});
