/**
 * The journal: every change is written down with its revert *before* it is applied, so a run
 * that is interrupted (Ctrl-C, SIGTERM, a crash, even SIGKILL via `harness gc`) can be undone.
 * Reverts run newest first, each at most once, carry on past failures and report what they
 * could not undo. Running `revertAll` twice is harmless.
 *
 * A journal holds argv that root runs, so one read back from disk (by `harness gc`) is replayed
 * only if its directory and file belong to root and nobody else can write them, and every entry
 * has exactly a shape the engine writes (journal-schema.ts); anything else is refused, never run.
 */
import { access, open, readFile, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './exec.js';
import { continueGroup } from './freeze.js';
import { isAlive, processStartTicks, selfIdentity } from './liveness.js';
import type { Logger } from './log.js';
import { assertNotHost, NETNS_DIR } from './netns.js';
import { journalFileSchema, describeIssue, type JournalFile, type Revert } from './journal-schema.js';
import { runIdOfNetns } from './names.js';
import { acquirePrivateTmp } from './private-tmp.js';
import { ensureStateDir, markerDir, stateDir, stateOwners } from './state-dir.js';

export type { JournalEntry, JournalFile, Revert } from './journal-schema.js';
export { processStartTicks } from './liveness.js';
export { stateDir } from './state-dir.js';

export interface RevertReport {
  reverted: number;
  failed: { describe: string; error: string }[];
}

/** A journal that `harness gc` will not replay, and why. */
export class JournalRefused extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    /** The writer it names, when the file parsed that far: to tell whether its run is live. */
    readonly owner?: { pid: number; startTicks: string | undefined },
  ) {
    super(`journal ${path} refused: ${reason}`);
  }
}

/** Journals are small (a run writes tens of entries); a bigger file is not one of ours. */
const MAX_JOURNAL_BYTES = 1 << 20;

export class Journal {
  private releaseTmp: (() => void) | undefined;

  private constructor(
    readonly path: string,
    private readonly file: JournalFile,
    private readonly log: Logger,
  ) {}

  /**
   * A new journal for `runId`. The first thing every run does, before any target starts: it also
   * gives the process its private temp dir (private-tmp.ts) for as long as the run is in flight.
   */
  static async create(runId: string, log: Logger): Promise<Journal> {
    await ensureStateDir();
    const [pid, startTicks] = selfIdentity().split('-') as [string, string];
    const file: JournalFile = { version: 1, runId, pid: Number(pid), startTicks, startedAt: new Date().toISOString(), entries: [] };
    const j = new Journal(join(stateDir(), `${runId}.json`), file, log);
    await j.flush();
    j.releaseTmp = acquirePrivateTmp();
    return j;
  }

  /** Reads a journal back, refusing (JournalRefused) one that is not trusted or not well formed. */
  static async load(path: string, log: Logger): Promise<Journal> {
    return new Journal(path, await readJournalFile(path), log);
  }

  get runId(): string {
    return this.file.runId;
  }

  get ownerPid(): number {
    return this.file.pid;
  }

  get startedAt(): string {
    return this.file.startedAt;
  }

  /** Whether the process that wrote this journal still runs. */
  async ownerAlive(): Promise<boolean> {
    return ownerAlive(this.file.pid, this.file.startTicks);
  }

  get pending(): readonly JournalFile['entries'][number][] {
    return this.file.entries.filter((e) => !e.done);
  }

  /** Durably records a revert. Call before making the change it undoes. */
  async record(describe: string, revert: Revert): Promise<void> {
    if ((revert.kind === 'kill' || revert.kind === 'thaw') && !/^\d+$/.test(revert.startTicks)) {
      // No start time: the process was gone when its pid was read. Nothing to kill, and a kill
      // that cannot check the pid's identity could hit whoever reuses it: not recorded.
      this.log.debug({ describe, pid: revert.pid }, 'not journaled: process already gone');
      return;
    }
    if (revert.kind === 'netns' && runIdOfNetns(revert.name)) await writeMarker(revert.name, this.file.runId);
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
    try {
      const pending = [...this.file.entries].reverse().filter((e) => !e.done);
      // A rule or sysctl inside a namespace this same revert deletes goes with the namespace: no
      // process to undo it one by one (if the deletion fails, gc deletes the namespace later).
      const deleted = new Set(pending.flatMap((e) => (e.revert.kind === 'netns' ? [join(NETNS_DIR, e.revert.name)] : [])));
      for (let i = 0; i < pending.length; i++) {
        // Entries of one kind journaled one after another go together, one by one if that fails:
        // containers in one `docker rm -f` (one engine round trip, the daemon stops them in
        // parallel), namespaces (a run's pair) in one /proc scan and one `ip -batch`.
        const together = await this.revertGroup(pending, i, report, isContainer, (g) => removeContainers(g.map((r) => (r as { id: string }).id)));
        const grouped = together ?? (await this.revertGroup(pending, i, report, (r) => r.kind === 'netns', (g) => deleteNetnsMany(g.map((r) => (r as { name: string }).name)).then(() => true)));
        if (grouped !== undefined) {
          i = grouped - 1;
          continue;
        }
        const entry = pending[i]!;
        if (entry.revert.kind === 'argv' && entry.revert.netnsPath && deleted.has(entry.revert.netnsPath)) {
          entry.done = true;
          report.reverted++;
          this.log.debug({ revert: entry.describe }, 'moot: its namespace is deleted by this revert');
          continue;
        }
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
    } finally {
      this.releaseTmp?.();
      this.releaseTmp = undefined;
    }
    return report;
  }

  /**
   * Reverts the run of entries from `i` that `member` accepts with one `undoAll`, when there are
   * two or more and it succeeds: marks them done and returns the index after them. Otherwise
   * undefined (the caller goes on one entry at a time).
   */
  private async revertGroup(
    pending: JournalFile['entries'],
    i: number,
    report: RevertReport,
    member: (r: Revert) => boolean,
    undoAll: (reverts: Revert[]) => Promise<boolean>,
  ): Promise<number | undefined> {
    let k = i;
    while (k < pending.length && member(pending[k]!.revert)) k++;
    if (k - i < 2) return undefined;
    const group = pending.slice(i, k);
    const ok = await undoAll(group.map((e) => e.revert)).catch((err: unknown) => (this.log.debug({ err }, 'together failed: one by one'), false));
    if (!ok) return undefined;
    for (const e of group) {
      e.done = true;
      report.reverted++;
      this.log.debug({ revert: e.describe }, 'reverted');
    }
    return k;
  }

  /** Flushes one at a time, in call order: records made concurrently (both sides of a run at once) share one temp file name. */
  private flushing: Promise<void> = Promise.resolve();

  private flush(): Promise<void> {
    const next = this.flushing.then(() => this.write());
    this.flushing = next.catch(() => undefined);
    return next;
  }

  private async write(): Promise<void> {
    // The temp file is named after its writer, so `harness gc` can tell a dead writer's leftover
    // (a SIGKILL mid-write) from a live run's write in progress.
    const tmp = `${this.path.replace(/\.json$/, '')}.${selfIdentity()}.json.tmp`;
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.file, null, 1));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
  }
}

/** Reads, checks (owner, mode, size) and validates one journal file. Throws JournalRefused. */
export async function readJournalFile(path: string): Promise<JournalFile> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw new JournalRefused(path, (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symlink' : String((e as Error).message));
  }
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new JournalRefused(path, 'not a regular file');
    if (!stateOwners().includes(st.uid)) throw new JournalRefused(path, `owned by uid ${st.uid}, not root`);
    if ((st.mode & 0o022) !== 0) throw new JournalRefused(path, `writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
    if (st.size > MAX_JOURNAL_BYTES) throw new JournalRefused(path, `${st.size} bytes: larger than any journal the harness writes`);
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new JournalRefused(path, `not JSON: ${(e as Error).message}`);
  }
  const parsed = journalFileSchema.safeParse(raw);
  const { pid, startTicks } = (raw ?? {}) as { pid?: unknown; startTicks?: unknown };
  const owner = Number.isInteger(pid) && (pid as number) > 0 ? { pid: pid as number, startTicks: typeof startTicks === 'string' ? startTicks : undefined } : undefined;
  if (!parsed.success) throw new JournalRefused(path, describeIssue(raw, parsed.error), owner);
  if (!path.endsWith(`/${parsed.data.runId}.json`)) throw new JournalRefused(path, `its runId ${parsed.data.runId} does not match its file name`, owner);
  return parsed.data;
}

async function ownerAlive(pid: number, startTicks: string | undefined): Promise<boolean> {
  if (startTicks !== undefined) return isAlive(pid, startTicks);
  // A journal from before start times were recorded: a node process with that pid is taken as
  // its owner (a reused pid keeps it from being replayed: the safe side).
  return readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (c) => c.includes('node'),
    () => false,
  );
}

/**
 * Kills `pid` only if it is still the process that started at `startTicks`, and waits until it
 * is gone. Never kills without a start time to check: a pid alone may have been reused.
 */
async function killAndWait(pid: number, startTicks: string): Promise<void> {
  if (!/^\d+$/.test(startTicks) || (await processStartTicks(pid)) !== startTicks) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw e;
  }
  // Every ms for the first 50 ms (a SIGKILL usually takes effect within one), then every 10 ms, ~2 s in all.
  for (let i = 0; i < 250 && (await processStartTicks(pid)) === startTicks; i++) {
    // A zombie child keeps its /proc entry until reaped; its parent (us, or init) reaps it.
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(st)) return;
    await new Promise((r) => setTimeout(r, i < 50 ? 1 : 10));
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
  );
}

/** Kills every process in namespace `name` (each checked by start time), then deletes it and its marker. */
export async function deleteNetns(name: string): Promise<void> {
  await deleteNetnsMany([name]);
}

/**
 * Deletes several namespaces with one scan of /proc and one `ip -batch` (what `ip netns pids` and
 * `ip netns del` do, one process instead of two per namespace): kills every process inside each
 * (checked by start time), deletes them, then their markers. Throws naming each one still there.
 */
export async function deleteNetnsMany(names: readonly string[]): Promise<void> {
  const present: string[] = [];
  for (const name of names) if ((await exists(join(NETNS_DIR, name))) || (await nsListed(name))) present.push(name);
  if (present.length) {
    for (const { pid, startTicks } of await pidsInNetns(present.map((n) => join(NETNS_DIR, n)))) await killAndWait(pid, startTicks);
    const r = await runRevert(['ip', '-force', '-batch', '-'], present.map((n) => `netns del ${n}\n`).join(''));
    const left: string[] = [];
    for (const name of present) if (await exists(join(NETNS_DIR, name))) left.push(name);
    if (left.length) throw new Error(`ip netns del ${left.join(' ')}: ${failure(r)}`);
  }
  for (const name of names) await rm(join(markerDir(), name), { force: true });
}

/** The processes whose network namespace is one of `paths` (as `ip netns pids` finds them: by the namespace's inode). */
async function pidsInNetns(paths: readonly string[]): Promise<{ pid: number; startTicks: string }[]> {
  const inodes = new Set<string>();
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    if (st) inodes.add(`net:[${st.ino}]`);
  }
  if (!inodes.size) return [];
  const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e));
  const links = await Promise.all(pids.map((p) => readlink(`/proc/${p}/ns/net`).catch(() => undefined)));
  const out: { pid: number; startTicks: string }[] = [];
  for (const [i, p] of pids.entries()) {
    if (!links[i] || !inodes.has(links[i]!)) continue;
    const startTicks = await processStartTicks(Number(p));
    if (startTicks !== undefined) out.push({ pid: Number(p), startTicks });
  }
  return out;
}

async function nsListed(name: string): Promise<boolean> {
  try {
    return (await readdir(NETNS_DIR)).includes(name);
  } catch {
    return false;
  }
}

async function writeMarker(name: string, runId: string): Promise<void> {
  const fh = await open(join(markerDir(), name), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(`${runId}\n`);
  } finally {
    await fh.close();
  }
}

/**
 * Runs a revert command, again if a terminal's signal killed it (up to three times: reverts are
 * idempotent). A child is in its own process group only from setsid() on, a moment after fork(): a
 * Ctrl-C to the foreground group in that moment still reaches it. A revert started just as the
 * user presses Ctrl-C is exactly such a moment.
 */
function isContainer(r: Revert): boolean {
  return r.kind === 'docker' && r.object === 'container';
}

/** `docker rm -f -v` of several containers at once; false when it failed (the caller goes one by one). */
async function removeContainers(ids: readonly string[]): Promise<boolean> {
  const r = await runRevert(['docker', 'rm', '-f', '-v', ...ids]);
  if (!r.failed) return true;
  // Containers already gone are fine; any other error means: go one by one, and report it.
  const errors = r.stderr.split('\n').filter((l) => l.trim());
  return errors.length > 0 && errors.every((l) => /No such container/i.test(l));
}

async function runRevert(argv: readonly string[], input?: string): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const r = await run(argv, { reject: false, timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
    if (!r.failed || !r.signal || !INTERRUPTS.has(r.signal) || attempt === 3) return r;
  }
}
const INTERRUPTS = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']);

function failure(r: RunResult): string {
  return r.stderr.trim() || (r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`);
}

async function undo(revert: Revert): Promise<void> {
  switch (revert.kind) {
    case 'kill':
      return killAndWait(revert.pid, revert.startTicks);
    case 'thaw':
      return continueGroup(revert.pid, revert.startTicks);
    case 'netns':
      return deleteNetns(revert.name);
    case 'docker': {
      if (revert.op === 'unpause') {
        // Gone, or not paused (thawed already, or it exited): nothing left frozen.
        const r = await runRevert(['docker', 'unpause', revert.id]);
        if (r.failed && !/No such|not found|is not paused|not running/i.test(r.stderr)) throw new Error(`docker unpause ${revert.id}: ${failure(r)}`);
        return;
      }
      const argv =
        revert.object === 'container' ? ['docker', 'rm', '-f', '-v', revert.id] : ['docker', 'network', 'rm', revert.id];
      const r = await runRevert(argv);
      if (r.failed && !/No such|not found/i.test(r.stderr)) throw new Error(`${argv.join(' ')}: ${failure(r)}`);
      return;
    }
    case 'argv': {
      if (revert.netnsPath && !(await exists(revert.netnsPath))) return; // namespace gone: so is the change
      // A /proc/<pid>/ns/net whose pid was reused could now be the host's namespace: never act there.
      if (revert.netnsPath) await assertNotHost({ name: revert.netnsPath, path: revert.netnsPath });
      const r = await runRevert(revert.argv, revert.input);
      if (!r.failed) return;
      if (revert.netnsPath && !(await exists(revert.netnsPath))) return;
      if (revert.absent && new RegExp(revert.absent, 'i').test(r.stderr)) return;
      throw new Error(`${revert.argv.join(' ')}: ${failure(r)}`);
    }
  }
}

/** What `harness gc` finds in the state directory. */
export interface JournalScan {
  /** Journals whose process is gone (SIGKILL, crash): to replay. */
  orphans: Journal[];
  /**
   * Runs in flight (their journal's writer still runs), with when each started (ms since the
   * epoch; -Infinity when it cannot be told, e.g. a refused journal: the safe side).
   */
  live: Map<string, number>;
  /** Journals not replayed, and why; their runs' objects are spared too. */
  refused: JournalRefused[];
}

export async function scanJournals(log: Logger): Promise<JournalScan> {
  const scan: JournalScan = { orphans: [], live: new Map(), refused: [] };
  let names: string[];
  try {
    names = await readdir(stateDir());
  } catch {
    return scan;
  }
  for (const n of names.filter((f) => f.endsWith('.json'))) {
    const path = join(stateDir(), n);
    try {
      const j = await Journal.load(path, log);
      if (await j.ownerAlive()) scan.live.set(j.runId, Date.parse(j.startedAt) || Number.NEGATIVE_INFINITY);
      else scan.orphans.push(j);
    } catch (e) {
      if (!(e instanceof JournalRefused)) throw e;
      scan.refused.push(e);
      // Spare what such a run made while its writer may live (or when that cannot be told): the
      // safe side. Its objects are found by name and marker or label, never through its entries.
      if (!e.owner || (await ownerAlive(e.owner.pid, e.owner.startTicks))) scan.live.set(n.replace(/\.json$/, ''), Number.NEGATIVE_INFINITY);
    }
  }
  return scan;
}

/** Journals left by runs whose process is gone: what `harness gc` replays. */
export async function orphanJournals(log: Logger): Promise<Journal[]> {
  return (await scanJournals(log)).orphans;
}
