import { describe, expect, it } from 'vitest';
import { batchRules, chainName, parseRuleCounters, planRules, ruleSpec, type Rule } from './iptables.js';

const dropSyn: Rule = { name: 'drop-syn', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: 9000, syn: true }, target: { kind: 'DROP' } };

describe('iptables rule builder', () => {
  it('builds the match, the comment carrying the runId and the target as argv', () => {
    expect(ruleSpec('abc123', dropSyn)).toEqual([
      '-p', 'tcp', '--dport', '9000', '--syn', '-m', 'comment', '--comment', 'harness:abc123:drop-syn', '-j', 'DROP',
    ]);
  });

  it('spells --tcp-flags masks, probabilities and REJECT types', () => {
    const r: Rule = {
      name: 'rej',
      side: 'server',
      hook: 'INPUT',
      proto: 'tcp',
      tcp: { flags: { mask: 'ALL', set: ['ACK'] } },
      probability: 0.5,
      target: { kind: 'REJECT', with: 'tcp-reset' },
    };
    expect(ruleSpec('abc123', r)).toEqual([
      '-p', 'tcp', '--tcp-flags', 'ALL', 'ACK', '-m', 'statistic', '--mode', 'random', '--probability', '0.5',
      '-m', 'comment', '--comment', 'harness:abc123:rej', '-j', 'REJECT', '--reject-with', 'tcp-reset',
    ]);
  });

  it('spells every-nth loss, a length range and NFQUEUE', () => {
    const r: Rule = { name: 'q', side: 'client', hook: 'INPUT', proto: 'tcp', tcp: { sport: 9000 }, every: 3, length: [81, 65535], target: { kind: 'NFQUEUE', queue: 4042 } };
    expect(ruleSpec('abc123', r)).toEqual([
      '-p', 'tcp', '--sport', '9000', '-m', 'length', '--length', '81:65535', '-m', 'statistic', '--mode', 'nth', '--every', '3', '--packet', '2',
      '-m', 'comment', '--comment', 'harness:abc123:q', '-j', 'NFQUEUE', '--queue-num', '4042',
    ]);
    expect(() => ruleSpec('abc123', { ...r, every: 0 })).toThrow(/every/);
    expect(() => ruleSpec('abc123', { ...r, probability: 0.5 })).toThrow(/exclude/);
    expect(() => ruleSpec('abc123', { ...r, length: [90, 80] })).toThrow(/length/);
    expect(() => ruleSpec('abc123', { ...r, target: { kind: 'NFQUEUE', queue: 70000 } })).toThrow(/queue/);
  });

  it('mirrors every insert with a delete of the same fields, and orders chain, rules, jump', () => {
    const steps = planRules('abc123', [dropSyn]);
    expect(steps.map((s) => s.apply.slice(3, 5))).toEqual([['-N', 'harness-abc123-in'], ['-A', 'harness-abc123-in'], ['-I', 'INPUT']]);
    expect(steps.map((s) => s.revert.slice(3, 5))).toEqual([['-X', 'harness-abc123-in'], ['-D', 'harness-abc123-in'], ['-D', 'INPUT']]);
    const rule = steps[1]!;
    expect(rule.apply.slice(5)).toEqual(rule.revert.slice(5));
    const jump = steps[2]!;
    expect(jump.apply.slice(6)).toEqual(jump.revert.slice(5));
    // Marked as rules: the run reads their hits on that side at the end.
    for (const s of [...steps, ...batchRules('abc123', [dropSyn])]) expect(s).toMatchObject({ side: 'server', rules: true });
  });

  it('never produces a shell string: every element is one argv word', () => {
    for (const s of planRules('abc123', [dropSyn])) for (const a of [...s.apply, ...s.revert]) expect(a).not.toMatch(/[;&|`$]/);
  });

  it('refuses bad ports, names, runIds and duplicate rules', () => {
    expect(() => ruleSpec('abc123', { ...dropSyn, tcp: { dport: 70000 } })).toThrow(/port/);
    expect(() => ruleSpec('abc123', { ...dropSyn, tcp: { dport: 0 } })).toThrow(/port/);
    expect(() => ruleSpec('abc123', { ...dropSyn, name: 'Bad Name' })).toThrow(/rule name/);
    expect(() => ruleSpec('x; rm', dropSyn)).toThrow(/runId/);
    expect(() => planRules('abc123', [dropSyn, dropSyn])).toThrow(/two rules/);
  });

  it('keeps chain names within iptables\' 28 characters', () => {
    expect(chainName('abcdef', 'OUTPUT').length).toBeLessThanOrEqual(28);
  });

  it('parses the packet counters of the run\'s rules from iptables-save -c', () => {
    const save = [
      '*filter',
      ':INPUT ACCEPT [10:600]',
      '[6:360] -A harness-abc123-in -p tcp -m tcp --dport 9000 --tcp-flags FIN,SYN,RST,ACK SYN -m comment --comment "harness:abc123:drop-syn" -j DROP',
      '[7:420] -A INPUT -m comment --comment harness:abc123 -j harness-abc123-in',
      '[3:1] -A OTHER -m comment --comment "someone else" -j ACCEPT',
      'COMMIT',
    ].join('\n');
    expect(parseRuleCounters(save)).toEqual([{ runId: 'abc123', name: 'drop-syn', packets: 6, bytes: 360 }]);
  });
});

describe('batchRules', () => {
  const rules: Rule[] = [
    { name: 'drop-syn', side: 'server', hook: 'INPUT', proto: 'tcp', tcp: { dport: 9000, syn: true }, target: { kind: 'DROP' } },
    { name: 'rst-out', side: 'server', hook: 'OUTPUT', proto: 'tcp', tcp: { sport: 9000, flags: { mask: ['RST'], set: ['RST'] } }, target: { kind: 'DROP' } },
    { name: 'rej', side: 'client', hook: 'INPUT', proto: 'all', src: '198.18.0.1', target: { kind: 'REJECT', with: 'icmp-host-unreachable' } },
  ];

  it('one atomic iptables-restore per namespace, with exactly the rules planRules would add', () => {
    const batch = batchRules('abc123', rules);
    expect(batch.map((b) => b.side)).toEqual(['server', 'client']);
    const server = batch[0]!;
    expect(server.apply).toEqual(['iptables-restore', '-w', '5', '--noflush']);
    const lines = server.input!.trim().split('\n');
    expect(lines[0]).toBe('*filter');
    expect(lines.at(-1)).toBe('COMMIT');
    expect(lines).toContain(':harness-abc123-in - [0:0]');
    expect(lines).toContain(`-A harness-abc123-in ${ruleSpec('abc123', rules[0]!).join(' ')}`);
    expect(lines).toContain(`-A harness-abc123-out ${ruleSpec('abc123', rules[1]!).join(' ')}`);
    expect(lines.filter((l) => l.startsWith('-I '))).toEqual(['-I INPUT 1 -m comment --comment harness:abc123 -j harness-abc123-in', '-I OUTPUT 1 -m comment --comment harness:abc123 -j harness-abc123-out']);
    // The jumps come after the chains' rules: traffic meets the complete rule set.
    expect(lines.findIndex((l) => l.startsWith('-I '))).toBeGreaterThan(lines.findIndex((l) => l.startsWith('-A ')));
    expect(server.describes).toEqual(planRules('abc123', rules.slice(0, 2)).map((s) => s.describe));
  });

  it('its revert deletes the jumps, then flushes and deletes the chains', () => {
    const revert = batchRules('abc123', rules.slice(0, 1))[0]!.revertInput!.trim().split('\n');
    expect(revert).toEqual(['*filter', '-D INPUT -m comment --comment harness:abc123 -j harness-abc123-in', '-F harness-abc123-in', '-X harness-abc123-in', 'COMMIT']);
  });
});
