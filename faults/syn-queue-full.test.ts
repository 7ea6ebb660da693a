import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { HALF_OPEN_BASE_PORT, plannedSyns, synQueueFull } from './syn-queue-full.js';
import { faultContext } from './context.js';
import { TCP_TIMEOUT_INIT_MS } from '../harness/model/tcp.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';

/**
 * A dropped connect at tcp_syn_retries=1 with 4 linear timeouts, by hand (as in
 * accept-queue-full.test.ts): SYNs 1 s apart, ETIMEDOUT at the firing 3 s after the first.
 */
const clock = { hz: 250 };
const SYN_RETRANSMITS = 2;
const synWindow = chainWindowMs([TCP_TIMEOUT_INIT_MS, TCP_TIMEOUT_INIT_MS, TCP_TIMEOUT_INIT_MS], clock);

const ctx = (raw: Record<string, unknown> = {}, server: Record<string, string> = {}) =>
  faultContext(synQueueFull, {
    params: raw,
    sysctls: {
      client: { 'net.ipv4.tcp_syn_retries': '1', 'net.ipv4.tcp_syn_linear_timeouts': '4', 'net.ipv4.tcp_rto_max_ms': '120000' },
      server: { 'net.ipv4.tcp_syncookies': '1', 'net.ipv4.tcp_max_syn_backlog': '128', 'net.ipv4.tcp_synack_retries': '5', ...server },
    },
  });

describe('syn-queue-full', () => {
  it('makes backlog + 1 half-opens, each from its own port with all but its SYN dropped', () => {
    const c = ctx();
    expect(plannedSyns(c)).toEqual({ halfOpens: ['request', 'request', 'request'], fresh: 'cookie', stored: 3, limit: 3 });
    const steps = planRules('abc123', synQueueFull.plan(c).rules ?? []);
    expect(steps.filter((s) => s.apply.includes('-A')).map((s) => s.apply.slice(5))).toEqual(
      [0, 1, 2].map((i) => [
        '-p', 'tcp', '--sport', String(HALF_OPEN_BASE_PORT + i), '--dport', '9000', '--tcp-flags', 'SYN', 'NONE',
        '-m', 'comment', '--comment', `harness:abc123:half-open-${i}`, '-j', 'DROP',
      ]),
    );
    expect(steps.every((s) => s.side === 'client')).toBe(true);
  });

  it('syncookies=1: the fresh connect completes through a cookie', () => {
    const c = ctx();
    const e = synQueueFull.expect(c);
    expect(e.steps['connect-fresh']).toMatchObject({ ok: true });
    expect(e.counters?.server).toMatchObject({ TcpExtSyncookiesSent: 1, TcpExtSyncookiesRecv: 1, TcpExtTCPReqQFullDoCookies: 1, TcpExtListenDrops: 0 });
    expect(e.rulesHit?.['half-open-0']).toEqual({ min: 2 });
    const script = synQueueFull.script(c, e);
    expect(script.map((s) => s.label ?? s.op)).toEqual(['half-open-0', 'half-open-1', 'half-open-2', 'connect-fresh', 'write-fresh', 'sleep']);
    expect(script[0]).toMatchObject({ bindPort: HALF_OPEN_BASE_PORT });
  });

  it('syncookies=0: the fresh connect times out, each SYN counted as a queue-full drop', () => {
    const c = ctx({}, { 'net.ipv4.tcp_syncookies': '0' });
    const e = synQueueFull.expect(c);
    expect(e.steps['connect-fresh']).toMatchObject({ errno: 'ETIMEDOUT', totalRetrans: SYN_RETRANSMITS });
    expect(e.steps['write-fresh']).toBeUndefined();
    // Every SYN of the fresh connect is dropped.
    expect(e.counters?.server).toMatchObject({ TcpExtTCPReqQFullDrop: 1 + SYN_RETRANSMITS, TcpExtListenDrops: 1 + SYN_RETRANSMITS, TcpExtSyncookiesSent: 0 });
    // ACK + FIN, the SYN-ACK resend at 1 s surely, the one at 3 s perhaps: the run ends when the
    // fresh connect times out, which can be before that resend.
    expect(chainWindowMs([1000], clock)[1]).toBeLessThan(synWindow[0]);
    expect(chainWindowMs([1000, 2000], clock)[1]).toBeGreaterThanOrEqual(synWindow[0]);
    expect(e.rulesHit?.['half-open-0']).toEqual({ min: 2 + 1 });
  });

  it('syncookies=2: nothing is stored, every SYN gets a cookie', () => {
    const e = synQueueFull.expect(ctx({}, { 'net.ipv4.tcp_syncookies': '2' }));
    expect(e.statesAbsent?.server).toContain('SYN_RECV');
    expect(e.counters?.server).toMatchObject({ TcpExtSyncookiesSent: 4, TcpExtTCPReqQFullDoCookies: 4, TcpExtSyncookiesRecv: 1 });
  });

  it('tcp_max_syn_backlog limits only with cookies off', () => {
    const c = ctx({ backlog: '16' }, { 'net.ipv4.tcp_syncookies': '0', 'net.ipv4.tcp_max_syn_backlog': '4' });
    expect(plannedSyns(c)).toMatchObject({ stored: 4, fresh: 'drop-max-syn-backlog' });
    expect(synQueueFull.expect(c).counters?.server).toMatchObject({ TcpExtTCPReqQFullDrop: 0, TcpExtListenDrops: 3 });
  });

  it('a half-open past the limit with cookies off is itself dropped', () => {
    const c = ctx({ halfOpens: '4' }, { 'net.ipv4.tcp_syncookies': '0' });
    const e = synQueueFull.expect(c);
    expect(e.steps['half-open-3']).toMatchObject({ errno: 'ETIMEDOUT' });
    expect(e.rulesHit?.['half-open-3']).toEqual({ min: 0, max: 0 });
  });

  it('backlog 4, 8 half-opens, cookies off, tcp_synack_retries 3: one request is pruned at ~7 s; the script waits out the race, the 8th half-open gets in at its first retransmission, the fresh connect times out (the issue: it was said to time out)', () => {
    const c = ctx({ backlog: '4', halfOpens: '8' }, { 'net.ipv4.tcp_syncookies': '0', 'net.ipv4.tcp_max_syn_backlog': '2048', 'net.ipv4.tcp_synack_retries': '3' });
    const e = synQueueFull.expect(c);
    expect(e.steps['half-open-5']).toMatchObject({ errno: 'ETIMEDOUT' });
    expect(e.steps['half-open-7']).toMatchObject({ ok: true, totalRetrans: 1 });
    // At its first retransmission: the SYN timer's first firing, not "at once", not "times out".
    expect(e.steps['half-open-7']!.windowMs![0]).toBe(chainWindowMs([TCP_TIMEOUT_INIT_MS], clock)[0]);
    expect(e.steps['connect-fresh']).toMatchObject({ errno: 'ETIMEDOUT' });
    expect(e.because!.join('\n')).toMatch(/pruned at 7\.\d\d–7\.\d\d s/);
    const script = synQueueFull.script(c, e);
    const pause = script.find((st) => st.label === 'await-expiry-7');
    expect(pause).toBeDefined();
    expect(script.indexOf(pause!)).toBe(script.findIndex((st) => st.label === 'half-open-7') - 1);
    // Dropped SYNs: half-opens 5 and 6 (3 each), the 8th's first, the fresh connect's 3.
    expect(e.counters?.server).toMatchObject({ TcpExtTCPReqQFullDrop: 3 + 3 + 1 + 3, TcpPassiveOpens: 0 });
    expect(e.counters?.client).toMatchObject({ TcpExtTCPSynRetrans: 2 + 2 + 1 + 2 });
  });
});
