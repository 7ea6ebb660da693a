/**
 * Errors carry a stable `code`, the process exit code they map to (DESIGN §5) and a hint that
 * tells the user how to fix it. The CLI's single top-level catch turns them into messages.
 */
/** 0 pass, 1 a verdict failed, 2 usage, 3 environment, 4 inconclusive (too loaded to judge; re-run). */
export type ExitCode = 0 | 1 | 2 | 3 | 4;

export class HarnessError extends Error {
  readonly code: string;
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(code: string, message: string, opts: { exitCode: ExitCode; hint?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = opts.exitCode;
    this.hint = opts.hint;
  }
}

/** Bad usage or configuration: exit 2. Nothing has been changed when one of these is thrown. */
export class UsageError extends HarnessError {
  /** The flag or config field at fault, e.g. `--sysctl`. */
  readonly flag: string;
  constructor(flag: string, message: string, hint?: string) {
    super('E_USAGE', `${flag}: ${message}`, { exitCode: 2, ...(hint ? { hint } : {}) });
    this.flag = flag;
  }
}

/** The machine cannot run the harness (not root, tool missing, Docker down): exit 3. */
export class EnvironmentError extends HarnessError {
  constructor(code: string, message: string, hint?: string, cause?: unknown) {
    super(code, message, { exitCode: 3, ...(hint ? { hint } : {}), cause });
  }
}

/** A command the harness ran failed unexpectedly (not a network error seen by the probe). */
export class CommandError extends HarnessError {
  readonly argv: readonly string[];
  readonly stderr: string;
  readonly exitStatus: number | undefined;
  constructor(argv: readonly string[], exitStatus: number | undefined, stderr: string) {
    super('E_COMMAND', `command failed (exit ${exitStatus ?? 'signal'}): ${argv.join(' ')}${stderr ? `\n${stderr.trim()}` : ''}`, {
      exitCode: 3,
    });
    this.argv = argv;
    this.stderr = stderr;
    this.exitStatus = exitStatus;
  }
}

export function formatError(err: unknown): string {
  if (err instanceof HarnessError) return err.hint ? `${err.message}\n  fix: ${err.hint}` : err.message;
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}
