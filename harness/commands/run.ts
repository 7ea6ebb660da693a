/** `harness run`: prepares every scenario first (bad input changes nothing), then runs them concurrently. */
import { faults } from '../../faults/index.js';
import { UsageError, type ExitCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Result } from '../verdict/result.js';
import { assertRoot, execute, prepare, type RunEnv, type RunRequest } from '../engine/runner.js';
import type { Session } from '../core/session.js';
import { parseSysctlFlag } from '../core/sysctl.js';
import { formatResult } from '../report/text.js';

export interface RunCommandOptions {
  scenarios: string[];
  all?: boolean;
  target?: string;
  sysctl?: string[];
  set?: string[];
  json?: boolean;
  pcap?: string;
  kernelDefaults?: boolean;
  /** Config file with the user's targets (default: harness.config.json/.yaml/… in the cwd). */
  config?: string;
  /** Raw `--port` value. */
  port?: string;
  sysctlsFrom?: string;
}

/** Parses `--port`: digits only, so "9e3" or "80abc" are refused rather than coerced. */
export function parsePortFlag(raw: string): number {
  if (!/^\d{1,6}$/.test(raw)) throw new UsageError('--port', `"${raw}" is not a TCP port`, 'give a whole number from 1 to 65535 (default 9000)');
  return Number(raw);
}

/** A flag given with an empty value (`--target ''`) is a mistake, not a request for the default. */
export function assertNonEmpty(flag: string, value: string | undefined, fix: string): void {
  if (value !== undefined && value.trim() === '') throw new UsageError(flag, 'is empty', fix);
}

export function parseSetFlags(raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of raw) {
    const m = /^([a-zA-Z][a-zA-Z0-9]*)=(.*)$/.exec(s);
    if (!m) throw new UsageError('--set', `"${s}" is not PARAM=VALUE`, 'write e.g. --set syncnt=3 (harness list shows each scenario\'s parameters)');
    out[m[1]!] = m[2]!;
  }
  return out;
}

export async function runCommand(
  opts: RunCommandOptions,
  env: RunEnv & { log: Logger; session: Session; write: (s: string) => void },
): Promise<{ exitCode: ExitCode; results: Result[] }> {
  const names = opts.all ? Object.keys(faults) : opts.scenarios;
  if (names.length === 0) throw new UsageError('scenario', 'no scenario given', 'name one (harness list) or pass --all');
  if (opts.all && opts.scenarios.length) throw new UsageError('--all', 'give scenario names or --all, not both', 'drop the names or --all');
  assertNonEmpty('--target', opts.target, 'name a target (harness list shows them), or leave --target out for the built-in one');
  assertNonEmpty('--pcap', opts.pcap, 'give a folder for the capture, or leave --pcap out');
  assertNonEmpty('--sysctls-from', opts.sysctlsFrom, 'give the path of a file holding `sysctl -a` output, or leave --sysctls-from out');
  const sysctls = (opts.sysctl ?? []).map((s) => parseSysctlFlag(s));
  const params = parseSetFlags(opts.set ?? []);
  // With several scenarios, --set applies to those whose schema has the parameter.
  const requests: RunRequest[] = names.map((scenario) => ({
    scenario,
    params: names.length > 1 ? pick(scenario, params) : params,
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    sysctls,
    ...(opts.kernelDefaults ? { kernelDefaults: true } : {}),
    ...(opts.pcap ? { pcapDir: opts.pcap } : {}),
    ...(opts.port !== undefined ? { port: parsePortFlag(opts.port) } : {}),
    ...(opts.sysctlsFrom ? { sysctlsFrom: opts.sysctlsFrom } : {}),
  }));
  // The user's targets (config file), validated before anything runs.
  const { loadConfig } = await import('../engine/config.js');
  const config = await loadConfig(opts.config);
  if (Object.keys(config.targets).length) env = { ...env, targets: { ...env.targets, ...config.targets } };
  const prepared = [];
  for (const r of requests) prepared.push(await prepare(r, env));
  const report = prepared[0]?.sysctlsFrom;
  if (report) {
    env.log.info({ file: report.file, applied: Object.keys(report.applied).length }, 'production sysctls applied in both namespaces');
    for (const s of report.skipped) env.log.warn({ key: s.key, value: s.value }, `--sysctls-from: not applied: ${s.reason}`);
  }
  await assertRoot();
  // Two watchers per scenario: beyond four at once, poll every 10 ms instead of 5 (DESIGN's ≤ 10 ms).
  const runEnv = { ...env, watchIntervalMs: env.watchIntervalMs ?? (prepared.length > 4 ? 10 : 5) };
  const results = await Promise.all(
    prepared.map(async (p) => {
      const r = await execute(p, runEnv);
      env.write(opts.json ? `${JSON.stringify(r)}\n` : formatResult(r));
      return r;
    }),
  );
  const exitCode: ExitCode = results.some((r) => r.verdict === 'error') ? 3 : results.every((r) => r.verdict === 'pass') ? 0 : 1;
  return { exitCode, results };
}

function pick(scenario: string, params: Record<string, string>): Record<string, string> {
  const f = (faults as Record<string, { params: { shape: Record<string, unknown> } }>)[scenario];
  if (!f) return params;
  return Object.fromEntries(Object.entries(params).filter(([k]) => k in f.params.shape));
}
