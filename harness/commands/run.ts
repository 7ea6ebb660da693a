/** `harness run`: prepares every scenario first (bad input changes nothing), then runs them concurrently. */
import { faults } from '../../faults/index.js';
import { UsageError, type ExitCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Result } from '../verdict/result.js';
import { assertRoot, execute, prepare, type RunEnv, type RunRequest } from '../engine/runner.js';
import type { Session } from '../core/session.js';
import { parseSysctlFlag } from '../core/sysctl.js';
import { parsePort } from '../core/port.js';
import { formatResult } from '../report/text.js';
import { prepareOutputs } from '../report/outputs.js';

export interface RunCommandOptions {
  scenarios: string[];
  all?: boolean;
  target?: string;
  sysctl?: string[];
  set?: string[];
  json?: boolean;
  pcap?: string;
  /** `--report DIR`: an HTML page per run (and an index); `--junit FILE`: a JUnit XML report. */
  report?: string;
  junit?: string;
  kernelDefaults?: boolean;
  /** Config file with the user's targets (default: harness.config.json/.yaml/… in the cwd). */
  config?: string;
  /** Raw `--port` value. */
  port?: string;
  sysctlsFrom?: string;
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
  const sysctls = (opts.sysctl ?? []).map((s) => parseSysctlFlag(s));
  const params = parseSetFlags(opts.set ?? []);
  const out = await prepareOutputs(opts, env.write, env.log);
  // With several scenarios, --set applies to those whose schema has the parameter.
  const requests: RunRequest[] = names.map((scenario) => ({
    scenario,
    params: names.length > 1 ? pick(scenario, params) : params,
    ...(opts.target ? { target: opts.target } : {}),
    sysctls,
    ...(opts.kernelDefaults ? { kernelDefaults: true } : {}),
    ...(out.pcapDir ? { pcapDir: out.pcapDir } : {}),
    ...(opts.port !== undefined ? { port: parsePort(opts.port, '--port', 'give a whole number from 1 to 65535 (default 9000)') } : {}),
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
  const runEnv = out.start({ ...env, watchIntervalMs: env.watchIntervalMs ?? (prepared.length > 4 ? 10 : 5) }, prepared.map((p) => ({ runId: p.runId, scenario: p.fault.name })));
  const results = await Promise.all(
    prepared.map(async (p) => {
      const r = await execute(p, runEnv);
      out.print(r.runId, opts.json ? `${JSON.stringify(r)}\n` : formatResult(r));
      await out.afterRun(r);
      return r;
    }),
  ).finally(() => out.stop());
  await out.finish(results);
  const exitCode: ExitCode = results.some((r) => r.verdict === 'error') ? 3 : results.every((r) => r.verdict === 'pass') ? 0 : 1;
  return { exitCode, results };
}

function pick(scenario: string, params: Record<string, string>): Record<string, string> {
  const f = (faults as Record<string, { params: { shape: Record<string, unknown> } }>)[scenario];
  if (!f) return params;
  return Object.fromEntries(Object.entries(params).filter(([k]) => k in f.params.shape));
}
