import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom, initialRtoJiffies, predictDataTimeout } from './data.js';
import { firingsBefore, firingWindows, ptoJiffies, retransmitFirings } from './retransmit.js';

const hz250 = { hz: 250 };
const data = (retries2: number, extra: Record<string, string> = {}) => dataSysctlsFrom({ 'net.ipv4.tcp_retries2': String(retries2), ...extra });
const veth = { rtoJiffies: initialRtoJiffies(200, hz250), srttUs: 40 };

describe('retransmission firings of one unanswered segment', () => {
  it('agree with predictDataTimeout: the same RTO retransmissions, and its (phase-exact) end inside this envelope', () => {
    // predictDataTimeout walks every phase of the timer wheel; this schedule bounds each firing
    // from on-time to latest instead, so it may be wider, never narrower or elsewhere.
    for (const retries2 of [1, 3, 5, 8]) {
      const s = data(retries2);
      const p = predictDataTimeout(s, hz250);
      const early = retransmitFirings(s, veth, hz250, 'none');
      const late = retransmitFirings(s, veth, hz250, 'max');
      for (const f of [early, late]) {
        expect(f.firings[0]!.kind).toBe('tlp');
        expect(f.firings.filter((x) => x.kind === 'rto').length).toBe(p.rtoRetransmits[0]);
      }
      expect(early.deadMs).toBeLessThanOrEqual(p.windowMs[0]);
      expect(late.deadMs).toBeGreaterThanOrEqual(p.windowMs[1]);
    }
  });
  it('the loss probe waits 2·srtt + TCP_RTO_MIN with one segment out (no later than the RTO), 2·srtt + 2 jiffies with more', () => {
    // On a veth: 1 jiffy + 50 = the RTO itself (51): the probe and the first RTO are one RTO apart.
    expect(ptoJiffies(veth, hz250)).toBe(51);
    expect(ptoJiffies({ rtoJiffies: 151, srttUs: 200_000 }, hz250)).toBe(150); // 2·200 ms = 100 jiffies, + 50
    expect(ptoJiffies({ rtoJiffies: 140, srttUs: 200_000 }, hz250)).toBe(140);
    expect(ptoJiffies({ rtoJiffies: 51, srttUs: 40, packetsOut: 2 }, hz250)).toBe(3);
  });
  it('without TLP (tcp_early_retrans=0) the first firing is the RTO', () => {
    const f = retransmitFirings(data(3, { 'net.ipv4.tcp_early_retrans': '0' }), veth, hz250, 'none');
    expect(f.firings[0]).toEqual({ kind: 'rto', atMs: 200 }); // 204 ms, armed mid-jiffy: up to a jiffy early
  });
  it('counts the firings that beat an answer: fewest with late timers and an early answer, most the other way', () => {
    const w = firingWindows(data(15), veth, hz250);
    // Probe ~204, RTO #1 ~408, #2 ~816: an answer at 600 ms comes after two firings.
    expect(firingsBefore(w, [600, 624])).toEqual({ firings: [2, 2], probes: [1, 1], rtos: [1, 1] });
    // An answer right at a firing's time can come before or after it.
    expect(firingsBefore(w, [400, 420]).firings).toEqual([1, 2]);
    expect(firingsBefore(w, [100, 150]).firings).toEqual([0, 0]);
  });
});
