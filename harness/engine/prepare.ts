/**
 * Preparing a run: validates everything the user gave (scenario, parameters, target, port,
 * sysctls, capture directory) and changes nothing. Bad input is a UsageError naming the flag.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { faults, isFaultName, type FaultName } from '../../faults/index.js';
import type { FaultDefinition } from '../../faults/define.js';
import { builtinTargets, DEFAULT_TARGET } from '../../targets/index.js';
import type { TargetSpec } from '../../targets/target.js';
import { EnvironmentError, UsageError } from '../core/errors.js';
import { requireMechanisms } from '../core/mechanisms.js';
import { parsePort } from '../core/port.js';
import { readSysctlsFrom, type SysctlsFromReport } from '../core/sysctls-from.js';
import { namespacedKeys, SIDES, validateKeys, validateValues, type SidedSysctls, type SysctlSetting } from '../core/sysctl.js';
import { probePath } from '../core/probe.js';
import { checkCaptureDir } from './observers/pcap.js';
import { assertPlayable } from './applicability.js';
import { checkClientSpec, type ClientSpec } from './client-spec.js';

export type AnyFault = FaultDefinition<z.ZodObject>;

export interface RunRequest {
  scenario: string;
  /** Raw `--set` values, validated against the fault's schema. */
  params?: Record<string, unknown>;
  /** A target spec, or a built-in target's name. Default: the built-in target. */
  target?: TargetSpec | string;
  sysctls?: SysctlSetting[];
  /** Skip the fault's fast sysctls: reproduce with the kernel's defaults (minutes-long timers). */
  kernelDefaults?: boolean;
  /** Write packet captures of both namespaces here. */
  pcapDir?: string;
  /** Port of a built-in target (default 9000). */
  port?: number;
  /** A production machine's `sysctl -a`: its TCP settings go into both namespaces. */
  sysctlsFrom?: string;
  /** The user's own client command instead of the probe's script. */
  client?: ClientSpec;
  /**
   * The probe's connect/read/write/close block, the way most real clients call them (Python's
   * socket.create_connection, Java, database drivers), instead of non-blocking + epoll; the model
   * predicts for that API (FaultContext.blocking). Not with a client command (it is the user's own API).
   */
  blocking?: boolean;
}

export interface PreparedRun {
  runId: string;
  fault: AnyFault;
  params: Record<string, unknown>;
  target: TargetSpec;
  sysctls: SidedSysctls;
  pcapDir?: string;
  port?: number;
  /** What --sysctls-from applied and what it could not. */
  sysctlsFrom?: SysctlsFromReport;
  client?: ClientSpec;
  /** A plan entry's name (shown in the Result). */
  name?: string;
  blocking?: boolean;
}

/** 6 base-36 chars: short enough for 15-char interface names (`harness<runId>c`). */
export function newRunId(): string {
  const n = randomBytes(5).readUIntBE(0, 5);
  return n.toString(36).padStart(8, '0').slice(-6);
}

export async function assertRoot(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError('E_NOT_ROOT', 'the harness must run as root (it makes network namespaces and iptables rules)', 'run it with sudo, or as root in CI');
  }
}

export function paramNames(fault: AnyFault): string {
  const keys = Object.keys(fault.params.shape);
  return keys.length ? keys.join(', ') : '(none)';
}

export function resolveFault(scenario: string): AnyFault {
  if (!isFaultName(scenario)) {
    throw new UsageError('scenario', `unknown scenario "${scenario}"`, `one of: ${Object.keys(faults).join(', ')} (harness list)`);
  }
  return faults[scenario as FaultName] as unknown as AnyFault;
}

export function parseParams(fault: AnyFault, raw: Record<string, unknown> = {}): Record<string, unknown> {
  const parsed = fault.params.strict().safeParse(raw);
  if (parsed.success) return parsed.data as Record<string, unknown>;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.join('.') || Object.keys(raw).join(',');
  throw new UsageError('--set', `${fault.name}: ${key}: ${issue.message}`, `parameters of ${fault.name}: ${paramNames(fault)}`);
}

export function resolveTarget(target: TargetSpec | string | undefined, extra: Record<string, TargetSpec> = {}): TargetSpec {
  if (typeof target === 'object') return target;
  const name = target ?? DEFAULT_TARGET;
  const all = { ...builtinTargets, ...extra };
  const t = all[name];
  if (!t) throw new UsageError('--target', `unknown target "${name}"`, `one of: ${Object.keys(all).join(', ')}, or define it in harness.config.json`);
  return t;
}

/** A scenario refused on a target whose server cannot play its part (`--all` skips it instead). */
export class TargetRefusedError extends UsageError {}

/** A fault that depends on how the server behaves refuses a target whose server cannot play the part. */
export function refuseTarget(fault: AnyFault, params: Record<string, unknown>, target: TargetSpec): void {
  const refused = fault.refuseTarget?.(target, params);
  if (!refused) return;
  const fit = Object.values(builtinTargets).filter((t) => !fault.refuseTarget!(t, params)).map((t) => t.name);
  const runsOn = fit.length ? `targets it runs on${typeof refused === 'string' ? '' : ' with that value'}: ${fit.join(', ')}` : undefined;
  if (typeof refused === 'string') throw new TargetRefusedError('--target', `${fault.name} cannot run on target ${target.name}: ${refused}`, runsOn);
  throw new UsageError('--set', `${fault.name}: ${refused.param}: ${refused.why}`, runsOn);
}

/**
 * The sysctls of each side, by precedence: the fault's fast values < a production dump < explicit
 * --sysctl flags; every key checked against /proc/sys and every value tried before anything runs.
 */
async function resolveSysctls(fault: AnyFault, params: Record<string, unknown>, req: RunRequest): Promise<{ sysctls: SidedSysctls; prod?: SysctlsFromReport }> {
  const fast = req.kernelDefaults ? {} : fault.fastSysctls(params);
  const prod = req.sysctlsFrom ? await readSysctlsFrom(req.sysctlsFrom, await namespacedKeys()) : undefined;
  const sysctls: SidedSysctls = {
    client: { ...fast.client, ...prod?.applied },
    server: { ...fast.server, ...prod?.applied },
  };
  for (const s of req.sysctls ?? []) sysctls[s.side][s.key] = s.value;
  await validateKeys([...Object.keys(sysctls.client), ...Object.keys(sysctls.server)]);
  for (const side of SIDES) await validateValues(sysctls[side]);
  return prod ? { sysctls, prod } : { sysctls };
}

/** Validates a request completely. Changes nothing. Throws UsageError naming the flag. */
export async function prepare(req: RunRequest, env: { targets?: Record<string, TargetSpec> } = {}): Promise<PreparedRun> {
  const fault = resolveFault(req.scenario);
  const params = parseParams(fault, req.params);
  const target = resolveTarget(req.target, env.targets);
  // A scenario the target cannot play is refused here, before Docker is even asked.
  assertPlayable(fault, params, req.params, target, { ...builtinTargets, ...env.targets });
  refuseTarget(fault, params, target);
  // What the fault needs of this machine, and Docker up, image present (or built): checked now,
  // before anything of the run exists.
  await fault.check?.(params);
  await target.check?.();
  const port = req.port === undefined ? undefined : parsePort(req.port, '--port', 'give a whole number from 1 to 65535 (default 9000)');
  const { sysctls, prod } = await resolveSysctls(fault, params, req);
  const pcapDir = req.pcapDir === undefined ? undefined : await checkCaptureDir(req.pcapDir);
  const client = req.client ? await checkClientSpec(req.client, fault, target.backend) : undefined;
  // Every run needs the probe (server, watchers, client): missing, it is E_PROBE_MISSING with the
  // fix for a checkout or an installed package, before anything of the run exists.
  probePath();
  // NFQUEUE, a qdisc, a match module: proven in a throwaway namespace, refused with the fix (exit 3).
  await requireMechanisms(fault.name, fault.mechanisms?.(params) ?? []);
  if (req.blocking !== undefined && typeof req.blocking !== 'boolean') throw new UsageError('--blocking', 'must be true or false', 'pass --blocking, or blocking: true in the request');
  if (req.blocking && client) throw new UsageError('--blocking', 'is the probe\'s API; a client command brings its own', 'drop --blocking, or the command after --');
  return {
    runId: newRunId(),
    fault,
    params,
    target,
    sysctls,
    ...(pcapDir ? { pcapDir } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(prod ? { sysctlsFrom: prod } : {}),
    ...(client ? { client } : {}),
    ...(req.blocking ? { blocking: true } : {}),
  };
}
