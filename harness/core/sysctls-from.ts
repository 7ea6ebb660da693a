/**
 * `--sysctls-from FILE`: the output of `sysctl -a` on a production machine. Its TCP settings are
 * applied in both namespaces and fed to the model, so an incident reproduces — and is predicted —
 * with production's timers. What cannot be applied is reported, never silently dropped: keys this
 * kernel does not have, host-global keys a namespace only sees read-only, values that are not numbers.
 */
import { UsageError } from './errors.js';
import { readInputFile } from './input-file.js';
import type { NamespacedKeys, SysctlMap } from './sysctl.js';

export interface DumpEntry {
  key: string;
  value: string;
  line: number;
}

export interface SysctlsFromReport {
  file: string;
  applied: SysctlMap;
  skipped: { key: string; value: string; reason: string }[];
}

/** Parses `key = value` lines (sysctl -a) or `key=value` lines (sysctl.conf). */
export function parseSysctlDump(text: string): DumpEntry[] {
  const out: DumpEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const m = /^([A-Za-z0-9_./-]+)\s*=\s*(.*)$/.exec(line);
    if (m) out.push({ key: m[1]!.replaceAll('/', '.'), value: m[2]!.trim().replace(/\s+/g, ' '), line: i + 1 });
  });
  return out;
}

/** The TCP settings of a dump: net.ipv4.tcp_*, the port range, the listen backlog cap. */
export function isTcpSetting(key: string): boolean {
  return /^net\.ipv4\.tcp_/.test(key) || key === 'net.ipv4.ip_local_port_range' || key === 'net.core.somaxconn';
}

export function selectSettings(entries: readonly DumpEntry[], keys: NamespacedKeys, file: string): SysctlsFromReport {
  const report: SysctlsFromReport = { file, applied: {}, skipped: [] };
  for (const { key, value } of entries) {
    if (!isTcpSetting(key)) continue;
    if (keys.readOnly.has(key)) report.skipped.push({ key, value, reason: 'host-global (read-only in a namespace)' });
    else if (!keys.writable.has(key)) report.skipped.push({ key, value, reason: 'not a sysctl of this kernel' });
    else if (!/^-?\d+( -?\d+)*$/.test(value)) report.skipped.push({ key, value, reason: 'not numeric (not modelled)' });
    else report.applied[key] = value;
  }
  return report;
}

/** `sysctl -a` prints ~100 KB on a busy machine; far more is not a dump. */
export const MAX_DUMP_BYTES = 4 << 20;

export async function readSysctlsFrom(path: string, keys: NamespacedKeys): Promise<SysctlsFromReport> {
  const text = await readInputFile(path, {
    flag: '--sysctls-from',
    maxBytes: MAX_DUMP_BYTES,
    expected: 'a file holding the output of `sysctl -a` from the machine to reproduce',
  });
  const entries = parseSysctlDump(text);
  if (entries.length === 0) throw new UsageError('--sysctls-from', `${path} has no "key = value" lines`, 'save it with: sysctl -a > prod-host.txt');
  const report = selectSettings(entries, keys, path);
  if (Object.keys(report.applied).length === 0) {
    throw new UsageError('--sysctls-from', `${path} holds no TCP setting this kernel can apply in a namespace`, 'it should be the output of `sysctl -a` (net.ipv4.tcp_* lines)');
  }
  return report;
}
