/**
 * Namespaced sysctls: parsing and validating `--sysctl side:KEY=VALUE`, reading the values in
 * force inside a namespace, and changing them with the previous value journaled first.
 *
 * A key is accepted only if it exists in a *fresh* network namespace: the kernel shows a child
 * namespace only the sysctls that are per-namespace, so a host-global key (one that would change
 * the host if written) is refused before anything runs.
 */
import { UsageError, EnvironmentError } from './errors.js';
import { inNetns, run } from './exec.js';
import type { Journal } from './journal.js';
import type { Netns } from './netns.js';

export type Side = 'client' | 'server';
export const SIDES: readonly Side[] = ['client', 'server'];
export type SysctlMap = Record<string, string>;
export type SidedSysctls = Record<Side, SysctlMap>;

const KEY_RE = /^net\.[a-z0-9_]+(\.[a-z0-9_-]+)+$/;
const VALUE_RE = /^-?\d+([ \t]+-?\d+)*$/;

export interface SysctlSetting {
  side: Side;
  key: string;
  value: string;
}

/** Parses one `--sysctl` value. Syntax only; `validateKeys` checks the key exists per-namespace. */
export function parseSysctlFlag(raw: string, flag = '--sysctl'): SysctlSetting {
  const m = /^(client|server):([^=]+)=(.*)$/.exec(raw);
  if (!m) {
    throw new UsageError(flag, `"${raw}" is not SIDE:KEY=VALUE`, 'write e.g. --sysctl client:net.ipv4.tcp_syn_retries=3 (SIDE is client or server)');
  }
  const [, side, key, value] = m as unknown as [string, Side, string, string];
  return { side, ...checkKeyValue(key.trim(), value.trim(), flag) };
}

export function checkKeyValue(key: string, value: string, flag: string): { key: string; value: string } {
  const k = key.replaceAll('/', '.');
  if (!KEY_RE.test(k)) {
    throw new UsageError(flag, `"${key}" is not a network sysctl key`, 'keys look like net.ipv4.tcp_syn_retries (only net.* keys are namespaced)');
  }
  if (!VALUE_RE.test(value)) {
    throw new UsageError(flag, `value "${value}" for ${k} is not a number`, 'sysctl values are integers, or several separated by spaces (e.g. "1024 1030")');
  }
  return { key: k, value: value.replace(/\s+/g, ' ') };
}

export interface NamespacedKeys {
  /** Keys a fresh namespace lets root write: the per-namespace ones. */
  writable: Set<string>;
  /** Keys a fresh namespace shows read-only: host-global values mirrored into it. */
  readOnly: Set<string>;
}

let namespacedKeysCache: Promise<NamespacedKeys> | undefined;

function pathToKey(path: string): string {
  return path.replace(/^\/proc\/sys\//, '').replaceAll('/', '.');
}

/**
 * The sysctl keys of a fresh network namespace, split by whether root may write them there.
 * Listed from a throwaway namespace (`unshare --net`) that the kernel destroys when the listing
 * ends: nothing persists, nothing of the host's is touched.
 */
export function namespacedKeys(): Promise<NamespacedKeys> {
  namespacedKeysCache ??= Promise.all([
    run(['unshare', '--net', '--', 'find', '/proc/sys/net', '-type', 'f', '-perm', '-200'], { reject: false }),
    run(['unshare', '--net', '--', 'find', '/proc/sys/net', '-type', 'f', '!', '-perm', '-200'], { reject: false }),
  ]).then(([w, ro]) => {
    if (w.failed || ro.failed) {
      throw new EnvironmentError(
        'E_SYSCTL_LIST',
        `cannot list namespaced sysctls: ${(w.stderr || ro.stderr).trim()}`,
        'run as root with util-linux installed (harness doctor)',
      );
    }
    const keys = (out: string) => new Set(out.split('\n').map((l) => l.trim()).filter(Boolean).map(pathToKey));
    return { writable: keys(w.stdout), readOnly: keys(ro.stdout) };
  });
  return namespacedKeysCache;
}

export async function validateKeys(keys: Iterable<string>, flag = '--sysctl'): Promise<void> {
  const { writable, readOnly } = await namespacedKeys();
  for (const key of keys) {
    if (writable.has(key)) continue;
    if (readOnly.has(key)) {
      throw new UsageError(flag, `"${key}" is host-global: a network namespace only sees it read-only`, 'the harness never changes the host; pick a per-namespace key');
    }
    const near = [...writable].filter((k) => k.split('.').pop() === key.split('.').pop());
    throw new UsageError(
      flag,
      `unknown sysctl "${key}"`,
      near.length ? `did you mean ${near.join(' or ')}?` : 'only keys that exist per network namespace can be set (harness list shows the ones each scenario reads)',
    );
  }
}

/**
 * Tries `values` in a throwaway namespace, so a value the kernel refuses (out of range, wrong
 * shape) is a usage error before anything of the run exists. procps' sysctl exits 0 even when a
 * write fails, so its stderr is what tells.
 */
export async function validateValues(values: SysctlMap, flag = '--sysctl'): Promise<void> {
  const entries = Object.entries(values);
  if (entries.length === 0) return;
  // Without -w, procps writes the KEY=VALUE arguments and reads the bare KEY ones, in order: each
  // value is written in a throwaway namespace and read back, so a value the kernel takes only in
  // part (`tcp_rmem=1 2` keeps the old third field) is caught before anything of the run exists.
  const argv = entries.flatMap(([k, v]) => [`${k}=${v}`, k]);
  const r = await run(['unshare', '--net', '--', 'sysctl', ...argv], { reject: false });
  const refused = /setting key "([^"]+)"(?:: (.*))?/.exec(r.stderr);
  if (refused || r.failed) {
    const key = refused?.[1] ?? entries[0]![0];
    throw new UsageError(flag, `the kernel refuses ${key}=${values[key] ?? ''}${refused?.[2] ? ` (${refused[2].trim()})` : ''}`, 'check the range the kernel accepts for this key (Documentation/networking/ip-sysctl.rst)');
  }
  const lines = r.stdout.split('\n').filter((l) => l.includes(' = '));
  entries.forEach(([key, value], i) => {
    const readBack = lines[2 * i + 1]?.slice(lines[2 * i + 1]!.indexOf(' = ') + 3).trim().replace(/\s+/g, ' ');
    if (readBack !== undefined && readBack !== value.trim().replace(/\s+/g, ' ')) {
      throw new UsageError(flag, `the kernel took ${key}=${value} only as "${readBack}"`, `give every field of ${key}, e.g. ${key}=${readBack.split(' ').map((_, j) => value.trim().split(/\s+/)[j] ?? 'N').join(' ')}`);
    }
  });
}

/** Reads the values in force in `ns`. One process for all keys. */
export async function readSysctls(ns: Netns, keys: readonly string[]): Promise<SysctlMap> {
  if (keys.length === 0) return {};
  return parseSysctlLines((await run(inNetns(ns, ['sysctl', '-e', ...keys]))).stdout);
}

function parseSysctlLines(stdout: string): SysctlMap {
  const out: SysctlMap = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' = ');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 3).trim().replace(/\s+/g, ' ');
  }
  return out;
}

/**
 * Sets `values` in `ns`, verifies they took, and returns the values in force of those keys and of
 * `alsoRead` (the sysctls the model reads). One journal entry holds the previous value of every
 * key it changes (written before the change), and one process writes them all and reads them back:
 * procps writes the KEY=VALUE arguments and, without -w, reads the bare KEY ones, in order (it
 * exits 0 even when a write fails, hence the read-back). Two processes at most: one to read, one
 * to write and read again.
 */
export async function applySysctls(journal: Journal, ns: Netns, values: SysctlMap, alsoRead: readonly string[] = []): Promise<SysctlMap> {
  const keys = Object.keys(values);
  const all = [...new Set([...keys, ...alsoRead])];
  const before = await readSysctls(ns, all);
  for (const key of keys) if (before[key] === undefined) throw new EnvironmentError('E_SYSCTL_MISSING', `sysctl ${key} does not exist in ${ns.name}`);
  const changed = keys.filter((k) => before[k] !== values[k]);
  if (changed.length === 0) return before;
  const after = await journal.change(
    `sysctl ${changed.map((k) => `${k}=${values[k]}`).join(' ')} in ${ns.name} (was ${changed.map((k) => before[k]).join(', ')})`,
    { kind: 'argv', argv: inNetns(ns, ['sysctl', '-q', '-w', ...changed.map((k) => `${k}=${before[k]}`)]), netnsPath: ns.path },
    // Read back after every write: the keys set and the ones the model reads (one key may move
    // another); -e leaves out a key this kernel lacks, as readSysctls does.
    async () => parseSysctlLines((await run(inNetns(ns, ['sysctl', '-e', '-q', ...changed.map((k) => `${k}=${values[k]}`), ...all]))).stdout),
  );
  for (const key of changed) {
    if (after[key] !== values[key]) {
      throw new EnvironmentError('E_SYSCTL_REFUSED', `sysctl ${key}=${values[key]} did not take in ${ns.name} (reads ${after[key] ?? 'nothing'})`);
    }
  }
  return after;
}
