/**
 * The config file: your own targets, by name. `harness.config.json`, `.yaml`/`.yml` found in the
 * working directory, or any of those or a `.js`/`.mjs` default export given with `--config FILE`.
 *
 * The harness runs as root and a config names commands to run, so a config file is trusted like
 * ssh trusts its files: it, its folder and every folder above must belong to root or the invoking
 * user (SUDO_UID under sudo) and be writable by nobody else (a sticky /tmp above is fine), or it is
 * refused with the fix. Code (`.js`/`.mjs`) is never loaded unless named with `--config`: a plain
 * `harness run` in a folder someone else prepared runs no one's code. Built-in target names cannot
 * be redefined, so `--target builtin` always means the harness's own.
 *
 *   { "targets": {
 *       "my-svc": { "build": "./svc", "port": 8080, "env": {"K": "v"}, "ready": {"log": "listening"} },
 *       "pg":     { "image": "postgres:16", "port": 5432, "ready": {"tcp": true} },
 *       "my-bin": { "process": ["./server", "--port", "7000"], "port": 7000, "ready": {"http": "/health"} } } }
 *
 * Paths are relative to the config file. Everything is validated (zod) before anything runs; an
 * error names the field (`targets.my-svc.port: must be 1-65535`) and exits 2, nothing changed.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { containerTarget } from '../../targets/container.js';
import { processTarget } from '../../targets/process.js';
import type { ReadySpec } from '../../targets/ready.js';
import type { TargetSpec } from '../../targets/target.js';
import { builtinTargets } from '../../targets/index.js';
import { UsageError } from '../core/errors.js';
import { readInputFile } from '../core/input-file.js';
import { checkTrustedPath } from '../core/ownership.js';

/** Looked for in the working directory. Data only: code configs load only when named with --config. */
export const CONFIG_NAMES = ['harness.config.json', 'harness.config.yaml', 'harness.config.yml'] as const;

/** A config is a few targets; a megabyte is not one. */
export const MAX_CONFIG_BYTES = 1 << 20;

const PORT_MSG = 'must be 1-65535';
const port = z.number({ error: 'must be a number (1-65535)' }).int(PORT_MSG).min(1, PORT_MSG).max(65535, PORT_MSG);

const regex = z.string().min(1, 'must not be empty').refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'is not a valid regular expression' },
);

const ready = z.union([
  z.strictObject({ log: regex }),
  z.strictObject({ http: z.string().startsWith('/', 'must be a path starting with "/"') }),
  z.strictObject({ tcp: z.literal(true) }),
], { error: 'must be {"log": "regex"}, {"http": "/path"} or {"tcp": true}' });

const envSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name'), z.string({ error: 'values must be strings' }));

const common = {
  port,
  env: envSchema.optional(),
  ready: ready.optional(),
  readyTimeoutMs: z.number().int().min(100).max(600_000).optional(),
  describe: z.string().optional(),
};

export const containerTargetSchema = z
  .strictObject({
    image: z.string().regex(/^[a-z0-9][a-z0-9._\/:@-]*$/i, 'must be an image reference like name:tag').optional(),
    build: z.string().min(1).optional(),
    command: z.array(z.string()).min(1).optional(),
    ...common,
  })
  .refine((t) => (t.image === undefined) !== (t.build === undefined), { error: 'give exactly one of "image", "build" or "process"', path: ['image'] });

export const processTargetSchema = z.strictObject({
  process: z.array(z.string().min(1, 'must not be empty')).min(1, 'must name a command').refine((a) => !a[0]?.includes('='), { error: 'the command must not contain "="' }),
  ...common,
});

export const TARGET_NAME = /^[a-z0-9][a-z0-9_.-]{0,39}$/;

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  targets: z.record(z.string(), z.unknown(), { error: 'must be an object of named targets' }).default({}),
});

export type ContainerTargetConfig = z.infer<typeof containerTargetSchema>;
export type ProcessTargetConfig = z.infer<typeof processTargetSchema>;

export interface LoadedConfig {
  /** Absolute path of the file, or undefined when there is none. */
  path?: string;
  targets: Record<string, TargetSpec>;
}

function issuePath(prefix: (string | number)[], issue: z.core.$ZodIssue): string {
  return [...prefix, ...issue.path.map((p) => String(p))].join('.');
}

function fail(file: string, prefix: (string | number)[], err: z.ZodError): never {
  const issue = err.issues[0]!;
  // A union reports "invalid input" at its own path; the message we gave it says what is expected.
  throw new UsageError(issuePath(prefix, issue) || 'config', issue.message, `in ${file}`);
}

/** Validates a parsed config object and turns each entry into a TargetSpec. Pure but for file checks. */
export async function targetsFromConfig(raw: unknown, file: string): Promise<Record<string, TargetSpec>> {
  const base = dirname(file);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UsageError('config', `${file} holds ${raw === null || raw === undefined ? 'nothing (null)' : Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}, not an object`, `write {"targets": {"my-svc": {...}}} in ${file} (README: the config file)`);
  }
  const top = configSchema.safeParse(raw);
  if (!top.success) fail(file, [], top.error);
  const out: Record<string, TargetSpec> = {};
  for (const [name, value] of Object.entries(top.data.targets)) {
    const where = ['targets', name];
    if (!TARGET_NAME.test(name)) throw new UsageError(`targets.${name}`, 'target names are lowercase letters, digits, "-", "_", "." (max 40)', `in ${file}`);
    if (Object.hasOwn(builtinTargets, name)) {
      throw new UsageError(`targets.${name}`, `"${name}" is a built-in target and cannot be redefined`, `give yours another name in ${file} (built-in: ${Object.keys(builtinTargets).join(', ')})`);
    }
    const isProcess = typeof value === 'object' && value !== null && 'process' in value;
    if (isProcess) {
      const t = processTargetSchema.safeParse(value);
      if (!t.success) fail(file, where, t.error);
      const argv = [...t.data.process];
      if (argv[0]!.includes('/')) {
        argv[0] = resolve(base, argv[0]!);
        if (!(await access(argv[0], constants.X_OK).then(() => true, () => false))) {
          throw new UsageError(`targets.${name}.process`, `${argv[0]} does not exist or is not executable`, `in ${file}; paths are relative to the config file`);
        }
      }
      out[name] = processTarget({ name, argv, cwd: base, port: t.data.port, ...opt(t.data) });
    } else {
      const t = containerTargetSchema.safeParse(value);
      if (!t.success) fail(file, where, t.error);
      let build: string | undefined;
      if (t.data.build !== undefined) {
        build = isAbsolute(t.data.build) ? t.data.build : resolve(base, t.data.build);
        const df = await stat(resolve(build, 'Dockerfile')).catch(() => undefined);
        if (!df?.isFile()) throw new UsageError(`targets.${name}.build`, `no Dockerfile in ${build}`, `in ${file}; "build" is a folder with a Dockerfile, relative to the config file`);
      }
      out[name] = containerTarget({
        name,
        ...(build ? { build } : { image: t.data.image! }),
        port: t.data.port,
        ...(t.data.command ? { command: t.data.command } : {}),
        ...opt(t.data),
      });
    }
  }
  return out;
}

function opt(t: { env?: Record<string, string> | undefined; ready?: ReadySpec | undefined; readyTimeoutMs?: number | undefined; describe?: string | undefined }) {
  return {
    ...(t.env ? { env: t.env } : {}),
    ...(t.ready ? { ready: t.ready as ReadySpec } : {}),
    ...(t.readyTimeoutMs ? { readyTimeoutMs: t.readyTimeoutMs } : {}),
    ...(t.describe ? { describe: t.describe } : {}),
  };
}

/**
 * Refuses a config file that someone other than root or the invoking user could have written (or
 * could still swap): see the top of this file. `flag` names where it came from.
 */
export async function assertTrustedConfig(file: string, flag: string): Promise<void> {
  const why = await checkTrustedPath(file, { strictParent: true });
  if (!why) return;
  if (why.problem === 'unreadable') {
    throw new UsageError(flag, `cannot read ${file}: ${why.message.split(': ').pop()}`, 'give the path of an existing harness.config.json/.yaml');
  }
  throw new UsageError(flag, `refusing ${file}: ${why.message}; the harness runs as root and would do what it says`, why.fix);
}

/** Reads and parses one config file (JSON, YAML, or — only when `explicit` — a JS module's default export). */
export async function readConfigFile(file: string, explicit = true): Promise<unknown> {
  const flag = explicit ? '--config' : 'config';
  await assertTrustedConfig(file, flag);
  if (/\.(m?js)$/.test(file)) {
    if (!explicit) throw new UsageError(flag, `${file} is code and is loaded only when named with --config`, `run with --config ${file}`);
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
      return mod.default;
    } catch (e) {
      throw new UsageError('--config', `${file}: could not load: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const text = await readInputFile(file, { flag, maxBytes: MAX_CONFIG_BYTES, expected: 'a harness.config.json/.yaml' });
  try {
    return /\.ya?ml$/.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(flag, `${file} is not valid ${/\.ya?ml$/.test(file) ? 'YAML' : 'JSON'}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The explicit file, or the first of CONFIG_NAMES in `cwd`, or none. */
export async function findConfig(explicit: string | undefined, cwd = process.cwd()): Promise<string | undefined> {
  if (explicit !== undefined) {
    if (explicit.trim() === '') throw new UsageError('--config', 'is empty', 'give the path of a harness.config.json/.yaml, or leave --config out');
    return resolve(cwd, explicit);
  }
  for (const n of CONFIG_NAMES) {
    const p = resolve(cwd, n);
    if (await stat(p).then((s) => s.isFile(), () => false)) return p;
  }
  return undefined;
}

export async function loadConfig(explicit?: string, cwd = process.cwd()): Promise<LoadedConfig> {
  const file = await findConfig(explicit, cwd);
  if (!file) return { targets: {} };
  const raw = await readConfigFile(file, explicit !== undefined);
  return { path: file, targets: await targetsFromConfig(raw, file) };
}
