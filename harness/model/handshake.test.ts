import { describe, expect, it } from 'vitest';
import {
  acceptQueueCapacity,
  effectiveSynackRetries,
  halfOpenLimit,
  maxAckBacklog,
  predictSynAckExpiry,
  sequentialConnects,
  synAckSysctlsFrom,
  synQueueSysctlsFrom,
  synVerdict,
} from './handshake.js';

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
