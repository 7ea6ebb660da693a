import { describe, expect, it } from 'vitest';
import {
  connectCapacity,
  orphanFinSysctlsFrom,
  parsePortRange,
  parseReservedPorts,
  predictFinWait2,
  predictOrphanFin,
  rtoAfterDelayedFinAckMs,
  rtoAfterHandshakeMs,
  timeWaitBuckets,
  timeWaitWindowMs,
  twReusable,
} from './teardown.js';

const hz250 = { hz: 250 };
const orphan = (orphanRetries: number, over: Partial<Parameters<typeof predictOrphanFin>[0]> = {}) =>
  predictOrphanFin({ orphanRetries, rtoMinUs: 200_000, rtoMaxMs: 120_000, tlp: true, ...over }, hz250);

describe('RTO after the handshake', () => {
  it('is one jiffy above the rounded-up minimum on a veth: 204 ms, 56 ms for rto_min 50 ms (both measured)', () => {
    expect(rtoAfterHandshakeMs(200_000, 120_000, hz250)).toBe(204);
    expect(rtoAfterHandshakeMs(50_000, 120_000, hz250)).toBe(56);
    expect(rtoAfterHandshakeMs(200_000, 120_000, { hz: 1000 })).toBe(201);
  });
});

describe('orphaned FIN retransmission (FIN_WAIT1 / LAST_ACK)', () => {
  it('retries=2: TLP + 3 RTO retransmissions, gone at 16 RTOs (measured 3.32 s)', () => {
    const p = orphan(2);
    expect(p.rtoRetransmits).toEqual([3, 3]);
    expect(p.finsSent).toEqual([5, 5]);
    expect(p.timeouts).toEqual([4, 4]);
    expect(p.goneAtMs).toBe(3264);
    expect(p.windowMs[0]).toBeLessThan(3322);
    expect(p.windowMs[1]).toBeGreaterThan(3343);
  });
  it('retries=1 and 3: 2 and 4 RTO retransmissions (measured 1.67 s, 6.81 s)', () => {
    expect(orphan(1)).toMatchObject({ rtoRetransmits: [2, 2], goneAtMs: 1632 });
    const p3 = orphan(3);
    expect(p3).toMatchObject({ rtoRetransmits: [4, 4], goneAtMs: 6528 });
    expect(6811).toBeLessThan(p3.windowMs[1]);
  });
  it('turns 0 into 8 while the RTO is below the max: ≈104.4 s, not the seeds\' ≈102 s', () => {
    const p = orphan(0);
    expect(p.retries).toBe(8);
    expect(p.rtoRetransmits).toEqual([8, 8]);
    expect(p.goneAtMs).toBe(104_448);
  });
  it('without TLP the same retransmissions come one RTO earlier, one FIN fewer (measured 3.15 s)', () => {
    const p = orphan(2, { tlp: false });
    expect(p.rtoRetransmits).toEqual([3, 3]);
    expect(p.finsSent).toEqual([4, 4]);
    expect(p.goneAtMs).toBe(3060);
  });
  it('a smaller tcp_rto_min_us adds retransmissions but not time to the boundary (measured 4, 1.87 s)', () => {
    const p = orphan(2, { rtoMinUs: 50_000 });
    expect(p.rtoMs).toBe(56);
    expect(p.boundaryMs).toBe(1400);
    expect(p.rtoRetransmits).toEqual([4, 4]);
    expect(p.goneAtMs).toBe(1792);
  });
  it('decides from the wheel arithmetic where a nominal schedule sits just below the boundary (tcp_orphan_retries=4)', () => {
    // 30 RTOs after the stamp is 1530 jiffies, 20 short of tcp_model_timeout(4) = 6200 ms; the
    // wheel rounds 102 → 103..110, 204 → 208, 408 → 416, 816 → 824..880 jiffies: at least 1551.
    const p = orphan(4);
    expect(p.rtoRetransmits).toEqual([4, 4]);
    expect(p.windowMs[1] - p.windowMs[0]).toBeLessThan(0.125 * p.windowMs[0]);
  });
  it('reads the sysctls of the closing side; TLP needs early_retrans 3/4 and SACK on both ends', () => {
    expect(orphanFinSysctlsFrom({ 'net.ipv4.tcp_orphan_retries': '2' }, {}).tlp).toBe(true);
    expect(orphanFinSysctlsFrom({ 'net.ipv4.tcp_early_retrans': '0' }, {}).tlp).toBe(false);
    expect(orphanFinSysctlsFrom({}, { 'net.ipv4.tcp_sack': '0' }).tlp).toBe(false);
  });
});

describe('orphaned FIN_WAIT2', () => {
  it('lasts tcp_fin_timeout as a FIN_WAIT2 timewait sock, counted in TWKilled up to 4 s', () => {
    const p = predictFinWait2(2, 204, hz250);
    expect(p).toMatchObject({ timeoutMs: 2000, holder: 'timewait-sock', counter: 'TcpExtTWKilled', limitedBy: 'tcp_fin_timeout' });
    expect(p.windowMs).toEqual([2000, 2032]);
    expect(predictFinWait2(30, 204, hz250).counter).toBe('TcpExtTW');
  });
  it('is raised to 3.5 x RTO when tcp_fin_timeout is below it: 716 ms from the handshake RTO, 728 ms from the RTO after the FIN\'s delayed ACK', () => {
    expect(predictFinWait2(0, 204, hz250)).toMatchObject({ timeoutMs: 716, limitedBy: '3.5 x RTO' });
    // 182 jiffies, up to the level-1 bucket's 8 more: the measured 760.0–760.2 ms fits only this one.
    const p = predictFinWait2(0, 208, { hz: 250, lateMs: 0 });
    expect(p).toMatchObject({ timeoutMs: 728, limitedBy: '3.5 x RTO' });
    expect(p.windowMs[1]).toBeGreaterThanOrEqual(760);
    expect(predictFinWait2(0, 204, { hz: 250, lateMs: 0 }).windowMs[1]).toBeLessThan(760);
  });
  it('the delayed ACK of the FIN (a 40–44 ms RTT sample) raises the RTO by one jiffy: 208 ms, whatever came before it', () => {
    for (const rounds of [0, 1, 5]) expect(rtoAfterDelayedFinAckMs(200_000, 120_000, { hz: 250, lateMs: 1 }, rounds)).toEqual([208, 208]);
    // rto_min 50 ms: 13 jiffies of rttvar + srtt ≈ 5 ms → 15 jiffies (the handshake alone: 14).
    expect(rtoAfterDelayedFinAckMs(50_000, 120_000, { hz: 250, lateMs: 1 }, 1)).toEqual([60, 60]);
    // HZ=1000: TCP_ATO_MIN is 40 jiffies; srtt ≈ 5 ms over rttvar 200 ms: 205–206 jiffies (srtt + rttvar lands on a
    // jiffy boundary at the least sample), where the handshake gives 201.
    expect(rtoAfterDelayedFinAckMs(200_000, 120_000, { hz: 1000, lateMs: 1 }, 1)).toEqual([205, 206]);
  });
  it('above 60 s waits (tmo - 60 s) twice: keepalive timer, then a timewait sock', () => {
    expect(predictFinWait2(90, 204, hz250)).toMatchObject({ holder: 'keepalive-then-timewait', intervalsMs: [30_000, 30_000] });
  });
});

describe('TIME_WAIT and local ports', () => {
  it('TIME_WAIT is 60 s, up to one level-3 wheel granule late', () => {
    expect(timeWaitWindowMs(hz250)).toEqual([60_000, 62_048]);
  });
  it('an even-sized range gives all its ports, an odd-sized one all but one for certain (measured 10 and 11 of 11)', () => {
    expect(connectCapacity(parsePortRange('40000\t40009'))).toEqual({ ports: 10, certain: 10, max: 10 });
    expect(connectCapacity(parsePortRange('40000 40010'))).toEqual({ ports: 11, certain: 10, max: 11 });
    expect(connectCapacity(parsePortRange('40000 40000'))).toEqual({ ports: 1, certain: 1, max: 1 });
  });
  it('skips reserved ports', () => {
    expect(parseReservedPorts('40001,40005-40007')).toEqual(new Set([40001, 40005, 40006, 40007]));
    expect(connectCapacity(parsePortRange('40000 40009'), parseReservedPorts('40001')).ports).toBe(9);
    expect(() => parsePortRange('40000')).toThrow(RangeError);
  });
  it('tcp_tw_reuse: 1 with timestamps past the delay; 2 only on loopback; never without timestamps', () => {
    const base = { reuse: 1, timestamps: true, loopback: false, delayMs: 1000, ageMs: 1100 };
    expect(twReusable(base)).toBe(true);
    expect(twReusable({ ...base, ageMs: 1000 })).toBe(false);
    expect(twReusable({ ...base, reuse: 2 })).toBe(false);
    expect(twReusable({ ...base, reuse: 2, loopback: true })).toBe(true);
    expect(twReusable({ ...base, timestamps: false })).toBe(false);
    expect(twReusable({ ...base, reuse: 0 })).toBe(false);
  });
});

describe('tcp_max_tw_buckets (inet_twsk_alloc + tcp_time_wait)', () => {
  it('0 refuses every TIME_WAIT: tw_refcount starts at 1, and 1 - 1 >= 0', () => {
    expect(timeWaitBuckets(3, 0)).toEqual({ timeWait: 0, overflow: 3 });
  });
  it('N lets the first N closes wait, the rest overflow', () => {
    expect(timeWaitBuckets(5, 2)).toEqual({ timeWait: 2, overflow: 3 });
    expect(timeWaitBuckets(5, 512)).toEqual({ timeWait: 5, overflow: 0 });
  });
});
