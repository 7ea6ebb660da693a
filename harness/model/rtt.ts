/**
 * What the kernel measures on a path with added delay: its RTT samples, the smoothed RTT and
 * variance it keeps, and the RTO it derives from them — what TCP_INFO shows as rtt, rttvar, rto.
 *
 * net/ipv4/tcp_input.c tcp_rtt_estimator (6.18), in µs, srtt kept ×8 and mdev ×4:
 * - the first sample m: srtt = m, mdev = 2m ("make sure rto = 3*rtt"), rttvar = mdev_max =
 *   max(mdev, tcp_rto_min_us);
 * - each later one: err = m − srtt; srtt += err/8; mdev += |err| − mdev/4 (a sample below srtt
 *   moves mdev only by an eighth of that); mdev_max and rttvar follow mdev up; once per round
 *   trip (snd_una past rtt_seq) rttvar decays a quarter of the way down to mdev_max, and mdev_max
 *   restarts from tcp_rto_min_us.
 * include/net/tcp.h __tcp_set_rto: RTO = usecs_to_jiffies(srtt + rttvar), capped at the RTO max
 * (tcp_bound_rto); TCP_INFO reports tcpi_rtt = srtt, tcpi_rttvar = mdev/4, tcpi_rto in µs of
 * whole jiffies.
 *
 * A sample is known only as a range (the delayer wakes a little late, the server answers a little
 * later): the estimator is run on intervals — every quantity's least and greatest value over all
 * samples in their ranges. Each update is monotone in its inputs, so the bounds are exact when
 * every range is a point (a unit test replays the kernel's integer arithmetic) and safe otherwise.
 */
import type { DataSysctls } from './data.js';
import { firingsBefore, ptoJiffies, retransmitFirings, usToJiffies } from './retransmit.js';
import { jiffiesToMs, msToJiffies, type KernelClock } from './timer-wheel.js';

type Range = [number, number];

/** The estimator's state as intervals (µs; srtt ×8 and mdev ×4 as the kernel keeps them). */
export interface RttEstimate {
  srtt8: Range;
  mdev4: Range;
  mdevMax: Range;
  rttvar: Range;
  samples: number;
}

/** One kernel update with exact integers (the point case), for the tests and the bounds. */
function exactStep(st: { srtt8: number; mdev4: number; mdevMax: number; rttvar: number } | undefined, m: number, rtoMinUs: number, newRound: boolean) {
  if (!st) {
    const mdev4 = m * 2;
    const rttvar = Math.max(mdev4, rtoMinUs);
    return { srtt8: Math.max(1, m * 8), mdev4, mdevMax: rttvar, rttvar };
  }
  let { srtt8, mdev4, mdevMax, rttvar } = st;
  let e = m - (srtt8 >> 3);
  srtt8 += e;
  if (e < 0) {
    e = -e - (mdev4 >> 2);
    if (e > 0) e >>= 3;
  } else {
    e -= mdev4 >> 2;
  }
  mdev4 += e;
  if (mdev4 > mdevMax) {
    mdevMax = mdev4;
    if (mdevMax > rttvar) rttvar = mdevMax;
  }
  if (newRound) {
    if (mdevMax < rttvar) rttvar -= (rttvar - mdevMax) >> 2;
    mdevMax = rtoMinUs;
  }
  return { srtt8: Math.max(1, srtt8), mdev4, mdevMax, rttvar };
}

/**
 * The estimator after `samples` (each a [lo, hi] range, µs, in order), every sample after the
 * first closing a round trip (one segment in flight at a time: each ACK moves snd_una past
 * rtt_seq).
 */
export function estimateRtt(samples: readonly Range[], rtoMinUs: number): RttEstimate {
  if (samples.length === 0) throw new RangeError('estimateRtt needs at least one sample');
  const [f, ...rest] = samples;
  const lo0 = exactStep(undefined, f![0], rtoMinUs, false);
  const hi0 = exactStep(undefined, f![1], rtoMinUs, false);
  let est: RttEstimate = {
    srtt8: [lo0.srtt8, hi0.srtt8],
    mdev4: [lo0.mdev4, hi0.mdev4],
    mdevMax: [lo0.mdevMax, hi0.mdevMax],
    rttvar: [lo0.rttvar, hi0.rttvar],
    samples: 1,
  };
  for (const [mLo, mHi] of rest) {
    const [sLo, sHi] = [est.srtt8[0] >> 3, est.srtt8[1] >> 3];
    // srtt' = srtt − srtt/8 + m: non-decreasing in srtt and in m.
    const srtt8: Range = [est.srtt8[0] - (est.srtt8[0] >> 3) + mLo, est.srtt8[1] - (est.srtt8[1] >> 3) + mHi];
    // mdev' grows with |error| on either side of zero (a sample below srtt through the damped
    // branch): least at the error nearest zero, greatest at the farthest one of either sign.
    const errMin = mLo - sHi;
    const errMax = mHi - sLo;
    const errNearest = errMin > 0 ? errMin : errMax < 0 ? errMax : 0;
    const mdevUpd = (mdev4: number, err: number) => {
      let e = err;
      if (e < 0) {
        e = -e - (mdev4 >> 2);
        if (e > 0) e >>= 3;
      } else e -= mdev4 >> 2;
      return mdev4 + e;
    };
    const hiCandidates = [errMax >= 0 ? errMax : undefined, errMin < 0 ? errMin : undefined].filter((x): x is number => x !== undefined);
    const mdev4: Range = [mdevUpd(est.mdev4[0], errNearest), Math.max(...hiCandidates.map((x) => mdevUpd(est.mdev4[1], x)))];
    const after = (mdev: number, mdevMax: number, rttvar: number) => {
      let mx = mdevMax;
      let rv = rttvar;
      if (mdev > mx) {
        mx = mdev;
        if (mx > rv) rv = mx;
      }
      if (mx < rv) rv -= (rv - mx) >> 2;
      return rv;
    };
    const rttvar: Range = [after(mdev4[0], est.mdevMax[0], est.rttvar[0]), after(mdev4[1], est.mdevMax[1], est.rttvar[1])];
    est = { srtt8, mdev4, mdevMax: [rtoMinUs, rtoMinUs], rttvar, samples: est.samples + 1 };
  }
  return est;
}

/** The kernel's integer estimator on exact samples (what `estimateRtt` must equal on points). */
export function estimateRttExact(samples: readonly number[], rtoMinUs: number): { srtt8: number; mdev4: number; rttvar: number } {
  let st: ReturnType<typeof exactStep> | undefined;
  samples.forEach((m, i) => (st = exactStep(st, m, rtoMinUs, i > 0)));
  if (!st) throw new RangeError('no samples');
  return st;
}

export interface TcpInfoPrediction {
  /** tcpi_rtt (µs). */
  rttUs: Range;
  /** tcpi_rttvar (µs): mdev/4. */
  rttvarUs: Range;
  /** tcpi_rto (µs): whole jiffies. */
  rtoUs: Range;
}

/** What TCP_INFO shows after the estimate: rtt, rttvar, and the RTO in whole jiffies. */
export function tcpInfoOf(est: RttEstimate, rtoMaxMs: number, clock: KernelClock): TcpInfoPrediction {
  const rtoMaxJ = msToJiffies(rtoMaxMs, clock.hz);
  const rto = (srtt8: number, rttvar: number) => jiffiesToMs(Math.min(usToJiffies((srtt8 >> 3) + rttvar, clock), rtoMaxJ), clock.hz) * 1000;
  return {
    rttUs: [est.srtt8[0] >> 3, est.srtt8[1] >> 3],
    rttvarUs: [est.mdev4[0] >> 2, est.mdev4[1] >> 2],
    rtoUs: [rto(est.srtt8[0], est.rttvar[0]), rto(est.srtt8[1], est.rttvar[1])],
  };
}

/**
 * An RTT sample taken from the timestamp echo (tcp_ack_update_rtt → tcp_rtt_tsopt_us): when the
 * segment acknowledged was retransmitted, Karn's rule forbids the sequence sample and the kernel
 * uses TSecr instead — in whole milliseconds of the TCP timestamp clock (TCP_TS_HZ 1000), at
 * least 1. Each end of the true delay can come out a millisecond lower or higher.
 */
export function tsSampleUs(delayUs: Range): Range {
  return [Math.max(1, Math.floor(delayUs[0] / 1000)) * 1000, Math.max(1, Math.ceil(delayUs[1] / 1000)) * 1000];
}

export interface LatencyOptions {
  /** Added one-way delay toward the server and toward the client, ms (0: that direction is not delayed). */
  toServerMs: number;
  toClientMs: number;
  /** Each hold is the delay ± this much (uniform; never reordered), ms. */
  jitterMs: number;
  /** The delay is in force before the handshake, or only from after it (a latency spike). */
  when: 'connect' | 'established';
  /** Request/response exchanges after the handshake, one segment each way. */
  rounds: number;
}

export interface RoundPrediction {
  /** Retransmission timers that fire before the answer arrives (all spurious: nothing was lost). */
  firings: Range;
  /** …of which loss probes, and RTOs. */
  probes: Range;
  rtos: Range;
  /** The RTO and the loss probe's timeout the request goes out with, ms. */
  rtoMs: Range;
  ptoMs: Range;
  /** The RTT sample its answer gives (µs): a sequence sample, or the timestamp's whole ms after a retransmission. */
  sampleUs: Range;
}

export interface LatencyPrediction {
  /** A round trip as the kernel measures it (µs): the holds, plus a wake-up per hold and one for the answering side. */
  sampleUs: Range;
  /** connect()'s duration, ms. */
  connectMs: Range;
  /** Each request/response (the read after the write), ms. */
  roundMs: Range;
  /** TCP_INFO right after connect(), and after the last round. */
  afterConnect: TcpInfoPrediction;
  afterRounds: TcpInfoPrediction;
  /** Each request/response: what its timers do while it waits. */
  rounds: RoundPrediction[];
  /** Over all rounds: spurious retransmissions, loss probes, RTOs (TcpRetransSegs, TCPLossProbes, TCPTimeouts). */
  spurious: { firings: Range; probes: Range; rtos: Range };
}

/**
 * The kernel's view of a path whose packets the delayer holds (harness-probe delay on NFQUEUE):
 * - the handshake and each request/response take one round trip: the holds (delay ± jitter per
 *   delayed direction), each released up to a wake-up late (two jiffies, `wakeupSlackMs`), plus a
 *   wake-up for the side that answers (the server's application, the kernel's ACK);
 * - each request waits for its answer with two timers armed (retransmit.ts): the loss probe at
 *   2·srtt + TCP_RTO_MIN and the RTO at srtt + rttvar. With the delay in force from the first SYN
 *   the handshake's sample makes both exceed the round trip (RTO = srtt + max(2·srtt, rto_min));
 *   only a jitter wider than rto_min can beat them;
 * - with the delay added after the handshake (`established`), the request goes out with the bare
 *   veth's RTO (rto_min + µs, 204 ms at HZ=250) and a loss probe as early: when the round trip
 *   exceeds them, the probe and RTO firings go out before the answer comes back — spurious
 *   retransmissions of a segment that was never lost. The answer acknowledges a retransmitted
 *   segment, so Karn's rule leaves only the timestamp sample (whole ms); one sample moves srtt
 *   only an eighth of the way, so the next requests' loss probes (2·srtt + 200 ms) may still fire
 *   early, until srtt has caught up.
 */
export function predictLatency(o: LatencyOptions, data: DataSysctls, clock: KernelClock, wakeMs: number): LatencyPrediction {
  const dirs = [o.toServerMs, o.toClientMs].filter((d) => d > 0);
  const lo = dirs.reduce((a, d) => a + (d - o.jitterMs), 0);
  const hi = dirs.reduce((a, d) => a + d + o.jitterMs, 0) + (dirs.length + 1) * wakeMs;
  const sampleUs: Range = [Math.round(lo * 1000), Math.round(hi * 1000)];
  const rtoMinUs = Math.round(data.rtoMinMs * 1000);
  const jiffyUs = 1_000_000 / clock.hz;
  // With `established`, the handshake runs on the bare veth: a sample under a jiffy (the premise of initialRtoJiffies).
  const handshake: Range = o.when === 'connect' ? sampleUs : [1, jiffyUs - 1];
  const samples: Range[] = [handshake];
  const rounds: RoundPrediction[] = [];
  for (let k = 0; k < o.rounds; k++) {
    const est = estimateRtt(samples, rtoMinUs);
    const info = tcpInfoOf(est, data.rtoMaxMs, clock);
    const rtoJ: Range = [usToJiffies(info.rtoUs[0], clock), usToJiffies(info.rtoUs[1], clock)];
    // Earliest timers: the least srtt and RTO, on time; latest: the greatest, as late as the wheel allows.
    const early = { rtoJiffies: rtoJ[0], srttUs: info.rttUs[0] };
    const lateO = { rtoJiffies: rtoJ[1], srttUs: info.rttUs[1] };
    const sp = firingsBefore({ onTime: retransmitFirings(data, early, clock, 'none'), late: retransmitFirings(data, lateO, clock, 'max') }, [lo, hi]);
    const ts = tsSampleUs(sampleUs);
    const answer: Range = sp.firings[1] === 0 ? sampleUs : sp.firings[0] > 0 ? ts : [Math.min(ts[0], sampleUs[0]), Math.max(ts[1], sampleUs[1])];
    rounds.push({
      ...sp,
      rtoMs: [rtoJ[0] * (1000 / clock.hz), rtoJ[1] * (1000 / clock.hz)],
      ptoMs: [ptoJiffies(early, clock) * (1000 / clock.hz), ptoJiffies(lateO, clock) * (1000 / clock.hz)],
      sampleUs: answer,
    });
    samples.push(answer);
  }
  const sum = (f: (r: RoundPrediction) => Range): Range => [rounds.reduce((a, r) => a + f(r)[0], 0), rounds.reduce((a, r) => a + f(r)[1], 0)];
  return {
    sampleUs,
    connectMs: o.when === 'connect' ? [lo, hi + wakeMs] : [0, 2 * wakeMs],
    roundMs: [lo, hi + wakeMs],
    afterConnect: tcpInfoOf(estimateRtt([handshake], rtoMinUs), data.rtoMaxMs, clock),
    afterRounds: tcpInfoOf(estimateRtt(samples, rtoMinUs), data.rtoMaxMs, clock),
    rounds,
    spurious: { firings: sum((r) => r.firings), probes: sum((r) => r.probes), rtos: sum((r) => r.rtos) },
  };
}
