/**
 * The user's own client: its command, when the fault strikes, and the user's assertions, parsed
 * and validated before anything runs (bad input: a UsageError naming the flag).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { ClientExpect } from '../verdict/client.js';
import type { AnyFault } from './prepare.js';

export type Strike = { kind: 'established'; delayMs: number } | { kind: 'at'; ms: number };

export interface ClientSpec {
  /** argv; `{host}` and `{port}` are replaced by the target's address and port. */
  argv: string[];
  /** Extra environment (HARNESS_TARGET_HOST and HARNESS_TARGET_PORT are always set). */
  env?: Record<string, string>;
  /** Container targets: run the command in a container of this image, in the client's namespace. */
  image?: string;
  /** Kill the client after this long (default: the kernel's predicted end plus a margin). */
  timeoutMs?: number;
  /** When a mid-connection fault strikes (default: when the client's connection is ESTABLISHED). */
  strike?: Strike;
  expect?: ClientExpect;
}

const PLACEHOLDERS = new Set(['{host}', '{port}']);

/** `500ms`, `2s`, `1.5s`, `1m`, or a bare number of ms. */
export function parseDuration(raw: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new UsageError(flag, `"${raw}" is not a duration`, 'write e.g. 500ms, 2s, 1.5s or 1m');
  const n = Number(m[1]);
  const ms = m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
  if (!Number.isFinite(ms) || ms > 24 * 3600_000) throw new UsageError(flag, `"${raw}" is out of range`, 'at most 24 h');
  return Math.round(ms);
}

/** `--strike established[+DURATION]` or `--strike at:DURATION`. */
export function parseStrike(raw: string): Strike {
  const est = /^established(?:\+(.+))?$/.exec(raw);
  if (est) return { kind: 'established', delayMs: est[1] ? parseDuration(est[1], '--strike') : 0 };
  const at = /^at:(.+)$/.exec(raw);
  if (at) return { kind: 'at', ms: parseDuration(at[1]!, '--strike') };
  throw new UsageError('--strike', `"${raw}" is not a strike`, 'write established, established+500ms or at:2s');
}

/** `--expect-exit 0|nonzero|CODE`. */
export function parseExpectExit(raw: string): number | 'nonzero' {
  if (raw === 'nonzero') return 'nonzero';
  if (/^\d{1,3}$/.test(raw) && Number(raw) <= 255) return Number(raw);
  throw new UsageError('--expect-exit', `"${raw}" is not an exit code`, 'write 0, nonzero, or a code from 0 to 255');
}

async function onPath(cmd: string): Promise<boolean> {
  const dirs = isAbsolute(cmd) || cmd.includes('/') ? [''] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const ok = await access(d ? join(d, cmd) : cmd, constants.X_OK).then(() => true, () => false);
    if (ok) return true;
  }
  return false;
}

/** Validates a client spec against the fault and the target's backend. Changes nothing. */
export async function checkClientSpec(c: ClientSpec, fault: AnyFault, backend: 'netns' | 'container'): Promise<ClientSpec> {
  if (c.argv.length === 0 || !c.argv[0]) throw new UsageError('--', 'the client command is empty', 'write the command after --, e.g. -- curl http://{host}:{port}/');
  for (const a of c.argv) {
    for (const m of a.match(/\{[a-z_]+\}/gi) ?? []) {
      if (!PLACEHOLDERS.has(m)) throw new UsageError('--', `unknown placeholder ${m} in "${a}"`, 'the command may use {host} and {port}');
    }
  }
  if (c.image !== undefined) {
    if (!/^[a-z0-9][a-z0-9._/:@-]{0,254}$/.test(c.image)) throw new UsageError('--client-image', `"${c.image}" is not an image name`, 'e.g. harness/redis:local');
    if (backend !== 'container') throw new UsageError('--client-image', `the target is a ${backend} target`, 'a client image joins a container target\'s network: use --target with a container target, or drop --client-image to run the command on this machine');
  } else if (!(await onPath(c.argv[0]))) {
    throw new UsageError('--', `command not found: ${c.argv[0]}`, 'give a command on PATH or an absolute path (it runs in the client namespace with this machine\'s files)');
  }
  if (!fault.connection) {
    throw new UsageError('--', `${fault.name} cannot drive your own client: its outcome is defined by the probe's script`, 'run it without a client command, or pick a scenario that can (harness list shows "your client")');
  }
  if (c.strike && !fault.triggers) {
    throw new UsageError('--strike', `${fault.name} does not strike mid-connection (its fault is in force from the start)`, 'drop --strike');
  }
  if (c.timeoutMs !== undefined && !(Number.isInteger(c.timeoutMs) && c.timeoutMs > 0)) {
    throw new UsageError('--client-timeout', `${c.timeoutMs} is not a duration`, 'write e.g. 30s');
  }
  if (c.env) {
    for (const k of Object.keys(c.env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new UsageError('client.env', `"${k}" is not an environment variable name`, 'letters, digits and _');
  }
  return c;
}

/** argv with {host} and {port} filled in. */
export function fillPlaceholders(argv: readonly string[], host: string, port: number): string[] {
  return argv.map((a) => a.replaceAll('{host}', host).replaceAll('{port}', String(port)));
}
