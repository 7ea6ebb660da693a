import { describe, expect, it } from 'vitest';
import { dataSysctlsFrom, initialRtoJiffies } from './data.js';
import { firstFiringAfter, predictConnectOutage, predictKeepaliveOutage, predictTransferOutage } from './outage.js';
import { predictSynTimeout, synSysctlsFrom } from './tcp.js';

const hz250 = { hz: 250 };
const veth = { rtoJiffies: initialRtoJiffies(200, hz250), srttUs: 3999 };

describe('the first firing after a heal', () => {
  const firings: [number, number][] = [[200, 232], [400, 440], [800, 860]];
  it('is the first whose window can follow the heal, up to the first that must', () => {
    expect(firstFiringAfter(firings, [300, 350])).toEqual({ survives: 'yes', through: [1, 1], throughMs: [400, 440] });
    // A heal inside a firing's window: that firing or the next.
    expect(firstFiringAfter(firings, [420, 430])).toEqual({ survives: 'yes', through: [1, 2], throughMs: [420, 860] });
    expect(firstFiringAfter(firings, [900, 950])).toEqual({ survives: 'no' });
    expect(firstFiringAfter(firings, [850, 870]).survives).toBe('either');
  });
});

describe('a request written as the network goes (tcp_retries2 default 15)', () => {
  const data = dataSysctlsFrom({});
  it('a 5 s outage: the TLP and RTOs at 0.2, 0.4, 0.8, 1.6, 3.3 s are lost; the one at 6.5 s gets through', () => {
    const p = predictTransferOutage(data, veth, hz250, [4992, 5100]);
    expect(p.firings.slice(0, 6).map((f) => f.atMs[0])).toEqual([200, 404, 812, 1628, 3260, 6524]);
    expect(p.survives).toBe('yes');
    expect(p.through).toEqual([5, 5]);
    expect(p.throughMs![0]).toBe(6524);
    // Six retransmissions (the probe and five RTOs); the original and five dropped.
    expect(p).toMatchObject({ retransSegs: [6, 6], lossProbes: [1, 1], timeouts: [5, 5], dropped: [6, 6] });
  });
  it('an outage shorter than the loss probe costs the probe\'s wait', () => {
    const p = predictTransferOutage(data, veth, hz250, [100, 150]);
    expect(p.through).toEqual([0, 0]);
    expect(p).toMatchObject({ retransSegs: [1, 1], lossProbes: [1, 1], timeouts: [0, 0], dropped: [1, 1] });
  });
  it('tcp_retries2=3 and an 8 s outage: ETIMEDOUT at ~6.5 s, every retransmission dropped', () => {
    const p = predictTransferOutage(dataSysctlsFrom({ 'net.ipv4.tcp_retries2': '3' }), veth, hz250, [7992, 8100]);
    expect(p.survives).toBe('no');
    expect(p.deadMs[0]).toBe(404 + 30 * 204);
    // The probe and 4 RTO retransmissions; the firing that gives up counts as a timeout.
    expect(p).toMatchObject({ retransSegs: [5, 5], lossProbes: [1, 1], timeouts: [5, 5], dropped: [6, 6] });
  });
});

describe('an idle connection with keepalive (1 s, 1 s, 5)', () => {
  const k = { idleS: 1, intvlS: 1, cnt: 5 };
  it('a 3.5 s outage: probes at 1, 2, 3 s lost; the one at 4 s answered', () => {
    const p = predictKeepaliveOutage(k, hz250, [3492, 3600]);
    expect(p).toMatchObject({ survives: 'yes', through: [3, 3], probes: [4, 4] });
  });
  it('cnt=2: two probes unanswered before the heal: ETIMEDOUT at 3 s', () => {
    const p = predictKeepaliveOutage({ ...k, cnt: 2 }, hz250, [3492, 3600]);
    expect(p.survives).toBe('no');
    expect(p.deadMs[0]).toBeCloseTo(3000 - 4, 5);
  });
});

describe('connect() during the outage (tcp_syn_retries 6, 4 linear timeouts)', () => {
  it('a 2.5 s outage: the SYN at 3 s completes the handshake', () => {
    const p = predictConnectOutage(synSysctlsFrom({ 'net.ipv4.tcp_syn_linear_timeouts': '4' }), hz250, [2492, 2600]);
    expect(p).toMatchObject({ survives: 'yes', through: [2, 2], synRetrans: [3, 3] });
    // The third SYN retransmission (3 linear 1 s timers) carries the handshake: the SYN model's window for it.
    expect(p.throughMs).toEqual(predictSynTimeout(synSysctlsFrom({ 'net.ipv4.tcp_syn_linear_timeouts': '4' }), hz250).retransmitWindowsMs[2]);
  });
  it('tcp_syn_retries=1: gives up at ~3 s, before a 5 s heal', () => {
    const p = predictConnectOutage(synSysctlsFrom({ 'net.ipv4.tcp_syn_retries': '1', 'net.ipv4.tcp_syn_linear_timeouts': '4' }), hz250, [4992, 5100]);
    expect(p).toMatchObject({ survives: 'no', synRetrans: [2, 2] });
  });
});
