/**
 * Every name an expectation checks must exist, or the check could never fail for the right
 * reason: each counter of every fault's expect() is one the running kernel has (nstat names, read
 * from /proc/net/snmp and /proc/net/netstat by the parser the runner uses), and each rule in
 * `rulesHit` is one the fault installs — in its plan, or from a trigger its script reaches.
 * Walked over every fault with its default parameters, every combination of its enum parameters,
 * and the sysctls and parameters its own tests and suites vary.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { counterDelta, parseProcNetCounters, type Counters } from '../harness/engine/observers/counters.js';
import { evaluate, NO_SUCH_RULE, UNKNOWN_COUNTER } from '../harness/verdict/checks.js';
import { SIDES, type SidedSysctls } from '../harness/core/sysctl.js';
import { faultContext } from './context.js';
import { finDrop } from './fin-drop.js';
import { faults } from './index.js';
import type { Expectation, FaultContext, FaultDefinition, Trigger } from './define.js';

type AnyFault = FaultDefinition<z.ZodObject>;
type Ctx = FaultContext<Record<string, unknown>>;

/** The counters this kernel has, as the runner names them. */
function kernelCounters(): Counters {
  return { ...parseProcNetCounters(readFileSync('/proc/net/snmp', 'utf8')), ...parseProcNetCounters(readFileSync('/proc/net/netstat', 'utf8')) };
}

/** Every combination of the values of a fault's enum parameters (the others at their defaults). */
function enumCombos(f: AnyFault): Record<string, string>[] {
  let combos: Record<string, string>[] = [{}];
  for (const [name, schema] of Object.entries(f.params.shape)) {
    let s = schema as unknown as { unwrap?: () => unknown; options?: readonly string[] };
    while (!s.options && s.unwrap) s = s.unwrap() as typeof s;
    if (s.options) combos = combos.flatMap((c) => s.options!.map((o) => ({ ...c, [name]: o })));
  }
  return combos;
}

/** Sysctls and parameters the faults' unit tests and suites vary, beyond the enum parameters. */
const SYSCTL_VARIANTS: Partial<SidedSysctls>[] = [
  {},
  { server: { 'net.ipv4.tcp_syncookies': '0' } },
  { server: { 'net.ipv4.tcp_syncookies': '2' } },
  { server: { 'net.ipv4.tcp_syncookies': '0', 'net.ipv4.tcp_max_syn_backlog': '4' } },
  { server: { 'net.ipv4.tcp_abort_on_overflow': '1' } },
  { server: { 'net.ipv4.icmp_ratelimit': '1000' } },
  { server: { 'net.ipv4.tcp_synack_retries': '0' } },
  { client: { 'net.ipv4.tcp_early_retrans': '0' } },
  { client: { 'net.ipv4.tcp_orphan_retries': '0' } },
  { client: { 'net.ipv4.tcp_fin_timeout': '0' } },
  { client: { 'net.ipv4.tcp_retries2': '1' } },
  { client: { 'net.ipv4.tcp_tw_reuse': '1' } },
  { client: { 'net.ipv4.ip_local_port_range': '40000 40010' } },
  { server: { 'net.ipv4.tcp_pingpong_thresh': '3' } },
];
const PARAM_VARIANTS: Record<string, Record<string, unknown>[]> = {
  'syn-drop': [{ syncnt: '3' }],
  'accept-queue-full': [{ backlog: '2', connects: '5' }, { backlog: '0' }],
  'syn-queue-full': [{ halfOpens: '4' }, { backlog: '16' }, { halfOpens: '0' }],
  'time-wait': [{ connections: 12 }, { reuseAfterMs: 1100 }, { connections: 1, observeMs: 63_000 }, { connections: 21, reuseAfterMs: 150 }],
  'host-crash': [{ variant: 'user-timeout', userTimeoutMs: '1500' }, { variant: 'keepalive', keepCnt: '2' }],
  'rst-close': [{ how: 'linger', lingerS: '3' }],
  'nagle-delack': [{ requests: '1' }],
  'addr-in-use': [{ serverReuseaddr: 'false', reuse: 'reuseaddr' }, { variant: 'second-listener', serverReuseport: 'true', reuse: 'reuseport' }],
  loss: [{ probability: '0.2' }, { every: '2', rounds: '10' }],
  latency: [{ when: 'established', delayMs: '300', rounds: '3' }, { jitterMs: '50' }],
  partition: [{ outageMs: '8000' }, { variant: 'idle', keepCnt: '2' }, { variant: 'connect', outageMs: '60000' }],
};

/** Contexts as a run would build them: the fault's fast sysctls, then each variant's. */
function contexts(name: string, f: AnyFault): Ctx[] {
  const out: Ctx[] = [];
  for (const raw of [...enumCombos(f), ...(PARAM_VARIANTS[name] ?? [])]) {
    const parsed = f.params.safeParse(raw);
    if (!parsed.success) continue; // a combination the schema refuses (rst-close: linger on the server side)
    const fast = f.fastSysctls(parsed.data);
    for (const v of SYSCTL_VARIANTS) {
      const sysctls = { client: { ...fast.client, ...v.client }, server: { ...fast.server, ...v.server } };
      out.push(faultContext(f, { params: raw, sysctls }) as Ctx);
    }
  }
  return out;
}

/** Counter names an expectation checks that are not among `known`, as "side name". */
function unknownCounters(e: Expectation, known: Counters): string[] {
  const same = (e.same ?? []).flatMap((x) => [...x.left, ...x.right]).flatMap((r) => ('side' in r && !Object.hasOwn(known, r.counter) ? [`${r.side} ${r.counter}`] : []));
  return [...SIDES.flatMap((side) => Object.keys(e.counters?.[side] ?? {}).filter((n) => !Object.hasOwn(known, n)).map((n) => `${side} ${n}`)), ...same];
}

function triggerRules(t: Trigger): string[] {
  if (t.kind === 'rules') return t.rules.map((r) => r.name);
  if (t.kind === 'all') return t.triggers.flatMap(triggerRules);
  if (t.kind === 'after') return triggerRules(t.trigger);
  return [];
}

/**
 * Rule names the run installs: the plan's, and those of every trigger the script reaches (a
 * barrier naming a trigger the fault lacks is reported as `trigger:<name>`).
 */
function installedRules(f: AnyFault, ctx: Ctx, e: Expectation): { rules: Set<string>; missingTriggers: string[] } {
  const plan = f.plan(ctx);
  // A qdisc reports its packets, overlimits and drops among the rule hits.
  const rules = new Set([...(plan.rules ?? []).map((r) => r.name), ...(plan.qdiscs ?? []).flatMap((q) => [q.name, `${q.name}:overlimits`, `${q.name}:drops`])]);
  const missingTriggers: string[] = [];
  for (const step of f.script(ctx, e)) {
    if (step.op !== 'barrier') continue;
    const trig = f.triggers?.[step.name];
    if (!trig) missingTriggers.push(`trigger:${step.name}`);
    else for (const r of triggerRules(trig(ctx))) rules.add(r);
  }
  return { rules, missingTriggers };
}

function unknownRules(f: AnyFault, ctx: Ctx, e: Expectation): string[] {
  const { rules, missingTriggers } = installedRules(f, ctx, e);
  const same = (e.same ?? []).flatMap((x) => [...x.left, ...x.right]).flatMap((r) => ('rule' in r ? [r.rule] : []));
  return [...missingTriggers, ...[...Object.keys(e.rulesHit ?? {}), ...same].filter((n) => !rules.has(n))];
}

const kernel = kernelCounters();
const catalogue = Object.entries(faults) as unknown as [string, AnyFault][];

describe('names in expectations', () => {
  it('reads the kernel list with the runner parser (nstat names)', () => {
    for (const n of ['TcpRetransSegs', 'TcpOutRsts', 'TcpExtTCPSynRetrans', 'TcpExtListenOverflows', 'IcmpInDestUnreachs']) expect(kernel).toHaveProperty(n);
  });

  it.each(catalogue)('%s: every counter is one this kernel has; every rule hit is a rule it installs', (name, f) => {
    const ctxs = contexts(name, f);
    expect(ctxs.length).toBeGreaterThan(0);
    let counters = 0;
    for (const ctx of ctxs) {
      const e = f.expect(ctx);
      const where = `${name} ${JSON.stringify(ctx.params)} ${JSON.stringify(ctx.sysctls)}`;
      expect(unknownCounters(e, kernel), where).toEqual([]);
      expect(unknownRules(f, ctx, e), where).toEqual([]);
      counters += SIDES.reduce((n, side) => n + Object.keys(e.counters?.[side] ?? {}).length, 0);
    }
    // Every fault asserts counters: a walk that saw none would prove nothing.
    expect(counters).toBeGreaterThan(0);
  });

  describe('a misspelled name fails', () => {
    // fin-drop as written, but with a typo in one counter and one rule name.
    const typo: AnyFault = {
      ...(finDrop as unknown as AnyFault),
      expect: (ctx) => {
        const e = finDrop.expect(ctx as FaultContext<Record<string, never>>);
        return {
          ...e,
          counters: { ...e.counters, server: { TcpExtTCPAbortOnTimeuot: 0 } },
          rulesHit: { 'drop-fim': 5 },
        };
      },
    };
    const ctx = contexts('fin-drop', typo)[0]!;
    const e = typo.expect(ctx);

    it('in the name walk above', () => {
      expect(unknownCounters(e, kernel)).toEqual(['server TcpExtTCPAbortOnTimeuot']);
      expect(unknownRules(typo, ctx, e)).toEqual(['drop-fim']);
    });

    it('in evaluate(): a counter expected to stay 0 and a rule the plan lacks fail, never read as 0', () => {
      // What the runner would hand over after a run in which nothing moved: every kernel counter
      // at delta 0, and the plan's rule at 0 packets.
      const still = counterDelta(kernel, kernel);
      const observed = { steps: [], states: { client: [], server: [] }, counters: { client: still, server: still }, rulesHit: { 'drop-fin': 0 } };
      const checks = evaluate(e, observed).checks;
      expect(checks.find((c) => c.name === 'server TcpExtTCPAbortOnTimeuot')).toMatchObject({ expected: 0, actual: UNKNOWN_COUNTER, pass: false });
      expect(checks.find((c) => c.name === 'rule drop-fim hit')).toMatchObject({ actual: NO_SUCH_RULE, pass: false });
      // Spelled right, the same 0 passes.
      const right = evaluate({ steps: {}, counters: { server: { TcpExtTCPAbortOnTimeout: 0 } }, rulesHit: { 'drop-fin': 0 } }, observed);
      expect(right.checks.map((c) => [c.name, c.pass])).toEqual([
        ['server TcpExtTCPAbortOnTimeout', true],
        ['rule drop-fin hit', true],
      ]);
    });
  });
});
