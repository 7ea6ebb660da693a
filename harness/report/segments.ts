/**
 * What went over the wire, from the captures of both namespaces, on the Result's time axis: each
 * TCP segment (or ICMP message) between client and target once, with when the sender's capture
 * saw it leave and the receiver's saw it arrive, whether it was lost, and whether it was a
 * retransmission. Pure: the page generator reads the files and hands the packets in.
 *
 * Lost means either of two things, both shown with their evidence:
 *  - a fault's DROP/REJECT rule took it (see rule-match.ts for why a capture alone cannot tell):
 *    of the packets the rule matches, the last `hits` ones (the rule counter's count; a rule added
 *    mid-run takes the later ones);
 *  - it was seen in the sender's capture and never in the receiver's.
 *
 * Time: pcap stamps are CLOCK_REALTIME, the Result's t = 0 is the first client step on the probe's
 * CLOCK_MONOTONIC. The first connect() step sends its SYN inside the syscall, so the client
 * capture's first SYN to the target is placed at that step's startMs; both captures are stamped by
 * the same kernel clock, so one offset serves both. That places packets early by the time from the
 * syscall's start to the SYN: measured here, fin-drop's FIN lands 0.06-0.07 ms before close()
 * started; the watcher never sees a retransmission before its placed time (suites/report.test.ts).
 */
import type { Result } from '../verdict/result.js';
import { flagNames, TCP_FIN, TCP_SYN, type Packet } from '../core/pcap-file.js';
import { parseAppliedRule, ruleMatches, type ParsedRule } from './rule-match.js';

export type Dir = 'c2s' | 's2c';
export type CaptureSide = 'client' | 'server';

export interface Segment {
  /** Order on the wire (by first sighting). */
  i: number;
  dir: Dir;
  /** When the sender's capture saw it leave / the receiver's saw it arrive, ms on the Result's axis. */
  sentMs?: number;
  recvMs?: number;
  /** sentMs, or recvMs when only the receiver saw it. */
  tMs: number;
  packet: Packet;
  /** The client's port of the connection it belongs to (several connections: several ports). */
  clientPort?: number;
  /** "SYN", "FIN,ACK", "ICMP port unreachable". */
  label: string;
  /** Sequence and acknowledgement numbers relative to each side's initial sequence number. */
  seqRel?: number;
  ackRel?: number;
  seen: 'both' | 'sender' | 'receiver';
  lost?: { why: string; rule?: string };
  /** Sends sequence space already sent (a SYN, FIN or data resent). */
  retrans: boolean;
}

export interface RuleView {
  rule: ParsedRule;
  /** The rule's packet counter at the end of the run. */
  hits: number;
  /** Drawn segments the rule matches. */
  matched: number;
  /** Of those, drawn as lost because of it. */
  lost: number;
  /** What the drawing can and cannot show of this rule. */
  note: string;
}

export interface Alignment {
  method: 'first-syn' | 'first-packet' | 'none';
  /** The pcap time (µs since the epoch) placed at `atMs` on the Result's axis. */
  pcapUs: number;
  atMs: number;
}

export interface Sequence {
  clientAddr?: string;
  serverAddr: string;
  segments: Segment[];
  rules: RuleView[];
  alignment: Alignment;
  /** Packets of the captures that are not between client and target (other hosts), left out. */
  otherPackets: number;
}

function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1';
}

function key(p: Packet): string {
  const l4 = p.tcp ? `${p.tcp.sport}|${p.tcp.dport}|${p.tcp.seq}|${p.tcp.ack}|${p.tcp.flags}|${p.tcp.len}` : p.icmp ? `icmp|${p.icmp.type}|${p.icmp.code}` : '';
  return `${p.src}|${p.dst}|${p.proto}|${p.ipId}|${l4}`;
}

const ICMP_UNREACH: Record<number, string> = {
  0: 'net unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  9: 'net prohibited',
  10: 'host prohibited',
  13: 'admin prohibited',
};

function labelOf(p: Packet): string {
  if (p.tcp) return flagNames(p.tcp.flags);
  if (p.icmp) {
    if (p.proto === 1 && p.icmp.type === 3) return `ICMP ${ICMP_UNREACH[p.icmp.code] ?? `unreachable (code ${p.icmp.code})`}`;
    return `ICMP${p.proto === 58 ? 'v6' : ''} type ${p.icmp.type} code ${p.icmp.code}`;
  }
  return `IP proto ${p.proto}`;
}

/** Sequence space a TCP segment occupies: its payload, plus one for SYN and one for FIN (RFC 793 §3.3). */
function seqSpace(p: Packet): number {
  const t = p.tcp!;
  return t.len + (t.flags & TCP_SYN ? 1 : 0) + (t.flags & TCP_FIN ? 1 : 0);
}

function alignment(r: Result, clientPackets: readonly Packet[], serverAddr: string): Alignment {
  const connect = r.steps.find((s) => s.op === 'connect');
  const firstSyn = clientPackets.find((p) => p.dst === serverAddr && p.tcp && (p.tcp.flags & 0x12) === TCP_SYN);
  if (connect && firstSyn) return { method: 'first-syn', pcapUs: firstSyn.tsUs, atMs: connect.startMs };
  const first = clientPackets[0];
  if (first) return { method: 'first-packet', pcapUs: first.tsUs, atMs: 0 };
  return { method: 'none', pcapUs: 0, atMs: 0 };
}

/** The segments between client and target, from the captures of each side (either may be missing). */
export function buildSequence(r: Result, captures: Partial<Record<CaptureSide, readonly Packet[]>>): Sequence {
  const serverAddr = r.target.address;
  const relevant = (ps: readonly Packet[] | undefined) => (ps ?? []).filter((p) => !isLoopback(p.src) && !isLoopback(p.dst));
  const client = relevant(captures.client);
  const server = relevant(captures.server);
  const between = (p: Packet) => p.src === serverAddr || p.dst === serverAddr;
  const otherPackets = [...client, ...server].filter((p) => !between(p)).length;
  const align = alignment(r, client.length ? client : server, serverAddr);
  const toMs = (us: number) => Math.round((align.atMs + (us - align.pcapUs) / 1000) * 1000) / 1000;

  // Pair each packet the sender saw with the same packet the receiver saw (first unmatched one
  // with the same fields, IP id included, so identical retransmissions pair in order).
  type Draft = Omit<Segment, 'i' | 'tMs' | 'label' | 'retrans' | 'seen'>;
  const drafts: Draft[] = [];
  for (const dir of ['c2s', 's2c'] as const) {
    const senderSide = dir === 'c2s' ? client : server;
    const receiverSide = dir === 'c2s' ? server : client;
    const outbound = (p: Packet) => between(p) && (dir === 'c2s' ? p.dst === serverAddr : p.src === serverAddr);
    const waiting = new Map<string, Packet[]>();
    for (const p of receiverSide.filter(outbound)) waiting.set(key(p), [...(waiting.get(key(p)) ?? []), p]);
    for (const p of senderSide.filter(outbound)) {
      const q = waiting.get(key(p));
      const got = q?.shift();
      drafts.push({ dir, packet: p, sentMs: toMs(p.tsUs), ...(got ? { recvMs: toMs(got.tsUs) } : {}) });
    }
    for (const rest of waiting.values()) for (const p of rest) drafts.push({ dir, packet: p, recvMs: toMs(p.tsUs) });
  }
  const segments: Segment[] = drafts
    .map((d) => ({ ...d, tMs: d.sentMs ?? d.recvMs!, label: labelOf(d.packet), retrans: false, seen: d.sentMs === undefined ? 'receiver' : d.recvMs === undefined ? 'sender' : 'both' }) as Segment)
    .sort((a, b) => a.tMs - b.tMs || (a.recvMs ?? a.tMs) - (b.recvMs ?? b.tMs))
    .map((s, i) => ({ ...s, i }));
  const clientAddr = segments.find((s) => s.dir === 'c2s')?.packet.src ?? segments.find((s) => s.dir === 's2c')?.packet.dst;

  // Connections, relative sequence numbers (from each direction's SYN, else its first segment), retransmissions.
  const isn = new Map<string, number>();
  const highest = new Map<string, number>();
  for (const s of segments) {
    const t = s.packet.tcp;
    if (t) s.clientPort = s.dir === 'c2s' ? t.sport : t.dport;
    else if (s.packet.icmp?.quoted?.sport !== undefined) s.clientPort = s.dir === 's2c' ? s.packet.icmp.quoted.sport : s.packet.icmp.quoted.dport;
    if (!t) continue;
    const k = `${s.clientPort}|${s.dir}`;
    if (!isn.has(k) || (t.flags & TCP_SYN && !highest.has(k))) isn.set(k, t.seq);
  }
  for (const s of segments) {
    const t = s.packet.tcp;
    if (!t) continue;
    const own = isn.get(`${s.clientPort}|${s.dir}`)!;
    const peer = isn.get(`${s.clientPort}|${s.dir === 'c2s' ? 's2c' : 'c2s'}`);
    s.seqRel = (t.seq - own) >>> 0;
    if (t.flags & 0x10 && peer !== undefined) s.ackRel = (t.ack - peer) >>> 0;
    const k = `${s.clientPort}|${s.dir}`;
    const space = seqSpace(s.packet);
    const end = s.seqRel + space;
    const hi = highest.get(k);
    if (space > 0 && hi !== undefined && end <= hi) s.retrans = true;
    highest.set(k, Math.max(hi ?? 0, end));
  }

  const rules = attributeRules(r, segments);
  for (const s of segments) {
    if (!s.lost && s.seen === 'sender') s.lost = { why: `seen leaving the ${s.dir === 'c2s' ? 'client' : 'server'}, never arriving at the ${s.dir === 'c2s' ? 'server' : 'client'}` };
  }
  return { ...(clientAddr ? { clientAddr } : {}), serverAddr, segments, rules, alignment: align, otherPackets };
}

function attributeRules(r: Result, segments: Segment[]): RuleView[] {
  const out: RuleView[] = [];
  const claimed = new Set<number>();
  for (const line of r.fault.applied) {
    const rule = parseAppliedRule(line);
    if (!rule) continue;
    const hits = r.fault.rulesHit[rule.name] ?? 0;
    const inbound: Dir = rule.side === 'server' ? 'c2s' : 's2c';
    // INPUT sees what arrives at the rule's side; OUTPUT what leaves it (and is captured only if let through).
    const candidates = segments.filter((s) =>
      rule.hook === 'INPUT' ? s.dir === inbound && s.seen !== 'sender' : s.dir !== inbound && s.seen !== 'receiver',
    );
    const matched = candidates.filter((s) => !claimed.has(s.i) && ruleMatches(rule, s.packet));
    let lost = 0;
    let note: string;
    if (rule.target === 'ACCEPT') {
      note = `counts packets, lets them through: ${hits} counted, ${matched.length} drawn`;
    } else if (rule.hook === 'OUTPUT') {
      note = `${hits} packet${hits === 1 ? '' : 's'} dropped in the ${rule.side}'s OUTPUT chain, before its capture point: not in any capture, not drawn`;
    } else if (rule.random && matched.length !== hits) {
      note = `matches at random: ${hits} of the ${matched.length} drawn packets it matches were dropped, which ones a capture cannot tell`;
    } else {
      const taken = matched.slice(Math.max(0, matched.length - hits));
      for (const s of taken) {
        s.lost = {
          why: rule.target === 'REJECT' ? `rejected by rule ${rule.name} (${rule.side} INPUT, ${rule.rejectWith ?? 'icmp-port-unreachable'})` : `dropped by rule ${rule.name} (${rule.side} INPUT)`,
          rule: rule.name,
        };
        claimed.add(s.i);
      }
      lost = taken.length;
      note =
        hits === taken.length
          ? `${hits} hit${hits === 1 ? '' : 's'}, ${lost} drawn as lost`
          : `${hits} hits, ${lost} drawn as lost: ${hits - lost} not in the captures`;
    }
    out.push({ rule, hits, matched: matched.length, lost, note });
  }
  return out;
}
