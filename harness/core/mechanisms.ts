/**
 * Kernel mechanisms some faults need beyond plain iptables, each proven in a throwaway network
 * namespace (`unshare --net`, so the check touches nothing of the host's): NFQUEUE with the
 * probe's delayer bound to a queue, a tbf qdisc, the statistic and length matches. A fault names
 * what it needs (`needs`); `prepare` refuses a run whose mechanism is missing, before anything
 * changes, with the reason and the fix (exit 3); `harness doctor` lists them all.
 */
import { EnvironmentError } from './errors.js';
import { run } from './exec.js';
import { probeCommand } from './probe.js';

export type Mechanism = 'nfqueue' | 'tbf' | 'iptables-statistic' | 'iptables-length';

export const MECHANISMS: readonly Mechanism[] = ['nfqueue', 'tbf', 'iptables-statistic', 'iptables-length'];

export interface MechanismCheck {
  mechanism: Mechanism;
  /** What it is and which fault needs it. */
  what: string;
  ok: boolean;
  /** What was seen. */
  detail: string;
  fix: string;
  /** A tool (not the kernel) is missing: exit 3 names the package. */
  missingTool?: string;
}

const WHAT: Record<Mechanism, { does: string; fix: string; tool: string; pkg: string }> = {
  nfqueue: {
    does: 'NFQUEUE + the probe delayer (latency)',
    fix: 'a kernel with CONFIG_NETFILTER_NETLINK_QUEUE and CONFIG_NETFILTER_XT_TARGET_NFQUEUE (modprobe nfnetlink_queue xt_NFQUEUE), and npm run build for the probe',
    tool: 'iptables',
    pkg: 'iptables',
  },
  tbf: { does: 'tbf qdisc (bandwidth)', fix: 'a kernel with CONFIG_NET_SCH_TBF (modprobe sch_tbf)', tool: 'tc', pkg: 'iproute2' },
  'iptables-statistic': { does: 'iptables -m statistic (loss)', fix: 'a kernel with CONFIG_NETFILTER_XT_MATCH_STATISTIC (modprobe xt_statistic)', tool: 'iptables', pkg: 'iptables' },
  'iptables-length': { does: 'iptables -m length (loss: data segments only)', fix: 'a kernel with CONFIG_NETFILTER_XT_MATCH_LENGTH (modprobe xt_length)', tool: 'iptables', pkg: 'iptables' },
};

/** The commands that prove `m` works, each run in a namespace of its own. */
function proofs(m: Mechanism): string[][] {
  const inFresh = (argv: string[]) => ['unshare', '--net', '--', ...argv];
  switch (m) {
    case 'nfqueue':
      // The iptables target, and the delayer binding a queue (nfnetlink_queue) and exiting.
      return [inFresh(['iptables', '-w', '5', '-A', 'INPUT', '-p', 'tcp', '-j', 'NFQUEUE', '--queue-num', '0']), inFresh(probeCommand(['delay', '--check', '--queue', '0', '--delay-us', '0']))];
    case 'tbf':
      return [inFresh(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '10:', 'tbf', 'rate', '1000000bit', 'burst', '10000', 'limit', '10000'])];
    case 'iptables-statistic':
      return [inFresh(['iptables', '-w', '5', '-A', 'INPUT', '-m', 'statistic', '--mode', 'nth', '--every', '2', '--packet', '1', '-j', 'ACCEPT'])];
    case 'iptables-length':
      return [inFresh(['iptables', '-w', '5', '-A', 'INPUT', '-m', 'length', '--length', '81:65535', '-j', 'ACCEPT'])];
  }
}

const cache = new Map<Mechanism, Promise<MechanismCheck>>();

/** Proves `m` works on this machine (once per process). */
export function checkMechanism(m: Mechanism): Promise<MechanismCheck> {
  let p = cache.get(m);
  if (!p) {
    p = (async (): Promise<MechanismCheck> => {
      const w = WHAT[m];
      let cmds: string[][];
      try {
        cmds = proofs(m); // resolves the probe's path: a probe not built is reported here
      } catch (e) {
        return { mechanism: m, what: w.does, ok: false, detail: e instanceof Error ? e.message : String(e), fix: 'npm run build' };
      }
      for (const p of cmds) {
        const r = await run(p, { reject: false, timeoutMs: 10_000 });
        if (!r.failed) continue;
        const err = r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.exitCode}`;
        // unshare says "failed to execute tc: No such file or directory" (exit 127) when the tool is missing.
        if (r.exitCode === 127 || new RegExp(`execute ${w.tool}|${w.tool}: (not found|No such file)`).test(err)) {
          return { mechanism: m, what: w.does, ok: false, detail: `${w.tool} is not installed`, fix: `apt-get install -y ${w.pkg}`, missingTool: w.tool };
        }
        return { mechanism: m, what: w.does, ok: false, detail: err, fix: w.fix };
      }
      return { mechanism: m, what: w.does, ok: true, detail: 'works', fix: w.fix };
    })();
    cache.set(m, p);
  }
  return p;
}

/** Refuses (exit 3) unless every mechanism in `ms` works; `scenario` names who needs it. */
export async function requireMechanisms(scenario: string, ms: readonly Mechanism[]): Promise<void> {
  for (const m of ms) {
    const c = await checkMechanism(m);
    if (!c.ok) throw new EnvironmentError(c.missingTool ? 'E_TOOL_MISSING' : 'E_MECHANISM', `${scenario} needs ${c.what}, which this machine lacks: ${c.detail}`, c.fix);
  }
}
