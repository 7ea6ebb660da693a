/**
 * The journal: every change is written down with its revert *before* it is applied, so a run
 * that is interrupted (Ctrl-C, SIGTERM, a crash, even SIGKILL via `harness gc`) can be undone.
 * Reverts run newest first, each at most once, carry on past failures and report what they
 * could not undo. Running `revertAll` twice is harmless.
 */
import { access, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';
import type { Logger } from './log.js';
import { NETNS_DIR } from './netns.js';

/** How to undo one change. Each kind knows when there is nothing left to undo. */
export type Revert =
  /** Run an argv. `absent` is a regex on stderr meaning "already undone"; `netnsPath`: moot once that namespace is gone. */
  | { kind: 'argv'; argv: string[]; absent?: string; netnsPath?: string; input?: string }
  /** Kill every process in a named namespace, then delete it. */
  | { kind: 'netns'; name: string }
  /** Kill one process (and verify its start time so a reused pid is never hit). */
  | { kind: 'kill'; pid: number; startTicks: string }
  /** Remove a docker object the run made. */
  | { kind: 'docker'; object: 'container' | 'network'; id: string };

export interface JournalEntry {
  seq: number;
  describe: string;
  revert: Revert;
  done: boolean;
}

export interface JournalFile {
  version: 1;
  runId: string;
  pid: number;
  startedAt: string;
  entries: JournalEntry[];
}

export interface RevertReport {
  reverted: number;
  failed: { describe: string; error: string }[];
}

export function stateDir(): string {
  return process.env.HARNESS_STATE_DIR ?? '/run/harness';
}

export class Journal {
  private constructor(
    readonly path: string,
    private readonly file: JournalFile,
    private readonly log: Logger,
  ) {}

  static async create(runId: string, log: Logger): Promise<Journal> {
    await mkdir(stateDir(), { recursive: true, mode: 0o700 });
    const file: JournalFile = { version: 1, runId, pid: process.pid, startedAt: new Date().toISOString(), entries: [] };
    const j = new Journal(join(stateDir(), `${runId}.json`), file, log);
    await j.flush();
    return j;
  }

  static async load(path: string, log: Logger): Promise<Journal> {
    const file = JSON.parse(await readFile(path, 'utf8')) as JournalFile;
    return new Journal(path, file, log);
  }

  get runId(): string {
    return this.file.runId;
  }

  get ownerPid(): number {
    return this.file.pid;
  }

  get pending(): readonly JournalEntry[] {
    return this.file.entries.filter((e) => !e.done);
  }

  /** Durably records a revert. Call before making the change it undoes. */
  async record(describe: string, revert: Revert): Promise<void> {
    this.file.entries.push({ seq: this.file.entries.length, describe, revert, done: false });
    await this.flush();
  }

  /** Records `revert`, then runs `apply`. If `apply` fails the revert stays: it may have half-applied. */
  async change<T>(describe: string, revert: Revert, apply: () => Promise<T>): Promise<T> {
    await this.record(describe, revert);
    this.log.debug({ change: describe }, 'apply');
    return apply();
  }

  async revertAll(): Promise<RevertReport> {
    const report: RevertReport = { reverted: 0, failed: [] };
    for (const entry of [...this.file.entries].reverse()) {
      if (entry.done) continue;
      try {
        await undo(entry.revert);
        entry.done = true;
        report.reverted++;
        this.log.debug({ revert: entry.describe }, 'reverted');
      } catch (err) {
        report.failed.push({ describe: entry.describe, error: err instanceof Error ? err.message : String(err) });
        this.log.warn({ revert: entry.describe, err }, 'could not revert');
      }
    }
    if (report.failed.length === 0) await rm(this.path, { force: true });
    else await this.flush();
    return report;
  }

  private async flush(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.file, null, 1));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
  );
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined if gone. */
export async function processStartTicks(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function killAndWait(pid: number, startTicks: string | undefined): Promise<void> {
  if (startTicks !== undefined && (await processStartTicks(pid)) !== startTicks) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw e;
  }
  for (let i = 0; i < 200 && (await processStartTicks(pid)) !== undefined; i++) {
    // A zombie child keeps its /proc entry until reaped; its parent (us, or init) reaps it.
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(st)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function deleteNetns(name: string): Promise<void> {
  if (!(await exists(join(NETNS_DIR, name))) && !(await nsListed(name))) return;
  const pids = await run(['ip', 'netns', 'pids', name], { reject: false });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) await killAndWait(Number(p), undefined);
  const r = await run(['ip', 'netns', 'del', name], { reject: false });
  if (r.failed && !/No such file|not found/i.test(r.stderr)) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
}

async function nsListed(name: string): Promise<boolean> {
  try {
    return (await readdir(NETNS_DIR)).includes(name);
  } catch {
    return false;
  }
}

async function undo(revert: Revert): Promise<void> {
  switch (revert.kind) {
    case 'kill':
      return killAndWait(revert.pid, revert.startTicks);
    case 'netns':
      return deleteNetns(revert.name);
    case 'docker': {
      const argv =
        revert.object === 'container' ? ['docker', 'rm', '-f', '-v', revert.id] : ['docker', 'network', 'rm', revert.id];
      const r = await run(argv, { reject: false, timeoutMs: 30_000 });
      if (r.failed && !/No such|not found/i.test(r.stderr)) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
      return;
    }
    case 'argv': {
      if (revert.netnsPath && !(await exists(revert.netnsPath))) return; // namespace gone: so is the change
      const r = await run(revert.argv, { reject: false, timeoutMs: 30_000, ...(revert.input !== undefined ? { input: revert.input } : {}) });
      if (!r.failed) return;
      if (revert.netnsPath && !(await exists(revert.netnsPath))) return;
      if (revert.absent && new RegExp(revert.absent, 'i').test(r.stderr)) return;
      throw new Error(`${revert.argv.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    }
  }
}

/** Journals left by runs whose process is gone (SIGKILL, crash): what `harness gc` replays. */
export async function orphanJournals(log: Logger): Promise<Journal[]> {
  let names: string[];
  try {
    names = await readdir(stateDir());
  } catch {
    return [];
  }
  const out: Journal[] = [];
  for (const n of names.filter((f) => f.endsWith('.json'))) {
    const j = await Journal.load(join(stateDir(), n), log).catch(() => undefined);
    if (!j) continue;
    const alive = await readFile(`/proc/${j.ownerPid}/cmdline`, 'utf8').then(
      (c) => c.includes('node'),
      () => false,
    );
    if (!alive) out.push(j);
  }
  return out;
}
