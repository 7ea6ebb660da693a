import { describe, expect, test } from 'vitest';
import { planRules, type Rule } from '../../faults/iptables.js';
import { TCP_ACK, TCP_FIN, TCP_SYN, type Packet } from '../core/pcap-file.js';
import { parseAppliedRule, ruleMatches } from './rule-match.js';

/** The `fault.applied` line of a rule, exactly as the engine records it (the plan step's describe). */
function appliedLine(rule: Rule): string {
  return planRules('abc123', [rule]).find((s) => s.describe.startsWith('rule '))!.describe;
}

function tcp(flags: number, o: Partial<Packet> & { sport?: number; dport?: number } = {}): Packet {
  return { tsUs: 0, src: o.src ?? '198.18.0.2', dst: o.dst ?? '198.18.0.1', proto: 6, ipId: 1, tcp: { sport: o.sport ?? 40000, dport: o.dport ?? 9000, seq: 1, ack: 1, flags, win: 1, len: 0 } };
}

describe('parseAppliedRule reads what the rule builder writes', () => {
  test('--syn, a port, DROP, side and hook', () => {
    const r = parseAppliedRule(appliedLine({ name: 'drop-syn', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: 9000, syn: true }, target: { kind: 'DROP' } }))!;
    expect(r).toMatchObject({ name: 'drop-syn', side: 'server', hook: 'INPUT', proto: 'tcp', dport: 9000, target: 'DROP', random: false });
    expect(ruleMatches(r, tcp(TCP_SYN))).toBe(true);
    expect(ruleMatches(r, tcp(TCP_SYN | TCP_ACK))).toBe(false);
    expect(ruleMatches(r, tcp(TCP_SYN, { dport: 9001 }))).toBe(false);
  });

  test('--tcp-flags ALL ACK takes bare ACKs only; FIN FIN any segment with FIN', () => {
    const bare = parseAppliedRule(appliedLine({ name: 'drop-ack', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: 9000, flags: { mask: 'ALL', set: ['ACK'] } }, target: { kind: 'DROP' } }))!;
    expect(ruleMatches(bare, tcp(TCP_ACK))).toBe(true);
    expect(ruleMatches(bare, tcp(TCP_ACK | 0x08))).toBe(false);
    const fin = parseAppliedRule(appliedLine({ name: 'drop-fin', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: 9000, flags: { mask: ['FIN'], set: ['FIN'] } }, target: { kind: 'DROP' } }))!;
    expect(ruleMatches(fin, tcp(TCP_FIN | TCP_ACK))).toBe(true);
    expect(ruleMatches(fin, tcp(TCP_ACK))).toBe(false);
    const notSyn = parseAppliedRule(appliedLine({ name: 'half-open-0', side: 'client', hook: 'OUTPUT', proto: 'tcp', tcp: { sport: 61100, dport: 9000, flags: { mask: ['SYN'], set: 'NONE' } }, target: { kind: 'DROP' } }))!;
    expect(notSyn).toMatchObject({ hook: 'OUTPUT', side: 'client', sport: 61100 });
    expect(ruleMatches(notSyn, tcp(TCP_ACK, { sport: 61100 }))).toBe(true);
    expect(ruleMatches(notSyn, tcp(TCP_SYN, { sport: 61100 }))).toBe(false);
  });

  test('a source address, REJECT with its reply, a random match, an ACCEPT counter', () => {
    const rej = parseAppliedRule(appliedLine({ name: 'reject', side: 'server', hook: 'INPUT', proto: 'tcp', src: '198.18.0.2', tcp: { dport: 9000 }, target: { kind: 'REJECT', with: 'tcp-reset' } }))!;
    expect(rej).toMatchObject({ target: 'REJECT', rejectWith: 'tcp-reset', src: '198.18.0.2' });
    expect(ruleMatches(rej, tcp(TCP_SYN))).toBe(true);
    expect(ruleMatches(rej, tcp(TCP_SYN, { src: '198.18.0.9' }))).toBe(false);
    const rnd = parseAppliedRule(appliedLine({ name: 'lossy', side: 'server', hook: 'INPUT', proto: 'all', probability: 0.5, target: { kind: 'DROP' } }))!;
    expect(rnd).toMatchObject({ proto: 'all', random: true });
    const count = parseAppliedRule(appliedLine({ name: 'rst-sent', side: 'client', hook: 'OUTPUT', proto: 'tcp', tcp: { dport: 9000, flags: { mask: ['RST'], set: ['RST'] } }, target: { kind: 'ACCEPT' } }))!;
    expect(count.target).toBe('ACCEPT');
  });

  test('lines that are not rules: chains, jumps, kills', () => {
    expect(parseAppliedRule('chain harness-abc123-in (server)')).toBeUndefined();
    expect(parseAppliedRule('jump INPUT -> harness-abc123-in (server)')).toBeUndefined();
    expect(parseAppliedRule('kill -SIGKILL server')).toBeUndefined();
  });
});
