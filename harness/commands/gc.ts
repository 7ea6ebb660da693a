/**
 * `harness gc`: removes what killed runs left behind, and only that. Something is the harness's
 * when its name has the exact format the harness makes (`harness-<runId>-t|c|n`, runId = 6 base-36
 * characters) *and* the harness marked it as its own: a marker file `ns/<name>` in the state dir
 * for a namespace (written before the namespace is made), the labels `harness.run=<runId>` and
 * `harness.role=<role>` matching the name for a Docker container or network. A thing of a live
 * run (its journal's writer still runs, checked by pid *and* start time) is never touched. What is
 * spared is reported with the reason.
 *
 * In order: orphaned journals are replayed (each validated first: a journal that is not exactly
 * what the engine writes is refused, not run); then namespaces, containers and networks of dead
 * runs that no journal covered; then temp leftovers: private temp dirs of dead processes, journal
 * temp files of dead writers, and `/tmp/harness-script-*` folders older than every live run.
 */
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError } from '../core/errors.js';
import { run } from '../core/exec.js';
import { deleteNetns, Journal, scanJournals, type JournalRefused } from '../core/journal.js';
import { isAlive, parseIdentity } from '../core/liveness.js';
import type { Logger } from '../core/log.js';
import { CONTAINER_ROLES, dockerObjectName, isRunId, runIdOfNetns } from '../core/names.js';
import { NETNS_DIR } from '../core/netns.js';
import { checkStateDir, markerDir, privateTmpBase, stateDir, stateOwners } from '../core/state-dir.js';

export interface Spared {
  what: string;
  why: string;
}

export interface GcReport {
  journalsReplayed: string[];
  journalsRefused: { path: string; reason: string }[];
  namespacesDeleted: string[];
  containersRemoved: string[];
  networksRemoved: string[];
  /** Private temp dirs, journal temp files and script folders of dead runs. */
  filesRemoved: string[];
  spared: Spared[];
  failed: string[];
}

export interface GcOptions {
  /** Where the runner's script folders are looked for (default: /tmp, i.e. os.tmpdir() of a shell). */
  scriptTmpDir?: string;
}

export async function gcCommand(log: Logger, opts: GcOptions = {}): Promise<GcReport> {
  const report: GcReport = { journalsReplayed: [], journalsRefused: [], namespacesDeleted: [], containersRemoved: [], networksRemoved: [], filesRemoved: [], spared: [], failed: [] };
  const bad = await checkStateDir();
  if (bad) throw new EnvironmentError('E_STATE_DIR', bad.message, bad.fix);

  const scan = await scanJournals(log);
  report.journalsRefused = scan.refused.map((r: JournalRefused) => ({ path: r.path, reason: r.reason }));
  for (const j of scan.orphans) {
    const r = await j.revertAll();
    report.journalsReplayed.push(j.runId);
    report.failed.push(...r.failed.map((f) => `${j.runId}: ${f.describe}: ${f.error}`));
  }
  // A run that starts while gc works is not in the scan: before anything is removed, its run is
  // looked up again (its journal exists before it makes anything).
  const live = new LiveRuns(scan.live, log);
  const liveWhy = (runId: string) =>
    scan.refused.some((r) => r.path.endsWith(`/${runId}.json`)) ? `its run's journal was refused (${runId})` : `run ${runId} is live`;

  await gcNamespaces(live, liveWhy, report);
  await gcDocker(live, liveWhy, report);
  await gcFiles(live, report, opts.scriptTmpDir ?? '/tmp');
  return report;
}

/** The scan's live runs, plus any run whose journal appeared since. */
class LiveRuns {
  constructor(
    private readonly known: Map<string, number>,
    private readonly log: Logger,
  ) {}

  async has(runId: string): Promise<boolean> {
    if (this.known.has(runId)) return true;
    const path = join(stateDir(), `${runId}.json`);
    if (!(await lstat(path).then(() => true, () => false))) return false;
    const alive = await Journal.load(path, this.log).then(
      (j) => j.ownerAlive(),
      () => true, // there, but unreadable or refused: the safe side
    );
    if (alive) this.known.set(runId, Number.NEGATIVE_INFINITY);
    return alive;
  }

  values(): number[] {
    return [...this.known.values()];
  }
}

async function gcNamespaces(live: LiveRuns, liveWhy: (id: string) => string, report: GcReport): Promise<void> {
  const names = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter((n) => n.startsWith('harness'));
  for (const name of names) {
    const runId = runIdOfNetns(name);
    if (!runId) {
      report.spared.push({ what: `namespace ${name}`, why: 'not a name the harness makes (harness-<runId>-t|c|n)' });
      continue;
    }
    if (await live.has(runId)) {
      report.spared.push({ what: `namespace ${name}`, why: liveWhy(runId) });
      continue;
    }
    const marker = await readMarker(name);
    if (marker !== runId) {
      report.spared.push({ what: `namespace ${name}`, why: marker === undefined ? 'no marker: not made by this harness' : `its marker is not trustworthy (${marker})` });
      continue;
    }
    try {
      await deleteNetns(name);
      report.namespacesDeleted.push(name);
    } catch (e) {
      report.failed.push(`namespace ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Markers whose namespace is gone (the run's revert deleted it, the marker's removal was cut short).
  for (const name of await readdir(markerDir()).catch(() => [] as string[])) {
    const runId = runIdOfNetns(name);
    if (runId && !names.includes(name) && !(await live.has(runId))) await rm(join(markerDir(), name), { force: true });
  }
}

/** The runId in marker `ns/<name>`, if the marker is a regular file of root's that nobody else can write. */
async function readMarker(name: string): Promise<string | undefined> {
  const path = join(markerDir(), name);
  const st = await lstat(path).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isFile() || !stateOwners().includes(st.uid) || (st.mode & 0o022) !== 0) return `${path}: not a private regular file of root's`;
  return (await readFile(path, 'utf8')).trim();
}

async function gcDocker(live: LiveRuns, liveWhy: (id: string) => string, report: GcReport): Promise<void> {
  const docker = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], { reject: false, timeoutMs: 10_000 }).catch(() => undefined);
  if (!docker || docker.failed) return;
  for (const kind of ['container', 'network'] as const) {
    const list =
      kind === 'container'
        ? ['docker', 'ps', '-a', '--filter', 'label=harness.run', '--format', '{{.ID}} {{.Names}} {{.Label "harness.run"}} {{.Label "harness.role"}}']
        : ['docker', 'network', 'ls', '--filter', 'label=harness.run', '--format', '{{.ID}} {{.Name}} {{.Label "harness.run"}} {{.Label "harness.role"}}'];
    // (No -q: with --quiet docker ignores --format and the labels would be lost.)
    const r = await run(list, { reject: false, timeoutMs: 30_000 });
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [id, name, runId, role] = line.split(' ');
      const what = `${kind} ${name ?? id}`;
      const why = dockerNotOurs(kind, name ?? '', runId ?? '', role ?? '');
      if (why) {
        report.spared.push({ what, why });
        continue;
      }
      if (await live.has(runId!)) {
        report.spared.push({ what, why: liveWhy(runId!) });
        continue;
      }
      const rm = kind === 'container' ? ['docker', 'rm', '-f', '-v', id!] : ['docker', 'network', 'rm', id!];
      const del = await run(rm, { reject: false, timeoutMs: 30_000 });
      if (del.failed && !/No such|not found/i.test(del.stderr)) report.failed.push(`${what}: ${del.stderr.trim()}`);
      else (kind === 'container' ? report.containersRemoved : report.networksRemoved).push(name!);
    }
  }
}

/** Why a labelled Docker object is not one the harness made, or undefined. Pure. */
export function dockerNotOurs(kind: 'container' | 'network', name: string, runId: string, role: string): string | undefined {
  if (!isRunId(runId)) return `label harness.run=${runId || '(empty)'} is not a runId the harness makes`;
  const roles: readonly string[] = kind === 'network' ? ['network'] : CONTAINER_ROLES;
  if (!roles.includes(role)) return `label harness.role=${role || '(missing)'} is not one the harness sets on a ${kind}`;
  if (name !== dockerObjectName(runId, role as 'network')) return `name ${name} is not the one the harness gives (${dockerObjectName(runId, role as 'network')})`;
  return undefined;
}

async function gcFiles(live: LiveRuns, report: GcReport, scriptTmpDir: string): Promise<void> {
  // Private temp dirs of processes that are gone.
  for (const name of await readdir(privateTmpBase()).catch(() => [] as string[])) {
    const id = parseIdentity(name);
    if (!id || (await isAlive(id.pid, id.startTicks))) continue;
    await removeOwned(join(privateTmpBase(), name), report);
  }
  // Journal temp files (`<runId>.<pid>-<ticks>.json.tmp`) whose writer is gone; an old-style
  // `<runId>.json.tmp` when its run has no live journal.
  for (const name of await readdir(stateDir()).catch(() => [] as string[])) {
    const m = /^([0-9a-z]{6})(?:\.(\d+-\d+))?\.json\.tmp$/.exec(name);
    if (!m) continue;
    const id = m[2] ? parseIdentity(m[2]) : undefined;
    const dead = id ? !(await isAlive(id.pid, id.startTicks)) : !(await live.has(m[1]!));
    if (dead) await removeOwned(join(stateDir(), name), report);
  }
  // Script folders the runner made in a shared /tmp (older versions; runs now write theirs in the
  // private temp dir). They carry no owner; one made before every live run started (its mtime is
  // older than the oldest live journal) cannot be a live run's.
  const oldestLiveMs = Math.min(Number.POSITIVE_INFINITY, ...live.values());
  const dirs = new Set([scriptTmpDir, tmpdir()]);
  for (const dir of dirs) {
    for (const name of (await readdir(dir).catch(() => [] as string[])).filter((n) => /^harness-script-[A-Za-z0-9]{6}$/.test(n))) {
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      if (st.mtimeMs >= oldestLiveMs) {
        report.spared.push({ what: path, why: 'made after a live run started: may be its' });
        continue;
      }
      await removeOwned(path, report);
    }
  }
}

/** Removes a file or folder only if it is root's (ours), not a symlink, and nobody else can write it. */
async function removeOwned(path: string, report: GcReport): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (st.isSymbolicLink() || !stateOwners().includes(st.uid) || (st.mode & 0o022) !== 0) {
    report.spared.push({ what: path, why: `not a private file or folder of root's (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}${st.isSymbolicLink() ? ', a symlink' : ''})` });
    return;
  }
  try {
    await rm(path, { recursive: true, force: true });
    report.filesRemoved.push(path);
  } catch (e) {
    report.failed.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** What `harness gc` prints: counts on the first line, then each refusal, sparing and failure with its reason. */
export function formatGcReport(r: GcReport): string {
  return (
    `replayed journals: ${r.journalsReplayed.length}, namespaces deleted: ${r.namespacesDeleted.length}, ` +
    `containers removed: ${r.containersRemoved.length}, networks removed: ${r.networksRemoved.length}, ` +
    `files removed: ${r.filesRemoved.length}, refused journals: ${r.journalsRefused.length}, spared: ${r.spared.length}\n` +
    r.journalsRefused.map((j) => `refused journal ${j.path}: ${j.reason} (not replayed; look at it, then remove it)\n`).join('') +
    r.spared.map((s) => `spared ${s.what}: ${s.why}\n`).join('') +
    r.failed.map((f) => `could not clean: ${f}\n`).join('')
  );
}
