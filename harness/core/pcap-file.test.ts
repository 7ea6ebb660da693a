import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { flagNames, PcapFormatError, readPcap, TCP_ACK, TCP_SYN } from './pcap-file.js';

const FIXTURES = join(import.meta.dirname, '../report/fixtures');

/** An IPv4 + TCP header (20 + 20 bytes) with `payload` bytes announced in the IP length but cut by the snap length. */
function ipv4Tcp(o: { src: number[]; dst: number[]; sport: number; dport: number; seq: number; ack: number; flags: number; payload?: number; id?: number }): Buffer {
  const b = Buffer.alloc(40);
  b[0] = 0x45;
  b.writeUInt16BE(40 + (o.payload ?? 0), 2);
  b.writeUInt16BE(o.id ?? 7, 4);
  b[8] = 64;
  b[9] = 6;
  Buffer.from(o.src).copy(b, 12);
  Buffer.from(o.dst).copy(b, 16);
  b.writeUInt16BE(o.sport, 20);
  b.writeUInt16BE(o.dport, 22);
  b.writeUInt32BE(o.seq, 24);
  b.writeUInt32BE(o.ack, 28);
  b[32] = 5 << 4;
  b[33] = o.flags;
  b.writeUInt16BE(64240, 34);
  return b;
}

function file(opts: { linktype: number; le?: boolean; nanos?: boolean }, records: { sec: number; frac: number; data: Buffer }[]): Buffer {
  const le = opts.le ?? true;
  const u32 = (b: Buffer, v: number, o: number) => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const h = Buffer.alloc(24);
  u32(h, opts.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u32(h, 256, 16);
  u32(h, opts.linktype, 20);
  return Buffer.concat([
    h,
    ...records.map((r) => {
      const rh = Buffer.alloc(16);
      u32(rh, r.sec, 0);
      u32(rh, r.frac, 4);
      u32(rh, r.data.length, 8);
      u32(rh, r.data.length, 12);
      return Buffer.concat([rh, r.data]);
    }),
  ]);
}

function sll2(ethertype: number, ip: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(ethertype, 0);
  return Buffer.concat([h, ip]);
}

const syn = ipv4Tcp({ src: [198, 18, 0, 2], dst: [198, 18, 0, 1], sport: 40000, dport: 9000, seq: 0xfffffff0, ack: 0, flags: TCP_SYN, id: 99 });

describe('readPcap', () => {
  test('a real capture of syn-drop (tcpdump -i any: LINUX_SLL2): the loopback marker, then six identical SYNs with their own IP ids', () => {
    const ps = readPcap(readFileSync(join(FIXTURES, 'syn-drop-client.pcap')));
    expect(ps).toHaveLength(8);
    expect(ps[0]).toMatchObject({ src: '127.0.0.1', dst: '127.0.0.1', proto: 6 });
    const syns = ps.slice(2);
    expect(syns.every((p) => p.src === '198.18.0.2' && p.dst === '198.18.0.1' && p.tcp?.flags === TCP_SYN && p.tcp.dport === 9000)).toBe(true);
    expect(new Set(syns.map((p) => p.tcp!.seq)).size).toBe(1);
    expect(new Set(syns.map((p) => p.ipId)).size).toBe(6);
    // Stamps are µs since the epoch, in order.
    expect(syns[1]!.tsUs - syns[0]!.tsUs).toBeGreaterThan(900_000);
  });

  test('TCP fields, the payload length from the IP header (not the snap length), 32-bit sequence numbers', () => {
    const data = ipv4Tcp({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 9000, dport: 40000, seq: 4_000_000_000, ack: 12345, flags: TCP_ACK | 0x08, payload: 1000 });
    const [p] = readPcap(file({ linktype: 276 }, [{ sec: 1_700_000_000, frac: 250, data: sll2(0x0800, data) }]));
    expect(p).toMatchObject({ tsUs: 1_700_000_000_000_250, src: '10.0.0.1', dst: '10.0.0.2', ipId: 7, tcp: { sport: 9000, dport: 40000, seq: 4_000_000_000, ack: 12345, len: 1000, win: 64240 } });
    expect(flagNames(p!.tcp!.flags)).toBe('PSH,ACK');
  });

  test('nanosecond and big-endian files, Ethernet and LINUX_SLL link layers', () => {
    const eth = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), syn]);
    const sll = Buffer.concat([Buffer.alloc(14), Buffer.from([0x08, 0x00]), syn]);
    const ns = readPcap(file({ linktype: 1, nanos: true }, [{ sec: 2, frac: 5_000_999, data: eth }]));
    expect(ns[0]).toMatchObject({ tsUs: 2_005_000, ipId: 99, tcp: { seq: 0xfffffff0 } });
    const be = readPcap(file({ linktype: 113, le: false }, [{ sec: 3, frac: 1, data: sll }]));
    expect(be[0]).toMatchObject({ tsUs: 3_000_001, src: '198.18.0.2', tcp: { flags: TCP_SYN } });
  });

  test('ICMP errors carry the quoted TCP header: whose SYN was refused', () => {
    const icmp = Buffer.alloc(20 + 8 + 28);
    icmp[0] = 0x45;
    icmp.writeUInt16BE(icmp.length, 2);
    icmp[9] = 1;
    Buffer.from([198, 18, 0, 1]).copy(icmp, 12);
    Buffer.from([198, 18, 0, 2]).copy(icmp, 16);
    icmp[20] = 3;
    icmp[21] = 3;
    syn.subarray(0, 28).copy(icmp, 28);
    const [p] = readPcap(file({ linktype: 276 }, [{ sec: 1, frac: 0, data: sll2(0x0800, icmp) }]));
    expect(p!.icmp).toEqual({ type: 3, code: 3, quoted: { src: '198.18.0.2', dst: '198.18.0.1', proto: 6, sport: 40000, dport: 9000, seq: 0xfffffff0 } });
  });

  test('IPv6 TCP, addresses in their short form', () => {
    const ip = Buffer.alloc(40 + 20);
    ip[0] = 0x60;
    ip.writeUInt16BE(20, 4);
    ip[6] = 6;
    ip.writeUInt16BE(0xfd00, 8);
    ip[23] = 1;
    ip.writeUInt16BE(0xfd00, 24);
    ip[39] = 2;
    ip.writeUInt16BE(1234, 40);
    ip[52] = 5 << 4;
    ip[53] = TCP_SYN;
    const [p] = readPcap(file({ linktype: 276 }, [{ sec: 1, frac: 0, data: sll2(0x86dd, ip) }]));
    expect(p).toMatchObject({ src: 'fd00::1', dst: 'fd00::2', tcp: { sport: 1234, flags: TCP_SYN, len: 0 } });
  });

  test('non-IP frames are skipped, a truncated last record ends the read, foreign files are refused', () => {
    const arp = sll2(0x0806, Buffer.alloc(28));
    const whole = file({ linktype: 276 }, [
      { sec: 1, frac: 0, data: arp },
      { sec: 1, frac: 1, data: sll2(0x0800, syn) },
      { sec: 1, frac: 2, data: sll2(0x0800, syn) },
    ]);
    expect(readPcap(whole)).toHaveLength(2);
    expect(readPcap(whole.subarray(0, whole.length - 5))).toHaveLength(1);
    expect(readPcap(Buffer.alloc(0))).toEqual([]);
    expect(() => readPcap(Buffer.from('0a0d0d0a00000000000000000000000000000000000000000000', 'hex'))).toThrow(PcapFormatError);
    expect(() => readPcap(file({ linktype: 105 }, [{ sec: 1, frac: 0, data: syn }]))).toThrow(/link type 105/);
  });
});
