import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { synDrop } from './syn-drop.js';
import { faultContext } from './context.js';
import { modelTimeoutMs, SYN_SYSCTLS, TCP_RTO_MAX_MS, TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';

const clock = { hz: 250 };
const ctx = (client: Record<string, string>, params: Record<string, unknown> = {}) => faultContext(synDrop, { params, sysctls: { client, server: {} } });
/** Linux >= 6.7 with its default 4 linear timeouts, and a kernel before them. */
const linear = (retries: number) => ({ 'net.ipv4.tcp_syn_retries': String(retries), 'net.ipv4.tcp_syn_linear_timeouts': '4', 'net.ipv4.tcp_rto_max_ms': '120000' });
const classic = (retries: number) => ({ 'net.ipv4.tcp_syn_retries': String(retries), 'net.ipv4.tcp_syn_linear_timeouts': '0', 'net.ipv4.tcp_rto_max_ms': '120000' });

/** What a schedule of SYN timer intervals (ms, from the first SYN) must give, per the timer helpers. */
function expectSchedule(c: ReturnType<typeof ctx>, intervals: number[]) {
  const retransmits = intervals.length - 1;
  const [lo, hi] = chainWindowMs(intervals, clock);
  const window: [number, number] = [lo, hi + wakeupSlackMs(clock)];
  const e = synDrop.expect(c);
  expect(e.steps.connect).toEqual({ ok: false, errno: 'ETIMEDOUT', windowMs: window, tcpState: 'CLOSE', totalRetrans: retransmits });
  expect(e.counters).toEqual({ client: { TcpExtTCPSynRetrans: retransmits, TcpExtTCPAbortOnTimeout: 1 } });
  // The first SYN and every retransmission meet the rule.
  expect(e.rulesHit).toEqual({ 'drop-syn': 1 + retransmits });
  // connect() waits past the window's end, plus one second.
  const script = synDrop.script(c, e);
  expect(script.at(-1)).toEqual({ op: 'connect', label: 'connect', timeoutMs: Math.ceil(window[1]) + 1000 });
  return { e, script };
}

const INIT = TCP_TIMEOUT_INIT_MS;

describe('syn-drop', () => {
  it('drops every inbound SYN to the port, in the server namespace, in a chain the run owns', () => {
    const steps = planRules('abc123', synDrop.plan(ctx({})).rules ?? []);
    expect(steps.every((s) => s.side === 'server')).toBe(true);
    expect(steps.map((s) => s.apply)).toEqual([
      ['iptables', '-w', '5', '-N', 'harness-abc123-in'],
      ['iptables', '-w', '5', '-A', 'harness-abc123-in', '-p', 'tcp', '--dport', '9000', '--syn', '-m', 'comment', '--comment', 'harness:abc123:drop-syn', '-j', 'DROP'],
      ['iptables', '-w', '5', '-I', 'INPUT', '1', '-m', 'comment', '--comment', 'harness:abc123', '-j', 'harness-abc123-in'],
    ]);
    expect(synDrop.triggers).toBeUndefined();
  });

  it('reads the SYN sysctls of the client; the fast scenario sets tcp_syn_retries=2', () => {
    expect(synDrop.shapedBy).toEqual({ client: SYN_SYSCTLS });
    expect(synDrop.fastSysctls(synDrop.params.parse({}))).toEqual({ client: { 'net.ipv4.tcp_syn_retries': '2' } });
    expect(synDrop.server(synDrop.params.parse({}))).toEqual({ mode: 'echo' });
  });

  it('tcp_syn_retries=2 with 4 linear timeouts: SYNs 1 s apart for the first 4, then doubling; ETIMEDOUT when 7 s have passed', () => {
    // Retransmissions at 1..5 s (the 5th is past the linear ones: the RTO doubles), and the firing
    // at 7 s reaches tcp_model_timeout(2, TCP_TIMEOUT_INIT) before a 6th (2 + 4) could go out.
    const intervals = [INIT, INIT, INIT, INIT, INIT, 2 * INIT];
    expect(intervals.reduce((a, b) => a + b)).toBe(modelTimeoutMs(2, INIT, TCP_RTO_MAX_MS));
    const { e } = expectSchedule(ctx(linear(2)), intervals);
    expect(e.because?.[0]).toMatch(/limited by elapsed/);
  });

  it('tcp_syn_retries=2 without linear timeouts (kernels before 6.7): 1, 3 s, ETIMEDOUT at 7 s, limited by the count', () => {
    const { e } = expectSchedule(ctx(classic(2)), [INIT, 2 * INIT, 4 * INIT]);
    expect(e.because?.[0]).toMatch(/limited by retransmissions/);
  });

  it('the kernel defaults (6 retries, 4 linear): 10 retransmissions, ETIMEDOUT at 131 s, not the 127 s of older kernels', () => {
    const intervals = [INIT, INIT, INIT, INIT, INIT, 2 * INIT, 4 * INIT, 8 * INIT, 16 * INIT, 32 * INIT, 64 * INIT];
    expectSchedule(ctx(linear(6)), intervals);
    expect(intervals.reduce((a, b) => a + b)).toBeGreaterThan(modelTimeoutMs(6, INIT, TCP_RTO_MAX_MS));
    expectSchedule(ctx(classic(6)), [INIT, 2 * INIT, 4 * INIT, 8 * INIT, 16 * INIT, 32 * INIT, 64 * INIT]);
  });

  it('TCP_SYNCNT overrides the sysctl: set on the socket before connect(), the schedule follows it', () => {
    const c = ctx(linear(2), { syncnt: '3' });
    // 3 + 4 retransmissions: at 1..5, 7, 11 s; the firing at 19 s ends it.
    const { script } = expectSchedule(c, [INIT, INIT, INIT, INIT, INIT, 2 * INIT, 4 * INIT, 8 * INIT]);
    expect(script[0]).toEqual({ op: 'setsockopt', opt: 'SYNCNT', value: 3 });
    expect(script.map((s) => s.op)).toEqual(['setsockopt', 'connect']);
    expect(synDrop.script(ctx(linear(2)), synDrop.expect(ctx(linear(2)))).map((s) => s.op)).toEqual(['connect']);
  });

  it('never expects the server to see the connection', () => {
    const e = synDrop.expect(ctx(linear(2)));
    expect(e.states).toEqual({ client: ['SYN_SENT'] });
    expect(e.statesAbsent).toEqual({ client: ['ESTABLISHED'], server: ['SYN_RECV', 'ESTABLISHED'] });
  });

  it('validates TCP_SYNCNT (1..127)', () => {
    expect(synDrop.params.safeParse({ syncnt: '0' }).success).toBe(false);
    expect(synDrop.params.safeParse({ syncnt: '128' }).success).toBe(false);
    expect(synDrop.params.parse({ syncnt: '5' }).syncnt).toBe(5);
  });
});
