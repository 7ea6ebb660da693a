/**
 * The fault's iptables rules, read back from the Result's `fault.applied` lines, and matched
 * against captured packets: which segments a DROP or REJECT rule swallowed. A capture alone cannot
 * tell: tcpdump's tap sits before netfilter on the way in (__netif_receive_skb, then ip_rcv and
 * the INPUT hook), so a packet dropped by the receiver's INPUT chain is in BOTH captures; and
 * after netfilter on the way out (dev_queue_xmit), so one dropped by the sender's OUTPUT chain is
 * in NEITHER. Matching the rule against the packet, cross-checked with the rule's hit counter,
 * says which arrows were lost.
 *
 * Only the matches the project's rule builder (faults/iptables.ts) writes are understood: -p, -s,
 * -d, --sport, --dport, --syn, --tcp-flags, -m statistic (cannot be replayed: marked uncertain).
 */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, type Packet } from '../core/pcap-file.js';

export interface ParsedRule {
  name: string;
  side: 'client' | 'server';
  hook: 'INPUT' | 'OUTPUT';
  /** The argv after the hook, as shown. */
  spec: string;
  proto: 'tcp' | 'all';
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** `--tcp-flags MASK SET` (or --syn): of the bits in mask, exactly those in set. */
  flags?: { mask: number; set: number };
  /** `-m statistic`: which packets it took cannot be replayed from a capture. */
  random: boolean;
  target: 'DROP' | 'REJECT' | 'ACCEPT';
  rejectWith?: string;
}

const FLAG_BITS: Record<string, number> = { FIN: TCP_FIN, SYN: TCP_SYN, RST: TCP_RST, PSH: TCP_PSH, ACK: TCP_ACK, URG: TCP_URG };
const ALL = TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG;

function flagMask(s: string): number {
  if (s === 'ALL') return ALL;
  if (s === 'NONE') return 0;
  return s.split(',').reduce((m, f) => m | (FLAG_BITS[f] ?? 0), 0);
}

/** `rule drop-syn: INPUT -p tcp --dport 9000 --syn … -j DROP (server)` → the rule; undefined for other lines. */
export function parseAppliedRule(line: string): ParsedRule | undefined {
  const m = /^rule ([a-z0-9-]+): (INPUT|OUTPUT) (.*) \((client|server)\)$/.exec(line);
  if (!m) return undefined;
  const argv = m[3]!.split(' ');
  const r: ParsedRule = { name: m[1]!, hook: m[2] as ParsedRule['hook'], side: m[4] as ParsedRule['side'], spec: m[3]!, proto: 'all', random: false, target: 'DROP' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i] ?? '';
    switch (a) {
      case '-p':
        r.proto = next() === 'tcp' ? 'tcp' : 'all';
        break;
      case '-s':
        r.src = next();
        break;
      case '-d':
        r.dst = next();
        break;
      case '--sport':
        r.sport = Number(next());
        break;
      case '--dport':
        r.dport = Number(next());
        break;
      case '--syn':
        r.flags = { mask: TCP_SYN | TCP_RST | TCP_ACK | TCP_FIN, set: TCP_SYN };
        break;
      case '--tcp-flags': {
        const mask = flagMask(next());
        r.flags = { mask, set: flagMask(next()) };
        break;
      }
      case 'statistic':
        r.random = true;
        break;
      case '--comment':
        next();
        break;
      case '-j': {
        const t = next();
        r.target = t === 'REJECT' ? 'REJECT' : t === 'ACCEPT' ? 'ACCEPT' : 'DROP';
        break;
      }
      case '--reject-with':
        r.rejectWith = next();
        break;
    }
  }
  return r;
}

function addrMatches(spec: string | undefined, addr: string): boolean {
  if (!spec) return true;
  const [net, bitsRaw] = spec.split('/');
  if (bitsRaw === undefined || !net!.includes('.') || !addr.includes('.')) return net === addr;
  const bits = Number(bitsRaw);
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const shift = 2 ** (32 - bits);
  return Math.floor(n(net!) / shift) === Math.floor(n(addr) / shift);
}

/** Whether the rule's matches select this packet (the hook and side are the caller's business). */
export function ruleMatches(r: ParsedRule, p: Packet): boolean {
  if (r.proto === 'tcp' && !p.tcp) return false;
  if (!addrMatches(r.src, p.src) || !addrMatches(r.dst, p.dst)) return false;
  if (r.sport !== undefined && p.tcp?.sport !== r.sport) return false;
  if (r.dport !== undefined && p.tcp?.dport !== r.dport) return false;
  if (r.flags && (!p.tcp || (p.tcp.flags & r.flags.mask) !== r.flags.set)) return false;
  return true;
}
