/**
 * What runs left on the machine, attributed to them: for the hardening suite and the soak, on a
 * machine where other people's runs come and go at the same time. A thing counts as a run's when
 * it carries one of its runIds (namespace, journal, marker, Docker label) or one of its processes'
 * identities (private temp dir, journal temp file); the host's own state (its iptables ruleset and
 * network sysctls) must not change at all, except for the lines Docker adds for *other* people's
 * live networks, which are left out.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { NETNS_DIR } from '../core/netns.js';
import { markerDir, privateTmpBase, stateDir } from '../core/state-dir.js';

export interface Mine {
  runIds: ReadonlySet<string>;
  /** Pids of the harness processes (CLI children) that made them. */
  pids: ReadonlySet<number>;
  /** Script folders in /tmp younger than this are suspects (ms since the epoch). */
  sinceMs: number;
}

export interface Leftovers {
  netns: string[];
  journals: string[];
  markers: string[];
  privateTmp: string[];
  journalTmp: string[];
  containers: string[];
  networks: string[];
  /** Lines of the host's iptables-save that carry a harness comment or chain (never allowed). */
  hostRules: string[];
  /** /tmp/harness-script-* folders (what runs of older versions made there) since `sinceMs` that no live process uses. */
  tmp: string[];
  /** Processes stopped (state T) whose command line mentions the harness or its probe. */
  stopped: string[];
  /** Probe processes whose parent is gone (reparented to init), started since `sinceMs`. */
  orphanProbes: string[];
}

const lines = (s: string) => s.split('\n').filter(Boolean);

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

async function docker(args: string[]): Promise<string[]> {
  const r = await run(['docker', ...args], { reject: false, timeoutMs: 30_000 });
  return r.exitCode === 0 ? lines(String(r.stdout)) : [];
}

/** Every process as {pid, ppid, state, startMs, cmdline}. */
async function processes(): Promise<{ pid: number; ppid: number; state: string; cmd: string }[]> {
  const out = [];
  for (const p of (await list('/proc')).filter((n) => /^\d+$/.test(n))) {
    const st = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const cmd = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ').trim();
    if (!st) continue;
    const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(p), ppid: Number(rest[1]), state: rest[0] ?? '', cmd });
  }
  return out;
}

/** Whether a journal file names one of `pids` as its writer. */
async function journalOf(path: string, pids: ReadonlySet<number>): Promise<boolean> {
  try {
    const j = JSON.parse(await readFile(path, 'utf8')) as { pid?: number };
    return j.pid !== undefined && pids.has(j.pid);
  } catch {
    return false;
  }
}

export async function leftovers(mine: Mine): Promise<Leftovers> {
  const state = await list(stateDir());
  const journals: string[] = [];
  const ids = [...mine.runIds];
  for (const f of state.filter((n) => n.endsWith('.json'))) {
    // A journal written by one of our processes makes its run ours, even if its runId was never logged.
    if (ids.some((id) => f.includes(id))) journals.push(f);
    else if (await journalOf(join(stateDir(), f), mine.pids)) {
      journals.push(f);
      ids.push(f.replace(/\.json$/, ''));
    }
  }
  const ofMine = (name: string) => ids.some((id) => name.includes(id));
  const pidPrefix = (n: string) => [...mine.pids].some((p) => n.startsWith(`${p}-`) || n.includes(`.${p}-`));
  const procs = await processes();
  const inUse = (path: string) => procs.some((p) => p.cmd.includes(path));
  const tmp: string[] = [];
  // Only the runner's script folders: other /tmp/harness-* (tests' own temp dirs, other people's)
  // are not a run's leftovers.
  for (const n of (await list('/tmp')).filter((x) => x.startsWith('harness-script-'))) {
    const st = await stat(join('/tmp', n)).catch(() => undefined);
    if (st && st.mtimeMs >= mine.sinceMs && !inUse(join('/tmp', n))) tmp.push(n);
  }
  const ipt = await run(['iptables-save'], { reject: false });
  const alive = new Set(procs.map((p) => p.pid));
  return {
    netns: (await list(NETNS_DIR)).filter(ofMine),
    journals,
    markers: (await list(markerDir())).filter(ofMine),
    privateTmp: (await list(privateTmpBase())).filter(pidPrefix),
    journalTmp: state.filter((n) => n.endsWith('.json.tmp') && (ofMine(n) || pidPrefix(n))),
    containers: (await docker(['ps', '-a', '--filter', 'label=harness.run', '--format', '{{.Names}} {{.Label "harness.run"}}'])).filter(ofMine),
    networks: (await docker(['network', 'ls', '--filter', 'label=harness.run', '--format', '{{.Name}} {{.Label "harness.run"}}'])).filter(ofMine),
    hostRules: lines(String(ipt.stdout)).filter((l) => /harness/.test(l)),
    tmp,
    stopped: procs.filter((p) => p.state === 'T' && /harness|probe/.test(p.cmd)).map((p) => `${p.pid} ${p.cmd}`),
    orphanProbes: procs.filter((p) => /harness-probe/.test(p.cmd) && p.state !== 'Z' && (p.ppid === 1 || !alive.has(p.ppid))).map((p) => `${p.pid} ${p.cmd}`),
  };
}

export function count(l: Leftovers): number {
  return Object.values(l).reduce((n, v: string[]) => n + v.length, 0);
}

export function describeLeftovers(l: Leftovers): string {
  return Object.entries(l)
    .filter(([, v]) => (v as string[]).length)
    .map(([k, v]) => `${k}: ${(v as string[]).join(', ')}`)
    .join('; ');
}

/**
 * The host's own network state: its iptables ruleset (without counters) and network sysctls.
 * Lines Docker adds for bridges of networks that are not `mine` (other people's runs, live now)
 * are left out: they come and go with those runs.
 */
export async function hostState(mine: Pick<Mine, 'runIds'>): Promise<{ iptables: string[]; sysctls: string[] }> {
  const foreignBridges: string[] = [];
  const listNetworks = async () => {
    for (const line of await docker(['network', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Label "harness.run"}}'])) {
      const [id, runId] = line.split(' ');
      if (id && runId && !mine.runIds.has(runId)) foreignBridges.push(`br-${id.slice(0, 12)}`);
    }
  };
  // Before and after: a network made or removed meanwhile is still recognised.
  await listNetworks();
  const ipt = await run(['iptables-save'], { reject: false });
  await listNetworks();
  const sys = await run(['sysctl', '-a', '--pattern', '^net\\.(ipv4|core)\\.'], { reject: false });
  return {
    iptables: lines(String(ipt.stdout))
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
      .filter((l) => !foreignBridges.some((b) => l.includes(b))),
    sysctls: lines(String(sys.stdout)).filter(
      (l) =>
        !/ip_conntrack|nf_conntrack_count|tcp_mem|udp_mem|netfilter|rt_cache|route\.gc|ipfrag/.test(l) &&
        // Per-interface keys come and go with the interfaces (Docker's bridges and veths of other runs).
        !/^net\.ipv4\.(conf|neigh)\.(?!all\.|default\.|lo\.)/.test(l),
    ),
  };
}
