import { describe, expect, it } from 'vitest';
import {
  acceptQueueCapacity,
  effectiveSynackRetries,
  halfOpenLimit,
  maxAckBacklog,
  predictSynAckExpiry,
  sequentialConnects,
  simulateListener,
  synAckSysctlsFrom,
  synQueueSysctlsFrom,
  synVerdict,
  type ConnectKind,
} from './handshake.js';
import { predictSynTimeout } from './tcp.js';

const hz250 = { hz: 250 };

describe('request socket timer (reqsk_timer_handler)', () => {
  it('resends at 1, 3 s and drops at 7 s for tcp_synack_retries=2 (measured on 6.18: 1004, 3025, gone at 7220 ms)', () => {
    const p = predictSynAckExpiry(2, hz250);
    expect(p.retransmitAtMs).toEqual([1000, 3000]);
    expect(p.expireAtMs).toBe(7000);
    // 1 s and 2 s timers are wheel level 1: the first (armed by the SYN) 251..258 jiffies, the
    // second, re-armed from the callback on a bucket boundary, exactly 504 (500 rounded up);
    // 4 s is level 2: 1000 jiffies → 1024..1088 by phase.
    expect(p.retransmitWindowsMs).toEqual([[1000, 1032], [3016, 3048]]);
    expect(p.expireWindowMs).toEqual([7048, 7304]);
  });
  it('gives the seeds 63 s at the default 5 retries', () => {
    expect(predictSynAckExpiry(5, hz250).expireAtMs).toBe(63_000);
  });
  it('caps an interval at TCP_RTO_MAX', () => {
    const p = predictSynAckExpiry(8, hz250);
    expect(p.expireAtMs).toBe(1000 * (1 + 2 + 4 + 8 + 16 + 32 + 64) + 2 * 120_000);
  });
  it('drops at the first firing with retries 0', () => {
    const p = predictSynAckExpiry(0, hz250);
    expect(p.retransmits).toBe(0);
    expect(p.expireAtMs).toBe(1000);
  });
  it('reads tcp_synack_retries, 5 when absent', () => {
    expect(synAckSysctlsFrom({ 'net.ipv4.tcp_synack_retries': '2' }).synackRetries).toBe(2);
    expect(synAckSysctlsFrom({}).synackRetries).toBe(5);
  });
  it('prunes old requests when the queue is more than half full', () => {
    // Not under pressure: qlen << 1 <= max(8, backlog).
    expect(effectiveSynackRetries(5, 4, 0, 2)).toBe(5);
    // 5 old requests (none young) with backlog 4: down to 2.
    expect(effectiveSynackRetries(5, 5, 0, 4)).toBe(2);
    // Enough young ones keep the limit: qlen < young << 1.
    expect(effectiveSynackRetries(5, 5, 3, 4)).toBe(5);
    expect(effectiveSynackRetries(5, 10, 3, 4)).toBe(4);
  });
});

describe('accept queue', () => {
  it('caps the backlog with somaxconn and holds one more than it (sk_acceptq_is_full is >)', () => {
    expect(maxAckBacklog(1, 4096)).toBe(1);
    expect(maxAckBacklog(128, 16)).toBe(16);
    expect(acceptQueueCapacity(1)).toBe(2);
    expect(acceptQueueCapacity(0)).toBe(1);
  });
  it('completes backlog + 1 sequential connects and drops the SYNs of the rest', () => {
    expect(sequentialConnects(3, 1)).toEqual(['ok', 'ok', 'syn-dropped']);
    expect(sequentialConnects(5, 2)).toEqual(['ok', 'ok', 'ok', 'syn-dropped', 'syn-dropped']);
  });
});

describe('SYN queue (tcp_conn_request)', () => {
  const on = { syncookies: 1, maxSynBacklog: 128 };
  const off = { syncookies: 0, maxSynBacklog: 128 };
  it('stores backlog + 1 requests, then sends cookies (6.14+: qlen > backlog; measured on 6.18)', () => {
    expect(halfOpenLimit(2, on)).toEqual({ limit: 3, then: 'cookie' });
    expect(synVerdict({ qlen: 2, acceptQueue: 0, maxAck: 2 }, on)).toBe('request');
    expect(synVerdict({ qlen: 3, acceptQueue: 0, maxAck: 2 }, on)).toBe('cookie');
  });
  it('drops instead when cookies are off', () => {
    expect(halfOpenLimit(2, off)).toEqual({ limit: 3, then: 'drop-queue-full' });
  });
  it('always sends cookies with syncookies=2, storing nothing', () => {
    expect(halfOpenLimit(2, { syncookies: 2, maxSynBacklog: 128 })).toEqual({ limit: 0, then: 'cookie' });
  });
  it('reserves the last quarter of tcp_max_syn_backlog only when cookies are off', () => {
    // 4 - qlen < 4 >> 2 → the 5th SYN (qlen 4) is dropped, though backlog 16 has room (measured).
    expect(halfOpenLimit(16, { syncookies: 0, maxSynBacklog: 4 })).toEqual({ limit: 4, then: 'drop-max-syn-backlog' });
    expect(halfOpenLimit(16, { syncookies: 0, maxSynBacklog: 8 })).toEqual({ limit: 7, then: 'drop-max-syn-backlog' });
    expect(halfOpenLimit(16, { syncookies: 1, maxSynBacklog: 4 })).toEqual({ limit: 17, then: 'cookie' });
  });
  it('drops a SYN, cookie or not, when the accept queue is full', () => {
    expect(synVerdict({ qlen: 0, acceptQueue: 2, maxAck: 1 }, on)).toBe('drop-accept-full');
    expect(synVerdict({ qlen: 0, acceptQueue: 2, maxAck: 1 }, { syncookies: 2, maxSynBacklog: 128 })).toBe('drop-accept-full');
    expect(synVerdict({ qlen: 0, acceptQueue: 1, maxAck: 1 }, on)).toBe('request');
  });
  it('reads the sysctls with the kernel defaults when absent', () => {
    expect(synQueueSysctlsFrom({})).toEqual({ syncookies: 1, maxSynBacklog: 128 });
    expect(synQueueSysctlsFrom({ 'net.ipv4.tcp_syncookies': '0', 'net.ipv4.tcp_max_syn_backlog': '4' })).toEqual({ syncookies: 0, maxSynBacklog: 4 });
  });
});

describe('the listener over time (simulateListener: tcp_conn_request + reqsk_timer_handler)', () => {
  const syn = predictSynTimeout({ synRetries: 1, synLinearTimeouts: 4, rtoMaxMs: 120_000 }, hz250);
  const run = (connects: ConnectKind[], synackRetries: number, pausesMs: Record<number, number> = {}) =>
    simulateListener({ connects, maxAck: 4, queue: { syncookies: 0, maxSynBacklog: 2048 }, synackRetries, syn, clock: hz250, pausesMs });
  it('5 half-opens into backlog 4, tcp_synack_retries 3: the next half-opens are dropped, and the 8th could race the pruning at ~7 s — reported, not guessed', () => {
    const r = run(Array(8).fill('half-open'), 3);
    expect(r.connects.slice(0, 5).every((c) => c.result === 'request')).toBe(true);
    // Half-opens 5 and 6: every SYN meets a full queue (qlen 5 > backlog 4).
    expect(r.connects[5]).toMatchObject({ result: 'timeout', attempts: ['drop-queue-full', 'drop-queue-full', 'drop-queue-full'] });
    expect(r.race).toMatchObject({ connect: 7 });
  });
  it('waiting the race out decides it: the first request to fire a third time is pruned (none young: 3 → 2), half-open 7 gets in at its first retransmission', () => {
    const first = run(Array(8).fill('half-open'), 3);
    const pause = Math.ceil(first.race!.clearAfterMs - first.race!.startMs[0] + 4);
    const r = run([...Array(8).fill('half-open'), 'fresh'], 3, { 7: pause });
    expect(r.race).toBeUndefined();
    // Firing 1: young 5,4,3 keep 3; 2,1 give 2 (qlen 5 >= young << 1) — no one has num_timeout 2 yet.
    expect(effectiveSynackRetries(3, 5, 2, 4)).toBe(2);
    // Firing 3 of the first: num_timeout 2 >= 2 → dropped; qlen 4: (4 << 1) > max(8, 4) is false → 3 again.
    expect(effectiveSynackRetries(3, 4, 0, 4)).toBe(3);
    const pruned = r.requests.filter((q) => q.end === 'pruned');
    expect(pruned).toHaveLength(1);
    // At 1 + 2 + 4 s through the wheel (a SYN-ACK chain that expires at its third firing).
    expect(pruned[0]!.firings.at(-1)!.atMs[0]).toBeGreaterThanOrEqual(predictSynAckExpiry(2, hz250).expireWindowMs[0]);
    // Without pruning the others live to 15 s: still open when the run ends.
    expect(r.requests.filter((q) => q.end === 'open')).toHaveLength(5);
    expect(r.connects[7]).toMatchObject({ result: 'request', retransmits: 1, attempts: ['drop-queue-full', 'request'] });
    // The queue is full again: the fresh connect's three SYNs are dropped.
    expect(r.connects[8]).toMatchObject({ result: 'timeout', attempts: ['drop-queue-full', 'drop-queue-full', 'drop-queue-full'] });
  });
  it('no pruning while the queue is at most half full of max(8, backlog): requests live to tcp_synack_retries', () => {
    const r = run(['half-open', 'half-open', 'half-open', 'fresh'], 3);
    expect(r.requests.every((q) => q.end !== 'pruned')).toBe(true);
    expect(r.connects[3]).toMatchObject({ result: 'request', retransmits: 0 });
  });
});
