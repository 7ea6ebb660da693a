import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom, IcmpBucket, icmpEffect, initialRtoJiffies, pollSlackMs, predictDataTimeout, predictIdleWait, predictKeepalive } from './data.js';
import { modelTimeoutMs } from './tcp.js';
import { slipJiffies } from './timer-wheel.js';

const hz250 = { hz: 250 };
const linux618 = (retries2: number) => dataSysctlsFrom({ 'net.ipv4.tcp_retries2': String(retries2) });

describe('initial RTO on a veth', () => {
  it('is rto_min plus µs, rounded up a jiffy: 204 ms at HZ=250 (TCP_INFO rtoUs 204000 on 6.18)', () => {
    expect(initialRtoJiffies(200, hz250)).toBe(51);
    expect(initialRtoJiffies(200, { hz: 1000 })).toBe(201);
  });
});

describe('data retransmission against a silent peer (tcp_retries2)', () => {
  it('tcp_retries2=3: a loss probe, 4 RTO retransmissions, ETIMEDOUT at ~6.5 s (measured 6.62-6.84 s)', () => {
    const p = predictDataTimeout(linux618(3), hz250);
    expect(p.lossProbes).toBe(1);
    expect(p.limitMs).toBe(3000);
    expect(p.rtoRetransmits).toEqual([4, 4]);
    expect(p.retransSegs).toEqual([5, 5]); // TcpRetransSegs measured 5
    expect(p.timeouts).toEqual([5, 5]); // TcpExtTCPTimeouts measured 5
    expect(p.segments).toEqual([6, 6]); // rule hits measured 6
    // Jiffy arithmetic (HZ=250, RTO 51 jiffies): the probe, armed by the write, is a level-0 timer
    // (fires at expires + 1: 52 jiffies); the RTO re-armed from its callback again 52; then 102
    // (level 1, 103..110 by phase), 204 (→ 208, aligned), 408 (→ 416), 816 (level 2: 824..880).
    expect(p.onTime.retransmitAtMs).toEqual([416, 828, 1660, 3324]);
    for (const measured of [6620.7, 6810.1, 6816.6, 6836]) {
      expect(measured).toBeGreaterThanOrEqual(p.windowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.windowMs[1]);
    }
  });
  it('counts the limit from the first RTO retransmission, not from the write', () => {
    // From the write, 15 × 200 ms would end after 3 retransmissions; from the first it takes 4.
    const p = predictDataTimeout(linux618(3), hz250);
    // 416 ms to the first RTO retransmission, then 2+4+8+16 RTOs plus the wheel's rounding.
    expect(p.onTime.deadMs).toBe(416 + (103 + 208 + 416 + 824) * 4);
  });
  it('without a loss probe the schedule starts one RTO earlier', () => {
    const p = predictDataTimeout({ ...linux618(3), tlp: false }, hz250);
    expect(p.lossProbes).toBe(0);
    expect(p.onTime.retransmitAtMs[0]).toBe(208);
  });
  it('disables TLP when tcp_early_retrans is not 3/4 or SACK is off on either side', () => {
    expect(dataSysctlsFrom({ 'net.ipv4.tcp_early_retrans': '2' }).tlp).toBe(false);
    expect(dataSysctlsFrom({}, { 'net.ipv4.tcp_sack': '0' }).tlp).toBe(false);
    expect(dataSysctlsFrom({}).tlp).toBe(true);
  });
  it('follows tcp_retries2: 5 gives a later death with more retransmissions', () => {
    const p3 = predictDataTimeout(linux618(3), hz250);
    const p5 = predictDataTimeout(linux618(5), hz250);
    expect(p5.limitMs).toBe(12_600);
    expect(p5.rtoRetransmits[0]).toBeGreaterThan(p3.rtoRetransmits[0]);
    expect(p5.windowMs[0]).toBeGreaterThan(p3.windowMs[1]);
  });
});

describe('TCP_USER_TIMEOUT', () => {
  it('2000 ms: the last timer is clamped to it; ETIMEDOUT ~0.4 s + 2 s after the write (measured 2439-2441 ms)', () => {
    const p = predictDataTimeout(linux618(3), hz250, 2000);
    expect(p.limitedBy).toBe('TCP_USER_TIMEOUT');
    expect(p.rtoRetransmits).toEqual([3, 3]);
    expect(p.retransSegs).toEqual([4, 4]); // measured TcpRetransSegs 4
    expect(p.segments).toEqual([5, 5]); // measured rule hits 5
    // The last timer is clamped to what is left of the 2000 ms: dead 2000..2032 ms after the first RTO retransmission.
    expect(p.onTime.deadMs - p.onTime.retransmitAtMs[0]!).toBeGreaterThanOrEqual(2000);
    // …a level-1 granule late at most, and a softirq slip (slipJiffies).
    expect(p.late.deadMs - p.late.retransmitAtMs[0]!).toBeLessThanOrEqual(2000 + 32 + 4 * slipJiffies(hz250));
    for (const measured of [2439.5, 2440.9]) {
      expect(measured).toBeGreaterThanOrEqual(p.windowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.windowMs[1]);
    }
  });
});

describe('ICMP on an established socket', () => {
  it('maps REJECT codes through icmp_err_convert', () => {
    expect(icmpEffect('icmp-net-unreachable')).toEqual({ code: 0, errno: 'ENETUNREACH', revertsBackoff: true });
    expect(icmpEffect('icmp-host-unreachable')).toEqual({ code: 1, errno: 'EHOSTUNREACH', revertsBackoff: true });
    expect(icmpEffect('icmp-port-unreachable').errno).toBe('ECONNREFUSED');
    expect(icmpEffect('icmp-proto-unreachable').errno).toBe('ENOPROTOOPT');
    expect(icmpEffect('icmp-admin-prohibited')).toEqual({ code: 13, errno: 'EHOSTUNREACH', revertsBackoff: false });
    expect(icmpEffect('icmp-net-prohibited').errno).toBe('ENETUNREACH');
  });
  it('RFC 6069 revert: 15 RTO retransmissions 204 ms apart, dead at ~3.47 s (measured 3474.4 ms, pcap: TLP +206.7, RTO +208, then 204 ms; 16 retrans segs, 17 ICMPs)', () => {
    const p = predictDataTimeout(linux618(3), hz250, 0, { revertBackoff: true });
    expect(p.rtoRetransmits).toEqual([15, 15]);
    expect(p.retransSegs).toEqual([16, 16]);
    expect(p.segments).toEqual([17, 17]);
    expect(p.icmps).toEqual([17, 17]);
    // 3474.4 idle; 3485.9 (and earlier 3486.7, 3491.9) with other runs loading the machine: reverts made a tick late.
    for (const measured of [3474.4, 3485.9, 3486.7, 3491.9]) {
      expect(measured).toBeGreaterThanOrEqual(p.windowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.windowMs[1]);
    }
  });
});

describe('keepalive', () => {
  it('idle 1 s + 3 × 1 s: 3 probes, a RST, ETIMEDOUT at ~4 s (measured 4098-4104 ms)', () => {
    const p = predictKeepalive({ idleS: 1, intvlS: 1, cnt: 3 }, hz250);
    expect(p.probes).toBe(3);
    expect(p.segments).toBe(4);
    expect(p.nominalMs).toBe(4000);
    for (const measured of [4098.5, 4104]) {
      expect(measured).toBeGreaterThanOrEqual(p.windowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.windowMs[1]);
    }
  });
});

describe('idle wait', () => {
  it('ends at its own timeout (measured 3002.2-3002.6 ms for 3000)', () => {
    const w = predictIdleWait(3000, hz250);
    expect(3002.6).toBeLessThanOrEqual(w[1]);
    expect(w[0]).toBe(3000);
  });
  it('an epoll timeout may end its hrtimer slack late: 0.1 % of it, 50 µs..100 ms (measured 5505.5 ms for 5500 on a quiet machine)', () => {
    expect(pollSlackMs(5500)).toBe(5.5);
    expect(pollSlackMs(10)).toBe(0.05);
    expect(pollSlackMs(600_000)).toBe(100);
    expect(pollSlackMs(1000, 10)).toBe(5);
    const clock = { hz: 250, lateMs: 0.1 };
    expect(predictIdleWait(5500, clock)[1]).toBeGreaterThanOrEqual(5505.5);
    // The slack is what makes it fit: without it the window ends before the measured wait.
    expect(predictIdleWait(5500, clock)[1] - pollSlackMs(5500)).toBeLessThan(5505.5);
  });
});

describe('edge cases the real kernel showed', () => {
  it('tcp_retries2=4: 30 RTOs (1530 jiffies) fall 20 jiffies short of the 1550-jiffy limit, but the wheel adds at least 21: always the 5th firing (measured 6656 ms)', () => {
    const p = predictDataTimeout(dataSysctlsFrom({ 'net.ipv4.tcp_retries2': '4' }), hz250);
    // Firing 5 after the stamp: 102 → 103..110 (level 1, any phase), 204 → 208, 408 → 416,
    // 816 → 824..880 (level 2): at least 1551 jiffies = 6204 ms >= tcp_model_timeout(4) = 6200 ms.
    expect(103 + 208 + 416 + 824).toBeGreaterThan(modelTimeoutMs(4, 200, 120_000) / 4);
    expect(p.rtoRetransmits).toEqual([4, 4]);
    expect(p.windowMs[1] - p.windowMs[0]).toBeLessThan(0.125 * p.windowMs[0]);
    expect(6656.1).toBeGreaterThanOrEqual(p.windowMs[0]);
    expect(6656.1).toBeLessThanOrEqual(p.windowMs[1]);
  });
  it('TCP_USER_TIMEOUT=1500: the clamped last timer is a level-1 timer when earlier ones were on time (measured 1946 ms)', () => {
    const p = predictDataTimeout(linux618(3), hz250, 1500);
    expect(1946.3).toBeGreaterThanOrEqual(p.windowMs[0]);
    expect(1946.3).toBeLessThanOrEqual(p.windowMs[1]);
  });
});

// (an import may sit anywhere at the top level: this block is appended for the linger model)
import { predictLingerClose } from './data.js';

describe('SO_LINGER {1,N} against a dead peer (predictLingerClose)', () => {
  const s = (retries2: number) => dataSysctlsFrom({ 'net.ipv4.tcp_retries2': String(retries2) });
  it('1 s, tcp_orphan_retries=1: close() blocks 1 s and returns 0, the orphan dies at ~1.45 s (measured on 6.18)', () => {
    const p = predictLingerClose(s(15), { lingerS: 1, orphanRetries: 1 }, hz250);
    expect(p.closeErrno).toBeNull();
    expect(p.closeEndedBy).toBe('linger');
    // close() durations measured: 1016.2, 1022.3 ms (probe), 1015.9, 1028.3 ms (python, blocking and non-blocking).
    for (const measured of [1016.2, 1022.3, 1015.9, 1028.3]) {
      expect(measured).toBeGreaterThanOrEqual(p.closeWindowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.closeWindowMs[1]);
    }
    // 250 jiffies armed mid-jiffy by close(): a level-1 timer fires 251..258 jiffies after the arm's jiffy.
    expect(p.closeWindowMs[0]).toBe(1000);
    // RTO retransmissions from the data's transmission (not from the loss probe): measured at 216, 638 ms.
    expect(p.late.retransmitAtMs[0]).toBeGreaterThanOrEqual(216);
    expect(p.onTime.retransmitAtMs[0]).toBeLessThanOrEqual(216);
    expect(p.rtoRetransmits).toEqual([2, 2]);
    // Measured: TcpRetransSegs 3, TcpExtTCPTimeouts 3, TcpExtTCPLossProbes 1, drop rule 5, FIN-flagged segments 4.
    expect(p.retransSegs).toEqual([3, 3]);
    expect(p.timeouts).toEqual([3, 3]);
    expect(p.segments).toEqual([5, 5]);
    expect(p.finsSent).toEqual([4, 4]);
    expect(p.orphanLimitMs).toBe(600);
    // Gone (FIN_WAIT1 → no socket) measured 1464, 1476.6 ms after the write.
    for (const measured of [1464, 1476.6]) {
      expect(measured).toBeGreaterThanOrEqual(p.goneWindowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.goneWindowMs[1]);
    }
  });
  it('tcp_retries2=1 kills the connection under a 3 s linger: close() returns early (measured 1480.7 ms), still 0', () => {
    const p = predictLingerClose(s(1), { lingerS: 3, orphanRetries: 1 }, hz250);
    expect(p.closeEndedBy).toBe('tcp_retries2');
    expect(p.closeWindowMs[1]).toBeLessThan(3000);
    expect(1480.7).toBeGreaterThanOrEqual(p.closeWindowMs[0]);
    expect(1480.7).toBeLessThanOrEqual(p.closeWindowMs[1]);
  });
  it('says "either" when a retransmission timer may fire on either side of the linger timer', () => {
    // tcp_retries2=2: the connection dies at the firing 3.11..3.15 s after the write; a 3 s linger
    // is a level-2 timer (750 jiffies, granule 64: 751..814 jiffies after close(), 3.0..3.26 s):
    // which comes first depends on the phase, so both are kept.
    const p = predictLingerClose(s(2), { lingerS: 3, orphanRetries: 1 }, hz250);
    expect(p.closeEndedBy).toBe('either');
    expect(p.closeWindowMs[0]).toBe(3000);
  });
  it('tcp_orphan_retries=0 means 8 while the RTO is below the max: the orphan lives ~100 s', () => {
    const p = predictLingerClose(s(15), { lingerS: 1, orphanRetries: 0 }, hz250);
    expect(p.orphanLimitMs).toBe(102_200);
    expect(p.goneWindowMs[0]).toBeGreaterThan(100_000);
  });
  it('without tcp_retrans_collapse only the FIN and the probe carry FIN', () => {
    expect(predictLingerClose(s(15), { lingerS: 1, orphanRetries: 1, retransCollapse: false }, hz250).finsSent).toEqual([2, 2]);
  });
});

describe('the target ICMP rate limit (net/ipv4/inetpeer.c inet_peer_xrlim_allow)', () => {
  it('lets a new peer send a burst of XRLIM_BURST_FACTOR at once, then one ICMP per limit as tokens (jiffies) refill', () => {
    const b = new IcmpBucket(250); // icmp_ratelimit 1000 ms at HZ=250
    expect([0, 1, 2, 3, 4, 5, 6].map((t) => b.allow(1000 + t))).toEqual([true, true, true, true, true, true, false]);
    // 6 tokens left at jiffy 1006; 250 are needed: refilled at 1250, not 1249.
    expect(b.allow(1249)).toBe(false);
    expect(b.allow(1250)).toBe(true);
    expect(new IcmpBucket(0).allow(0)).toBe(true);
  });
  it('host-unreachable at icmp_ratelimit 1000: the burst answers the write, the TLP and RTO #1-#4, then reverts stop and the RTO doubles — one schedule, not a range', () => {
    const p = predictDataTimeout(linux618(3), hz250, 0, { revertBackoff: true, icmpRatelimitMs: 1000 });
    const flat = predictDataTimeout(linux618(3), hz250, 0, { revertBackoff: true });
    expect(p.rtoRetransmits[0]).toBe(p.rtoRetransmits[1]);
    expect(p.icmps[0]).toBeGreaterThan(6);
    expect(p.icmps[0]).toBeLessThan(p.segments[0]);
    expect(p.rtoRetransmits[0]).toBeLessThan(flat.rtoRetransmits[0]);
    expect(p.windowMs[1] - p.windowMs[0]).toBeLessThan(0.125 * p.windowMs[0]);
    // Its first six retransmissions are the flat schedule's.
    expect(p.onTime.retransmitAtMs.slice(0, 6)).toEqual(flat.onTime.retransmitAtMs.slice(0, 6));
  });
});
