/**
 * The one place that spawns processes. Every command is an argv array (never a shell string);
 * `inNetns` prefixes nsenter so a command acts inside a namespace without touching the host's.
 *
 * Every child starts in a process group of its own (`detached`: setsid). A terminal's Ctrl-C is
 * sent to the whole foreground process group; children in ours would die with it — among them
 * the `docker`, `ip` and `iptables` commands the revert is running at that moment — and the
 * cleanup would fail. In their own group only the harness gets the signal, and the revert decides
 * what stops and when. What must not outlive a killed harness dies with it by other means: the
 * probe sets PR_SET_PDEATHSIG (HARNESS_DIE_WITH_PARENT), the rest is journaled for `harness gc`.
 */
import { execa, type ResultPromise } from 'execa';
import { CommandError } from './errors.js';
import type { Netns } from './netns.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  failed: boolean;
  /** The signal that killed it, if one did (e.g. SIGINT). */
  signal?: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** When false, a non-zero exit is returned as data instead of thrown. Default true. */
  reject?: boolean;
  env?: Record<string, string>;
  /**
   * Called with each line of stdout and stderr as it arrives (a long build's progress); the
   * result still carries all of the output.
   */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  const r = await execa(file, args, {
    reject: false,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
    ...(opts.input === undefined ? {} : { input: opts.input }),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.onLine ? { stdout: tapLines(opts.onLine, 'stdout'), stderr: tapLines(opts.onLine, 'stderr') } : {}),
    stripFinalNewline: false,
    detached: true,
  });
  const res: RunResult = {
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    exitCode: r.exitCode,
    failed: r.failed,
    ...(r.signal ? { signal: r.signal } : {}),
  };
  if (res.failed && opts.reject !== false) throw new CommandError(argv, r.exitCode, res.stderr || String(r.message ?? ''));
  return res;
}

/**
 * An execa line transform that shows each line to `onLine` (without its newline) and passes it on
 * byte for byte (preserveNewlines: a last line without a newline does not gain one).
 */
function tapLines(onLine: NonNullable<RunOptions['onLine']>, stream: 'stdout' | 'stderr') {
  return {
    *transform(line: unknown) {
      onLine(String(line).replace(/\r?\n$/, ''), stream);
      yield line;
    },
    preserveNewlines: true,
  };
}

/** argv that runs `argv` inside the network namespace `ns` (and only there). */
export function inNetns(ns: Netns, argv: readonly string[]): string[] {
  return ['nsenter', `--net=${ns.path}`, '--', ...argv];
}

export type LongProcess = ResultPromise<{ buffer: false; reject: false; stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe' }>;

export interface LineHandlers {
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  /** Written to the child's descriptor 3 (then closed): input that must not go through a file. */
  input3?: string;
  /** Aborting sends SIGTERM to the child. */
  signal?: AbortSignal;
  /** Extra environment for the child (on top of this process's). */
  env?: Record<string, string>;
}

/**
 * Starts a long-running process (server, watcher, tcpdump). Output is not buffered, and execa
 * discards what nobody reads, so the line handlers are attached here, before the first byte can
 * arrive. The promise never rejects; check its result.
 */
export function spawnLong(argv: readonly string[], handlers: LineHandlers = {}): LongProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('spawnLong: empty argv');
  const proc = execa(file, args, {
    buffer: false,
    reject: false,
    // `input3` goes to the child's descriptor 3, which is then closed.
    stdio: handlers.input3 === undefined ? ['pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe', 'pipe'],
    ...(handlers.signal ? { cancelSignal: handlers.signal, killSignal: 'SIGTERM' as const } : {}),
    // Own process group (see above). execa's `cleanup` does not apply to detached children: the
    // probe (and anything else that honours it) dies with us through PR_SET_PDEATHSIG, even on
    // SIGKILL; servers, watchers and tcpdump are journaled and killed by the revert.
    detached: true,
    env: { ...handlers.env, HARNESS_DIE_WITH_PARENT: '1' },
  }) as unknown as LongProcess;
  if (handlers.input3 !== undefined) (proc.stdio[3] as unknown as NodeJS.WritableStream).end(handlers.input3);
  onLines(proc.stdout, handlers.stdout ?? (() => undefined));
  onLines(proc.stderr, handlers.stderr ?? (() => undefined));
  return proc;
}

/** Calls `onLine` for each complete line the stream emits. */
export function onLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (chunk: string | Buffer) => {
    rest += String(chunk);
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (line.trim()) onLine(line);
    }
  });
  stream.on('end', () => {
    if (rest.trim()) onLine(rest);
    rest = '';
  });
}

/** Rejects with `message` if `p` has not settled after `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
