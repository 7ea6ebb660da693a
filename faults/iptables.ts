/**
 * The project's typed iptables rule builder. There is no usable package for this on the registry,
 * so here it is: argv arrays only (never a shell string); every rule lives in a chain the run
 * owns and carries a comment `harness:<runId>:<rule name>`; every delete mirrors its insert
 * field for field, so a revert can never remove somebody else's rule.
 */
import type { FaultStep } from '../harness/core/step.js';
import type { Side } from '../harness/core/sysctl.js';
import { isPort } from '../harness/core/port.js';

export type Hook = 'INPUT' | 'OUTPUT';
export type TcpFlag = 'SYN' | 'ACK' | 'FIN' | 'RST' | 'URG' | 'PSH';
export type RejectWith =
  | 'icmp-net-unreachable'
  | 'icmp-host-unreachable'
  | 'icmp-port-unreachable'
  | 'icmp-proto-unreachable'
  | 'icmp-net-prohibited'
  | 'icmp-host-prohibited'
  | 'icmp-admin-prohibited'
  | 'tcp-reset';

export const REJECT_WITH: readonly RejectWith[] = [
  'icmp-net-unreachable',
  'icmp-host-unreachable',
  'icmp-port-unreachable',
  'icmp-proto-unreachable',
  'icmp-net-prohibited',
  'icmp-host-prohibited',
  'icmp-admin-prohibited',
  'tcp-reset',
];

export interface TcpMatch {
  /** Destination / source port. */
  dport?: number;
  sport?: number;
  /** `--tcp-flags MASK SET`: of the flags in `mask`, exactly those in `set` are on. */
  flags?: { mask: readonly TcpFlag[] | 'ALL'; set: readonly TcpFlag[] | 'NONE' };
  /** Shorthand for `--syn` (SYN set, ACK/RST/FIN clear). */
  syn?: boolean;
}

export interface Rule {
  /** Short name, unique within the fault; appears in the comment and in `fault.rulesHit`. */
  name: string;
  /** Which namespace the rule goes in. */
  side: Side;
  hook: Hook;
  proto: 'tcp' | 'all';
  tcp?: TcpMatch;
  src?: string;
  dst?: string;
  /** Match only this fraction of packets (`-m statistic --mode random`). */
  probability?: number;
  /** Match only every n-th packet the rest of the rule matches: the n-th, 2n-th, … (`-m statistic --mode nth --every n --packet n-1`). */
  every?: number;
  /** Match only IP packets whose total length is in [min, max] bytes (`-m length`). */
  length?: readonly [number, number];
  target: { kind: 'DROP' } | { kind: 'ACCEPT' } | { kind: 'REJECT'; with: RejectWith } | { kind: 'NFQUEUE'; queue: number };
}

export const IPTABLES_ABSENT = "Bad rule|does a matching rule exist|No chain/target/match|does not exist|doesn't exist|No such file";

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,30}$/;
const RUN_ID_RE = /^[a-z0-9]{4,12}$/;

export function chainName(runId: string, hook: Hook): string {
  // iptables chain names are at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1).
  return `harness-${runId}-${hook === 'INPUT' ? 'in' : 'out'}`;
}

export function ruleComment(runId: string, name?: string): string {
  return name ? `harness:${runId}:${name}` : `harness:${runId}`;
}

function flagList(f: readonly TcpFlag[] | 'ALL' | 'NONE'): string {
  return typeof f === 'string' ? f : f.length ? f.join(',') : 'NONE';
}

function port(p: number, what: string): string {
  if (!isPort(p)) throw new RangeError(`${what} ${p} is not a port (1-65535)`);
  return String(p);
}

/** The match-and-target part of a rule, shared by its append and its delete. */
export function ruleSpec(runId: string, rule: Rule): string[] {
  if (!NAME_RE.test(rule.name)) throw new RangeError(`rule name "${rule.name}" must be lowercase letters, digits and dashes`);
  if (!RUN_ID_RE.test(runId)) throw new RangeError(`runId "${runId}" is not valid`);
  const a: string[] = ['-p', rule.proto];
  if (rule.src) a.push('-s', rule.src);
  if (rule.dst) a.push('-d', rule.dst);
  if (rule.tcp) {
    if (rule.proto !== 'tcp') throw new RangeError(`rule ${rule.name}: TCP matches need proto tcp`);
    if (rule.tcp.sport !== undefined) a.push('--sport', port(rule.tcp.sport, 'sport'));
    if (rule.tcp.dport !== undefined) a.push('--dport', port(rule.tcp.dport, 'dport'));
    if (rule.tcp.syn) a.push('--syn');
    if (rule.tcp.flags) a.push('--tcp-flags', flagList(rule.tcp.flags.mask), flagList(rule.tcp.flags.set));
  }
  // Length before statistic: a statistic match counts every packet that reaches it, so the
  // other matches must come first (every n-th *data* segment, not every n-th packet).
  if (rule.length) {
    const [lo, hi] = rule.length;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo <= hi && hi <= 65535)) throw new RangeError(`rule ${rule.name}: length must be 0 <= min <= max <= 65535`);
    a.push('-m', 'length', '--length', `${lo}:${hi}`);
  }
  if (rule.probability !== undefined) {
    if (!(rule.probability > 0 && rule.probability <= 1)) throw new RangeError(`rule ${rule.name}: probability must be in (0, 1]`);
    a.push('-m', 'statistic', '--mode', 'random', '--probability', String(rule.probability));
  }
  if (rule.every !== undefined) {
    if (rule.probability !== undefined) throw new RangeError(`rule ${rule.name}: probability and every exclude each other`);
    if (!Number.isSafeInteger(rule.every) || rule.every < 1) throw new RangeError(`rule ${rule.name}: every must be a whole number >= 1`);
    // iptables starts the counter at (every - 1) - packet and the kernel matches when it reaches
    // every - 1 (libxt_statistic.c, xt_statistic.c): --packet 0 would match the 1st packet, then
    // every n-th after it; --packet n-1 matches the n-th, the 2n-th, … .
    a.push('-m', 'statistic', '--mode', 'nth', '--every', String(rule.every), '--packet', String(rule.every - 1));
  }
  a.push('-m', 'comment', '--comment', ruleComment(runId, rule.name));
  a.push('-j', rule.target.kind);
  if (rule.target.kind === 'REJECT') a.push('--reject-with', rule.target.with);
  if (rule.target.kind === 'NFQUEUE') {
    if (!Number.isInteger(rule.target.queue) || rule.target.queue < 0 || rule.target.queue > 65535) throw new RangeError(`rule ${rule.name}: queue must be 0-65535`);
    a.push('--queue-num', String(rule.target.queue));
  }
  return a;
}

const IPT = ['iptables', '-w', '5'];

/**
 * Plans the steps that install `rules`: per namespace and hook, a chain owned by the run, the
 * rules appended to it, and last the jump into it (so traffic meets the complete rule set). The
 * reverts run in the opposite order: jump, rules, chain.
 */
export function planRules(runId: string, rules: readonly Rule[]): FaultStep[] {
  const steps: FaultStep[] = [];
  const names = new Set<string>();
  const groups = new Map<string, Rule[]>();
  for (const r of rules) {
    if (names.has(r.name)) throw new RangeError(`two rules are named ${r.name}`);
    names.add(r.name);
    const k = `${r.side}/${r.hook}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const group of groups.values()) {
    const { side, hook } = group[0]!;
    const chain = chainName(runId, hook);
    steps.push({ side, describe: `chain ${chain} (${side})`, apply: [...IPT, '-N', chain], revert: [...IPT, '-X', chain], absent: IPTABLES_ABSENT, rules: true });
    for (const r of group) {
      const spec = ruleSpec(runId, r);
      steps.push({
        side,
        describe: `rule ${r.name}: ${hook} ${spec.join(' ')} (${side})`,
        apply: [...IPT, '-A', chain, ...spec],
        revert: [...IPT, '-D', chain, ...spec],
        absent: IPTABLES_ABSENT,
        rules: true,
      });
    }
    const jump = ['-m', 'comment', '--comment', ruleComment(runId), '-j', chain];
    steps.push({
      side,
      describe: `jump ${hook} -> ${chain} (${side})`,
      apply: [...IPT, '-I', hook, '1', ...jump],
      revert: [...IPT, '-D', hook, ...jump],
      absent: IPTABLES_ABSENT,
      rules: true,
    });
  }
  return steps;
}

/** An argument iptables-restore reads back as one word: no quoting needed, none possible to abuse. */
const RESTORE_WORD = /^[A-Za-z0-9_.:/,!+=-]+$/;

/**
 * The same rules as `planRules`, as one `iptables-restore --noflush` batch per namespace: the
 * run's chains, their rules and the jumps go in atomically in one process, and the revert is the
 * mirror batch (delete the jumps, flush and delete the chains). Counters and comments are the
 * same as planRules' rule for rule.
 */
export function batchRules(runId: string, rules: readonly Rule[]): FaultStep[] {
  const bySide = new Map<string, FaultStep[]>();
  for (const st of planRules(runId, rules)) bySide.set(st.side, [...(bySide.get(st.side) ?? []), st]);
  const out: FaultStep[] = [];
  for (const [side, steps] of bySide) {
    const apply: string[] = ['*filter'];
    const revert: string[] = ['*filter'];
    const chains: string[] = [];
    for (const st of steps) {
      const args = st.apply.slice(IPT.length);
      for (const a of args) if (!RESTORE_WORD.test(a)) throw new RangeError(`iptables argument "${a}" cannot go into a restore batch`);
      if (args[0] === '-N') {
        chains.push(args[1]!);
        apply.push(`:${args[1]} - [0:0]`);
      } else apply.push(args.join(' '));
      if (args[0] === '-I') revert.push(st.revert.slice(IPT.length).join(' '));
    }
    for (const c of chains) revert.push(`-F ${c}`, `-X ${c}`);
    apply.push('COMMIT', '');
    revert.push('COMMIT', '');
    out.push({
      side: side as Rule['side'],
      describe: `iptables-restore: ${steps.length} changes (${side})`,
      describes: steps.map((st) => st.describe),
      apply: ['iptables-restore', '-w', '5', '--noflush'],
      input: apply.join('\n'),
      revert: ['iptables-restore', '-w', '5', '--noflush'],
      revertInput: revert.join('\n'),
      absent: IPTABLES_ABSENT,
      rules: true,
    });
  }
  return out;
}

export interface RuleCounter {
  runId: string;
  name: string;
  packets: number;
  bytes: number;
}

/** Parses `iptables-save -c` output: the packet counters of every rule a harness run owns. */
export function parseRuleCounters(save: string): RuleCounter[] {
  const out: RuleCounter[] = [];
  for (const line of save.split('\n')) {
    const m = /^\[(\d+):(\d+)\] -A \S+ .*--comment "?harness:([a-z0-9]+):([a-z0-9-]+)"?/.exec(line);
    if (m) out.push({ packets: Number(m[1]), bytes: Number(m[2]), runId: m[3]!, name: m[4]! });
  }
  return out;
}
