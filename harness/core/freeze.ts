/**
 * Freezing a server process: SIGSTOP to its process group, so it stops accepting, reading and
 * writing while its kernel keeps answering (SYNs complete into the accept queue, data is ACKed
 * into the receive queue until the window closes, keepalive and zero-window probes are
 * answered). Every command the harness starts leads a process group of its own (exec.ts
 * `detached`), so the group is the server and the workers it forked, and nothing else.
 *
 * A freeze is journaled (`{kind: 'thaw'}`) before the signal is sent and always thawed on revert,
 * by `harness gc` after a SIGKILL too: a stopped process is the worst leftover there is.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { processStartTicks } from './liveness.js';

export interface GroupMember {
  pid: number;
  /** The one-letter state of /proc/PID/stat (R S D T t Z…). */
  state: string;
}

/** State (field 3) and process group (field 5) of a /proc/PID/stat line. */
export function statFields(stat: string): { state: string; pgrp: number } | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgrp = Number(rest[2]);
  return rest[0] && Number.isInteger(pgrp) ? { state: rest[0], pgrp } : undefined;
}

/** The processes whose process group is `pgid`, with their states (a /proc walk: no process spawned). */
export async function groupMembers(pgid: number): Promise<GroupMember[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const stats = await Promise.all(pids.map((n) => readFile(`/proc/${n}/stat`, 'utf8').catch(() => '')));
  const out: GroupMember[] = [];
  stats.forEach((stat, i) => {
    const f = stat ? statFields(stat) : undefined;
    if (f?.pgrp === pgid) out.push({ pid: Number(pids[i]), state: f.state });
  });
  return out;
}

/** A stopped (T) or traced-stopped (t) process, or one that is gone or dead (Z, X): nothing runs. */
function stopped(m: GroupMember): boolean {
  return m.state === 'T' || m.state === 't' || m.state === 'Z' || m.state === 'X';
}

export type FreezeOutcome =
  | { ok: true; members: number; waitedMs: number }
  | { ok: false; why: string };

/**
 * Sends SIGSTOP to the group led by `pid` (only if `pid` still started at `startTicks`) and waits
 * until every member is stopped: SIGSTOP takes effect when each task next runs, so a busy one
 * takes a scheduler tick or two. Journal the thaw before calling this.
 */
export async function stopGroup(pid: number, startTicks: string, timeoutMs = 2000): Promise<FreezeOutcome> {
  if ((await processStartTicks(pid)) !== startTicks) return { ok: false, why: `its process (pid ${pid}) is gone` };
  try {
    process.kill(-pid, 'SIGSTOP');
  } catch (e) {
    return { ok: false, why: `SIGSTOP to process group ${pid}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  const t0 = performance.now();
  for (;;) {
    const members = await groupMembers(pid);
    if (members.length && members.every(stopped)) return { ok: true, members: members.length, waitedMs: performance.now() - t0 };
    if (!members.length) return { ok: false, why: `its process group ${pid} is empty (the server exited)` };
    if (performance.now() - t0 > timeoutMs) {
      const running = members.filter((m) => !stopped(m)).map((m) => `${m.pid} (${m.state})`);
      return { ok: false, why: `after ${timeoutMs} ms some of process group ${pid} still run: ${running.join(', ')}` };
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * SIGCONT to the group led by `pid`: when the leader still has its start time, or is gone (then
 * any member left still holds the number as its group id, so it cannot have been reused by an
 * unrelated group leader). A pid that now belongs to another process means the group is gone.
 * Idempotent: continuing a running process does nothing.
 */
export async function continueGroup(pid: number, startTicks: string): Promise<void> {
  const now = await processStartTicks(pid);
  if (now !== undefined && now !== startTicks) return;
  try {
    process.kill(-pid, 'SIGCONT');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw e;
  }
}

/** Inodes of the LISTEN sockets on `port` in the namespace `pid` lives in (/proc/PID/net/tcp{,6}: st 0A, inode field 10). */
export async function listenerInodes(pid: number, port: number): Promise<string[]> {
  const out: string[] = [];
  for (const f of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${f}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c[3] === '0A' && c[1] && parseInt(c[1].split(':')[1] ?? '', 16) === port && c[9]) out.push(c[9]);
    }
  }
  return out;
}

/**
 * The processes holding one of `inodes` open, among those in the same network namespace as
 * `pid`: who actually serves the port (a server that daemonized left the group it was started in).
 */
export async function socketOwners(pid: number, inodes: readonly string[]): Promise<GroupMember[]> {
  const ns = await readlink(`/proc/${pid}/ns/net`).catch(() => undefined);
  if (!ns || inodes.length === 0) return [];
  const want = new Set(inodes.map((i) => `socket:[${i}]`));
  const out: GroupMember[] = [];
  for (const p of (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n))) {
    if ((await readlink(`/proc/${p}/ns/net`).catch(() => undefined)) !== ns) continue;
    const fds = await readdir(`/proc/${p}/fd`).catch(() => [] as string[]);
    const links = await Promise.all(fds.map((fd) => readlink(`/proc/${p}/fd/${fd}`).catch(() => '')));
    if (!links.some((l) => want.has(l))) continue;
    const f = statFields(await readFile(`/proc/${p}/stat`, 'utf8').catch(() => ''));
    if (f) out.push({ pid: Number(p), state: f.state });
  }
  return out;
}
