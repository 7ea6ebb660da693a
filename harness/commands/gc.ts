/**
 * `harness gc`: removes whatever a killed run left behind, found without trusting anything but
 * names and labels: orphaned journals are replayed; namespaces named `harness-*` and Docker
 * objects labelled `harness.run` that belong to no live run are deleted. Live runs are left alone.
 */
import { readdir } from 'node:fs/promises';
import { run } from '../core/exec.js';
import { deleteNetns, orphanJournals, stateDir } from '../core/journal.js';
import type { Logger } from '../core/log.js';
import { NETNS_DIR } from '../core/netns.js';

export interface GcReport {
  journalsReplayed: string[];
  namespacesDeleted: string[];
  containersRemoved: string[];
  networksRemoved: string[];
  failed: string[];
}

async function liveRunIds(log: Logger): Promise<Set<string>> {
  const live = new Set<string>();
  const orphans = new Set((await orphanJournals(log)).map((j) => j.runId));
  for (const f of await readdir(stateDir()).catch(() => [] as string[])) {
    const id = f.replace(/\.json$/, '');
    if (f.endsWith('.json') && !orphans.has(id)) live.add(id);
  }
  return live;
}

function runIdOfNetns(name: string): string | undefined {
  return /^harness-([a-z0-9]+)-[a-z]+$/.exec(name)?.[1];
}

export async function gcCommand(log: Logger): Promise<GcReport> {
  const report: GcReport = { journalsReplayed: [], namespacesDeleted: [], containersRemoved: [], networksRemoved: [], failed: [] };
  for (const j of await orphanJournals(log)) {
    const r = await j.revertAll();
    report.journalsReplayed.push(j.runId);
    report.failed.push(...r.failed.map((f) => `${j.runId}: ${f.describe}: ${f.error}`));
  }
  const live = await liveRunIds(log);
  const names = await readdir(NETNS_DIR).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith('harness-'))) {
    const id = runIdOfNetns(name);
    if (id && live.has(id)) continue;
    try {
      await deleteNetns(name);
      report.namespacesDeleted.push(name);
    } catch (e) {
      report.failed.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const docker = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], { reject: false, timeoutMs: 10_000 }).catch(() => undefined);
  if (docker && !docker.failed) {
    for (const [kind, list, rm] of [
      ['container', ['docker', 'ps', '-a', '--filter', 'label=harness.run', '--format', '{{.ID}} {{.Label "harness.run"}}'], ['docker', 'rm', '-f', '-v']],
      ['network', ['docker', 'network', 'ls', '--filter', 'label=harness.run', '--format', '{{.ID}} {{.Label "harness.run"}}'], ['docker', 'network', 'rm']],
    ] as const) {
      const r = await run([...list], { reject: false, timeoutMs: 30_000 });
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        // (No -q: with --quiet docker ignores --format and the label would be lost, making every
        // live run look dead.) An object whose run cannot be named is left alone.
        const [id, runId] = line.split(' ');
        if (!id || !runId || live.has(runId)) continue;
        const del = await run([...rm, id], { reject: false, timeoutMs: 30_000 });
        if (del.failed) report.failed.push(`${kind} ${id}: ${del.stderr.trim()}`);
        else (kind === 'container' ? report.containersRemoved : report.networksRemoved).push(id);
      }
    }
  }
  return report;
}

