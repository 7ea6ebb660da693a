import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom, icmpEffect, initialRtoJiffies, predictDataTimeout, predictIdleWait, predictKeepalive } from './data.js';

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
    // Earliest times: the first timer, armed mid-jiffy by the write, may fire a jiffy early.
    expect(p.onTime.retransmitAtMs).toEqual([404, 812, 1628, 3260]);
    for (const measured of [6620.7, 6810.1, 6816.6, 6836]) {
      expect(measured).toBeGreaterThanOrEqual(p.windowMs[0]);
      expect(measured).toBeLessThanOrEqual(p.windowMs[1]);
    }
  });
  it('counts the limit from the first RTO retransmission, not from the write', () => {
    // From the write, 15 × 200 ms would end after 3 retransmissions; from the first it takes 4.
    const p = predictDataTimeout(linux618(3), hz250);
    expect(p.onTime.deadMs).toBe(404 + 30 * 204);
  });
  it('without a loss probe the schedule starts one RTO earlier', () => {
    const p = predictDataTimeout({ ...linux618(3), tlp: false }, hz250);
    expect(p.lossProbes).toBe(0);
    expect(p.onTime.retransmitAtMs[0]).toBe(200);
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
    expect(p.onTime.deadMs).toBe(404 + 2000);
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
  it('RFC 6069 revert: 15 RTO retransmissions ~200 ms apart, dead at ~3.4 s (measured 3486-3492 ms, 16 retrans segs, 17 ICMPs)', () => {
    const p = predictDataTimeout(linux618(3), hz250, 0, { revertBackoff: true });
    expect(p.rtoRetransmits).toEqual([15, 15]);
    expect(p.retransSegs).toEqual([16, 16]);
    expect(p.segments).toEqual([17, 17]);
    for (const measured of [3486.7, 3491.9]) {
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
});

describe('edge cases the real kernel showed', () => {
  it('tcp_retries2=4: 30 RTOs (6120 ms) fall 80 ms short of the 6200 ms limit, so lateness decides (measured 6656 ms)', () => {
    const p = predictDataTimeout(dataSysctlsFrom({ 'net.ipv4.tcp_retries2': '4' }), hz250);
    expect(p.rtoRetransmits).toEqual([4, 5]);
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
    expect(p.closeWindowMs[0]).toBe(996); // 250 jiffies armed mid-jiffy: up to one jiffy short
    // RTO retransmissions from the data's transmission (not from the loss probe): measured at 216, 638 ms.
    expect(p.onTime.retransmitAtMs).toEqual([200, 608]);
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
    // tcp_retries2=2: the connection would die at ~3.06 s, a 3 s linger ends at 2.996..3.032 s.
    const p = predictLingerClose(s(2), { lingerS: 3, orphanRetries: 1 }, hz250);
    expect(p.closeEndedBy).toBe('either');
    expect(p.closeWindowMs[0]).toBe(2996);
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
