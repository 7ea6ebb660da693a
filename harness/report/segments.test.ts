import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Result } from '../verdict/result.js';
import { readPcap, TCP_ACK, TCP_FIN, TCP_SYN, type Packet } from '../core/pcap-file.js';
import { buildSequence } from './segments.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

function fixture(name: string): { r: Result; client: Packet[]; server: Packet[] } {
  const r = JSON.parse(readFileSync(join(FIXTURES, `${name}.result.json`), 'utf8')) as Result;
  const read = (side: string) => readPcap(readFileSync(join(FIXTURES, r.captures!.find((c) => c.side === side)!.file)));
  return { r, client: read('client'), server: read('server') };
}

const C = '198.18.0.2';
const S = '198.18.0.1';

function pkt(tsUs: number, dir: 'c2s' | 's2c', flags: number, seq: number, ack = 0, len = 0, ipId = tsUs % 65536): Packet {
  const [src, dst, sport, dport] = dir === 'c2s' ? [C, S, 40000, 9000] : [S, C, 9000, 40000];
  return { tsUs, src, dst, proto: 6, ipId, tcp: { sport, dport, seq, ack, flags, win: 1000, len } };
}

/** A Result with just what buildSequence reads. */
function result(o: { applied?: string[]; rulesHit?: Record<string, number>; connectAtMs?: number } = {}): Result {
  return {
    target: { name: 'echo', backend: 'netns', address: S, port: 9000 },
    steps: o.connectAtMs === undefined ? [] : [{ op: 'connect', ok: true, errno: null, startMs: o.connectAtMs, endMs: o.connectAtMs + 1, durationMs: 1 }],
    fault: { applied: o.applied ?? [], rulesHit: o.rulesHit ?? {} },
  } as unknown as Result;
}

describe('buildSequence on real captures', () => {
  test('syn-drop: six SYNs, each in both captures, each drawn lost by drop-syn (its counter says 6), five of them retransmissions', () => {
    const { r, client, server } = fixture('syn-drop');
    const seq = buildSequence(r, { client, server });
    expect(seq.segments).toHaveLength(6);
    expect(seq.segments.every((s) => s.dir === 'c2s' && s.label === 'SYN' && s.seen === 'both' && s.lost?.rule === 'drop-syn')).toBe(true);
    expect(seq.segments.filter((s) => s.retrans)).toHaveLength(5);
    expect(seq.segments[0]!.retrans).toBe(false);
    expect(seq.rules).toHaveLength(1);
    expect(seq.rules[0]).toMatchObject({ hits: 6, matched: 6, lost: 6 });
    // The first SYN is placed at the connect() step's start; the rest follow the kernel's timer (≈1 s apart here).
    expect(seq.alignment.method).toBe('first-syn');
    expect(seq.segments[0]!.sentMs).toBe(r.steps[0]!.startMs);
    const gaps = seq.segments.slice(1).map((s, i) => s.sentMs! - seq.segments[i]!.sentMs!);
    expect(gaps.every((g) => g > 990 && g < 1100)).toBe(true);
    expect(seq.clientAddr).toBe('198.18.0.2');
    expect(seq.otherPackets).toBe(0);
  });

  test('synack-drop: the handshake both ways, the client\'s bare ACKs lost, the resent SYN-ACKs marked, the data and the RST', () => {
    const { r, client, server } = fixture('synack-drop');
    const seq = buildSequence(r, { client, server });
    const labels = seq.segments.map((s) => `${s.dir} ${s.label}${s.retrans ? ' R' : ''}${s.lost ? ' LOST' : ''}`);
    expect(labels).toEqual([
      'c2s SYN',
      's2c SYN,ACK',
      'c2s ACK LOST',
      's2c SYN,ACK R',
      'c2s ACK LOST',
      's2c SYN,ACK R',
      'c2s ACK LOST',
      'c2s PSH,ACK',
      's2c RST',
    ]);
    expect(r.fault.rulesHit['drop-ack']).toBe(3);
    const data = seq.segments[7]!;
    expect(data).toMatchObject({ seqRel: 1, ackRel: 1 });
    expect(data.packet.tcp!.len).toBe(100);
  });
});

describe('buildSequence, each rule of evidence', () => {
  test('seen leaving the sender and never arriving: lost, though no rule says so', () => {
    const seq = buildSequence(result(), { client: [pkt(1000, 'c2s', TCP_SYN, 5)], server: [] });
    expect(seq.segments[0]).toMatchObject({ seen: 'sender' });
    expect(seq.segments[0]!.lost!.why).toMatch(/never arriving at the server/);
  });

  test('a rule added mid-run: of the packets it matches, the last `hits` are the lost ones', () => {
    const applied = ['rule drop-fin: INPUT -p tcp --dport 9000 --tcp-flags FIN FIN -m comment --comment harness:x:drop-fin -j DROP (server)'];
    const fins = [1_000, 2_000, 3_000, 4_000].map((t) => pkt(t, 'c2s', TCP_FIN | TCP_ACK, 1, 1));
    const seq = buildSequence(result({ applied, rulesHit: { 'drop-fin': 2 } }), { client: fins, server: fins });
    expect(seq.segments.map((s) => Boolean(s.lost))).toEqual([false, false, true, true]);
    expect(seq.rules[0]).toMatchObject({ matched: 4, lost: 2 });
  });

  test('a DROP in the sender\'s OUTPUT chain: the packets are in no capture, the rule says how many are missing', () => {
    const applied = ['rule hold-ack: OUTPUT -p tcp --sport 40000 --dport 9000 --tcp-flags ALL ACK -m comment --comment harness:x:hold-ack -j DROP (client)'];
    const seq = buildSequence(result({ applied, rulesHit: { 'hold-ack': 3 } }), { client: [pkt(1, 'c2s', TCP_SYN, 0, 0, 0, 9)], server: [pkt(2, 'c2s', TCP_SYN, 0, 0, 0, 9)] });
    expect(seq.rules[0]!.note).toMatch(/3 packets dropped in the client's OUTPUT chain, before its capture point/);
    expect(seq.segments.some((s) => s.lost)).toBe(false);
  });

  test('more hits than matching packets in the captures: said, not hidden', () => {
    const applied = ['rule drop-syn: INPUT -p tcp --dport 9000 --syn -m comment --comment harness:x:drop-syn -j DROP (server)'];
    const syn = [pkt(10, 'c2s', TCP_SYN, 0)];
    const seq = buildSequence(result({ applied, rulesHit: { 'drop-syn': 3 } }), { client: syn, server: syn });
    expect(seq.rules[0]!.note).toBe('3 hits, 1 drawn as lost: 2 not in the captures');
  });

  test('identical retransmissions pair in order (IP ids differ), and time is aligned on the first SYN', () => {
    const client = [pkt(5_000_000, 'c2s', TCP_SYN, 100, 0, 0, 1), pkt(6_000_000, 'c2s', TCP_SYN, 100, 0, 0, 2)];
    const server = [pkt(5_000_040, 'c2s', TCP_SYN, 100, 0, 0, 1), pkt(6_000_030, 'c2s', TCP_SYN, 100, 0, 0, 2)];
    const seq = buildSequence(result({ connectAtMs: 0.25 }), { client, server });
    expect(seq.segments.map((s) => [s.sentMs, s.recvMs])).toEqual([
      [0.25, 0.29],
      [1000.25, 1000.28],
    ]);
    expect(seq.segments.map((s) => s.retrans)).toEqual([false, true]);
  });

  test('data: relative numbers from each side\'s SYN, a resent segment is a retransmission, a new one is not, pure ACKs never', () => {
    const isnC = 4_294_967_000;
    const isnS = 77;
    const c2s = (t: number, seq: number, len: number, flags = TCP_ACK | 0x08) => pkt(t, 'c2s', flags, (isnC + seq) >>> 0, isnS + 1, len);
    const both = [
      pkt(1, 'c2s', TCP_SYN, isnC),
      pkt(2, 's2c', TCP_SYN | TCP_ACK, isnS, isnC + 1),
      c2s(3, 1, 0, TCP_ACK),
      c2s(4, 1, 500),
      c2s(5, 501, 500),
      c2s(6, 1, 500),
      c2s(7, 1001, 0, TCP_ACK),
    ];
    const seq = buildSequence(result(), { client: both, server: both });
    const data = seq.segments.filter((s) => s.dir === 'c2s');
    expect(data.map((s) => [s.seqRel, s.retrans])).toEqual([
      [0, false],
      [1, false],
      [1, false],
      [501, false],
      [1, true],
      [1001, false],
    ]);
    expect(seq.segments[1]).toMatchObject({ seqRel: 0, ackRel: 1 });
  });

  test('loopback (the capture marker) and other hosts stay out of the drawing', () => {
    const lo: Packet = { ...pkt(1, 'c2s', TCP_SYN, 0), src: '127.0.0.1', dst: '127.0.0.1' };
    const other: Packet = { ...pkt(2, 'c2s', TCP_SYN, 0), dst: '198.18.0.9' };
    const seq = buildSequence(result(), { client: [lo, other, pkt(3, 'c2s', TCP_SYN, 0)], server: [] });
    expect(seq.segments).toHaveLength(1);
    expect(seq.otherPackets).toBe(1);
  });
});
