/**
 * Reads the packets of a classic pcap file — for the report's pictures and a capture's packet
 * count: time, addresses, and the TCP or ICMP header fields. Written here rather than taken from
 * npm: the registry's pcap readers either bind libpcap natively (`pcap`, unmaintained since 2020,
 * needs a compiler) or stop at the record layout (`pcap-parser`, 2013) and none decodes LINKTYPE_LINUX_SLL2 (276), which is what
 * `tcpdump -i any` writes here. The few fields needed are fixed offsets (RFC 791, 793, 792, 8200;
 * https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html).
 */

export interface TcpHeader {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** The flag byte: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20. */
  flags: number;
  win: number;
  /** Payload bytes (from the IP length: the capture's snap length cuts the bytes, not the count). */
  len: number;
}

export interface IcmpHeader {
  type: number;
  code: number;
  /** The datagram an ICMP error quotes (RFC 792): whose packet it answers. */
  quoted?: { src: string; dst: string; proto: number; sport?: number; dport?: number; seq?: number };
}

export interface Packet {
  /** Capture time, µs since the epoch (the kernel's CLOCK_REALTIME stamp). */
  tsUs: number;
  src: string;
  dst: string;
  /** IP protocol number: 6 TCP, 1 ICMP, 58 ICMPv6. */
  proto: number;
  /** IPv4 identification (0 for IPv6): tells identical retransmissions apart. */
  ipId: number;
  tcp?: TcpHeader;
  icmp?: IcmpHeader;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

const FLAG_NAMES: [number, string][] = [
  [TCP_SYN, 'SYN'],
  [TCP_FIN, 'FIN'],
  [TCP_RST, 'RST'],
  [TCP_PSH, 'PSH'],
  [TCP_URG, 'URG'],
  [TCP_ACK, 'ACK'],
];

/** "SYN", "SYN,ACK", "FIN,ACK", "PSH,ACK": the names Wireshark shows, in that order. */
export function flagNames(flags: number): string {
  return FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n).join(',') || 'none';
}

const LINKTYPE_NULL = 0;
const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;

export class PcapFormatError extends Error {}

/** Every IPv4/IPv6 packet of the file; other records (ARP, truncated headers) are skipped. A truncated last record ends the read. */
export function readPcap(buf: Buffer): Packet[] {
  if (buf.length < 24) return [];
  const magicLE = buf.readUInt32LE(0);
  const magicBE = buf.readUInt32BE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const magic = le ? magicLE : magicBE;
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new PcapFormatError(`not a classic pcap file (magic 0x${magicLE.toString(16)})`);
  const nanos = magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20) & 0x0fffffff;
  const out: Packet[] = [];
  for (let off = 24; off + 16 <= buf.length; ) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const data = off + 16;
    if (data + incl > buf.length) break;
    const tsUs = sec * 1_000_000 + (nanos ? Math.floor(frac / 1000) : frac);
    const ip = linkPayload(buf, data, incl, linktype);
    if (ip) {
      const p = decodeIp(buf, ip.start, data + incl, ip.ethertype, tsUs);
      if (p) out.push(p);
    }
    off = data + incl;
  }
  return out;
}

/** Where the IP header starts in a record, and its ethertype; undefined for non-IP frames. */
function linkPayload(buf: Buffer, start: number, len: number, linktype: number): { start: number; ethertype: number } | undefined {
  switch (linktype) {
    case LINKTYPE_LINUX_SLL2:
      return len >= 20 ? { start: start + 20, ethertype: buf.readUInt16BE(start) } : undefined;
    case LINKTYPE_LINUX_SLL:
      return len >= 16 ? { start: start + 16, ethertype: buf.readUInt16BE(start + 14) } : undefined;
    case LINKTYPE_ETHERNET: {
      if (len < 14) return undefined;
      let type = buf.readUInt16BE(start + 12);
      let at = start + 14;
      if (type === ETHERTYPE_VLAN && len >= 18) {
        type = buf.readUInt16BE(start + 16);
        at = start + 18;
      }
      return { start: at, ethertype: type };
    }
    case LINKTYPE_RAW:
    case LINKTYPE_NULL: {
      const at = linktype === LINKTYPE_NULL ? start + 4 : start;
      if (at >= start + len) return undefined;
      return { start: at, ethertype: buf[at]! >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4 };
    }
    default:
      throw new PcapFormatError(`link type ${linktype} is not one the report reads (LINUX_SLL2, LINUX_SLL, Ethernet, raw IP)`);
  }
}

function ipv4(buf: Buffer, o: number): string {
  return `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`;
}

function ipv6(buf: Buffer, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(o + i).toString(16));
  // The canonical short form (RFC 5952): the longest run of zero groups becomes "::".
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best[1]! && j - i > 1) best = [i, j - i];
    i = j;
  }
  if (best[0]! < 0) return groups.join(':');
  return `${groups.slice(0, best[0]).join(':')}::${groups.slice(best[0]! + best[1]!).join(':')}`;
}

function decodeIp(buf: Buffer, o: number, end: number, ethertype: number, tsUs: number): Packet | undefined {
  if (ethertype === ETHERTYPE_IPV4) {
    if (o + 20 > end || buf[o]! >> 4 !== 4) return undefined;
    const ihl = (buf[o]! & 0x0f) * 4;
    const total = buf.readUInt16BE(o + 2);
    const p: Packet = { tsUs, src: ipv4(buf, o + 12), dst: ipv4(buf, o + 16), proto: buf[o + 9]!, ipId: buf.readUInt16BE(o + 4) };
    const l4 = o + ihl;
    if (p.proto === 6) {
      const tcp = decodeTcp(buf, l4, end, total - ihl);
      if (tcp) p.tcp = tcp;
    } else if (p.proto === 1 && l4 + 8 <= end) {
      p.icmp = { type: buf[l4]!, code: buf[l4 + 1]! };
      // Errors (unreachable 3, time exceeded 11, parameter problem 12) quote the offending IPv4 header + 8 bytes.
      const q = l4 + 8;
      if ([3, 11, 12].includes(p.icmp.type) && q + 20 <= end && buf[q]! >> 4 === 4) {
        const qihl = (buf[q]! & 0x0f) * 4;
        const quoted: NonNullable<IcmpHeader['quoted']> = { src: ipv4(buf, q + 12), dst: ipv4(buf, q + 16), proto: buf[q + 9]! };
        if (quoted.proto === 6 && q + qihl + 8 <= end) {
          quoted.sport = buf.readUInt16BE(q + qihl);
          quoted.dport = buf.readUInt16BE(q + qihl + 2);
          quoted.seq = buf.readUInt32BE(q + qihl + 4);
        }
        p.icmp.quoted = quoted;
      }
    }
    return p;
  }
  if (ethertype === ETHERTYPE_IPV6) {
    if (o + 40 > end || buf[o]! >> 4 !== 6) return undefined;
    const payload = buf.readUInt16BE(o + 4);
    const p: Packet = { tsUs, src: ipv6(buf, o + 8), dst: ipv6(buf, o + 24), proto: buf[o + 6]!, ipId: 0 };
    // Extension headers are not followed: the harness's own traffic has none.
    if (p.proto === 6) {
      const tcp = decodeTcp(buf, o + 40, end, payload);
      if (tcp) p.tcp = tcp;
    } else if (p.proto === 58 && o + 48 <= end) {
      p.icmp = { type: buf[o + 40]!, code: buf[o + 41]! };
    }
    return p;
  }
  return undefined;
}

function decodeTcp(buf: Buffer, o: number, end: number, segmentLen: number): TcpHeader | undefined {
  if (o + 20 > end) return undefined;
  const dataOffset = (buf[o + 12]! >> 4) * 4;
  return {
    sport: buf.readUInt16BE(o),
    dport: buf.readUInt16BE(o + 2),
    seq: buf.readUInt32BE(o + 4),
    ack: buf.readUInt32BE(o + 8),
    flags: buf[o + 13]! & 0x3f,
    win: buf.readUInt16BE(o + 14),
    len: Math.max(0, segmentLen - dataOffset),
  };
}
