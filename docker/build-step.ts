/**
 * Running the tools an image build needs (docker build, docker import, debootstrap, tar, make):
 * through harness/core/exec.ts like every other process, argv only. A failed step throws a
 * BuildError carrying the tail of its output, which the report shows under the image.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../harness/core/exec.js';

export class BuildError extends Error {
  constructor(
    message: string,
    /** How to fix it, when known. */
    readonly fix?: string,
  ) {
    super(message);
    this.name = 'BuildError';
  }
}

/** What every image build step is given. */
export interface BuildCtx {
  /** The repository root (docker/, probe/, .cache/ are under it). */
  root: string;
  /** Rebuild even when an up-to-date image exists (docker build --no-cache). */
  force: boolean;
  /** debootstrap again even when the cached rootfs tarball exists. */
  refreshRootfs: boolean;
  /** Static probe binary for harness/probe, when not probe/build/harness-probe-static. */
  probeBinary: string | undefined;
  /** Pass every output line of the tools to `log`. */
  verbose: boolean;
  log: (msg: string) => void;
}

const TAIL_LINES = 15;

/** Runs one step; on failure throws with the last lines of its output (stdout, then stderr). */
export async function buildStep(argv: readonly string[], ctx: Pick<BuildCtx, 'verbose' | 'log'>, env?: Record<string, string>): Promise<void> {
  const r = await run(argv, {
    reject: false,
    ...(env ? { env } : {}),
    ...(ctx.verbose ? { onLine: (line: string) => ctx.log(`  ${line}`) } : {}),
  });
  if (!r.failed) return;
  const lines = (s: string) => s.trimEnd().split('\n').filter(Boolean);
  const tail = [...lines(r.stdout), ...lines(r.stderr)].slice(-TAIL_LINES).join('\n');
  const how = r.exitCode === undefined ? 'did not run to an exit (not found, or killed)' : `exit ${r.exitCode}`;
  throw new BuildError(`${argv.slice(0, 2).join(' ')} … failed (${how})${tail ? `\n${tail}` : ''}`);
}

/** Whether an executable named `bin` is on PATH (or in the sbin folders root's PATH may lack). */
export async function onPath(bin: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      if ((await stat(join(dir, bin))).isFile()) return true;
    } catch {
      /* not in this folder */
    }
  }
  return false;
}

/** `p` relative to the repository root when under it (for messages), else as given. */
export function repoRelative(root: string, p: string): string {
  return p.startsWith(root + '/') ? p.slice(root.length + 1) : p;
}
