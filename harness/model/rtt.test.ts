import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom } from './data.js';
import { estimateRtt, estimateRttExact, predictLatency, tcpInfoOf, tsSampleUs } from './rtt.js';
import { wakeupSlackMs } from './tcp.js';

const hz250 = { hz: 250 };
const RTO_MIN_US = 200_000;
const data = dataSysctlsFrom({});
const wake = wakeupSlackMs(hz250);

/** A deterministic PRNG for the property checks. */
function rng(seed: number) {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

describe('the kernel RTT estimator (tcp_rtt_estimator, __tcp_set_rto)', () => {
  it('first sample: srtt = m, rttvar = max(2m, rto_min), RTO = 3m rounded up a jiffy (measured: rtt 200575, rttvar 100287, rto 604000)', () => {
    const est = estimateRtt([[200_575, 200_575]], RTO_MIN_US);
    const info = tcpInfoOf(est, 120_000, hz250);
    expect(info.rttUs).toEqual([200_575, 200_575]);
    expect(info.rttvarUs).toEqual([100_287, 100_287]);
    expect(info.rtoUs).toEqual([604_000, 604_000]);
  });
  it('a sample below rto_min/2: RTO = srtt + rto_min (the veth: 204 ms)', () => {
    expect(tcpInfoOf(estimateRtt([[40, 40]], RTO_MIN_US), 120_000, hz250).rtoUs).toEqual([204_000, 204_000]);
  });
  it('steady samples: rttvar decays a quarter of the way toward rto_min per round trip (measured: rto 604000, 604000, 560000)', () => {
    const rto = (n: number) => tcpInfoOf(estimateRtt(Array.from({ length: n }, () => [200_500, 200_500] as [number, number]), RTO_MIN_US), 120_000, hz250).rtoUs[0];
    expect([rto(1), rto(2), rto(3)]).toEqual([604_000, 604_000, 560_000]);
  });
  it('on point samples the interval estimator is the kernel arithmetic', () => {
    const r = rng(1);
    for (let i = 0; i < 200; i++) {
      const xs = Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 900_000) + 1);
      const exact = estimateRttExact(xs, RTO_MIN_US);
      const est = estimateRtt(xs.map((x) => [x, x] as [number, number]), RTO_MIN_US);
      expect(est.srtt8).toEqual([exact.srtt8, exact.srtt8]);
      expect(est.mdev4).toEqual([exact.mdev4, exact.mdev4]);
      expect(est.rttvar).toEqual([exact.rttvar, exact.rttvar]);
    }
  });
  it('on ranges it bounds every sequence of samples drawn from them', () => {
    const r = rng(7);
    for (let i = 0; i < 300; i++) {
      const ranges = Array.from({ length: 1 + Math.floor(r() * 6) }, () => {
        const lo = Math.floor(r() * 600_000) + 1;
        return [lo, lo + Math.floor(r() * 300_000)] as [number, number];
      });
      const est = estimateRtt(ranges, RTO_MIN_US);
      for (let j = 0; j < 20; j++) {
        const xs = ranges.map(([lo, hi]) => lo + Math.floor(r() * (hi - lo + 1)));
        const exact = estimateRttExact(xs, RTO_MIN_US);
        expect(exact.srtt8).toBeGreaterThanOrEqual(est.srtt8[0]);
        expect(exact.srtt8).toBeLessThanOrEqual(est.srtt8[1]);
        expect(exact.rttvar).toBeGreaterThanOrEqual(est.rttvar[0]);
        expect(exact.rttvar).toBeLessThanOrEqual(est.rttvar[1]);
      }
    }
  });
  it('a timestamp sample is whole ms of the TCP timestamp clock, at least 1', () => {
    expect(tsSampleUs([600_400, 624_000])).toEqual([600_000, 624_000]);
    expect(tsSampleUs([100, 900])).toEqual([1000, 1000]);
  });
});

describe('latency through the delayer', () => {
  it('2 × 100 ms from the first SYN: connect and each round trip 200 ms + wake-ups; RTO 3·RTT; nothing retransmitted', () => {
    const p = predictLatency({ toServerMs: 100, toClientMs: 100, jitterMs: 0, when: 'connect', rounds: 3 }, data, hz250, wake);
    // Two holds each up to a wake-up late, one more for the answering side; the probe's own wake-up on top.
    expect(p.sampleUs).toEqual([200_000, 200_000 + 3 * wake * 1000]);
    expect(p.connectMs).toEqual([200, 200 + 4 * wake]);
    expect(p.roundMs).toEqual(p.connectMs);
    expect(p.afterConnect.rtoUs).toEqual([600_000, 672_000]);
    expect(p.spurious).toEqual({ firings: [0, 0], probes: [0, 0], rtos: [0, 0] });
  });
  it('one direction only: one hold per round trip', () => {
    const p = predictLatency({ toServerMs: 150, toClientMs: 0, jitterMs: 0, when: 'connect', rounds: 1 }, data, hz250, wake);
    expect(p.sampleUs).toEqual([150_000, 150_000 + 2 * wake * 1000]);
  });
  it('a 600 ms round trip after the handshake: the veth RTO fires early (measured per round: 2, 1, 1, 0 spurious retransmissions)', () => {
    const p = predictLatency({ toServerMs: 300, toClientMs: 300, jitterMs: 0, when: 'established', rounds: 4 }, data, hz250, wake);
    expect(p.rounds[0]).toMatchObject({ firings: [2, 2], probes: [1, 1], rtos: [1, 1], rtoMs: [204, 204], ptoMs: [204, 204] });
    // Karn: the answer to a retransmitted request gives only the timestamp sample; srtt catches up
    // an eighth at a time, so the next loss probes (2·srtt + 200 ms) still beat the answer.
    expect(p.rounds.map((r) => r.firings)).toEqual([[2, 2], [1, 1], [1, 1], [0, 1]]);
    expect(p.afterRounds.rtoUs[0]).toBeGreaterThan(600_000);
  });
  it('a round trip under the veth RTO after the handshake: no retransmission', () => {
    const p = predictLatency({ toServerMs: 50, toClientMs: 50, jitterMs: 0, when: 'established', rounds: 2 }, data, hz250, wake);
    expect(p.spurious.firings).toEqual([0, 0]);
  });
  it('jitter wider than rto_min: the loss probe may beat an answer', () => {
    const p = predictLatency({ toServerMs: 100, toClientMs: 100, jitterMs: 50, when: 'connect', rounds: 3 }, data, hz250, wake);
    expect(p.sampleUs[0]).toBe(100_000);
    expect(p.spurious.firings[0]).toBe(0);
    expect(p.spurious.firings[1]).toBeGreaterThan(0);
  });
});
