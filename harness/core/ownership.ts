/**
 * Whose files the harness trusts. It runs as root and acts on what some files say (a config file
 * names commands to run, a journal holds argv to replay), so, like ssh's StrictModes and sudo,
 * such a file and every directory above it must be owned by root or the invoking user, and none
 * may be writable by anyone else: otherwise another local user could swap or edit it and have root
 * run their commands. A world-writable ancestor is tolerated only with the sticky bit (like /tmp),
 * where others cannot rename or replace what they do not own; the file's own directory never.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * The user who asked for this run: `SUDO_UID` under sudo (which sets it; only believed when we are
 * root, as only root could have set it then), else the effective uid.
 */
export function invokingUid(env: NodeJS.ProcessEnv = process.env, euid: number = process.geteuid?.() ?? 0): number {
  const sudo = env.SUDO_UID;
  if (euid === 0 && sudo !== undefined && /^\d{1,10}$/.test(sudo)) return Number(sudo);
  return euid;
}

/** Root and the invoking user (just root when root invoked it directly). */
export function trustedUids(env: NodeJS.ProcessEnv = process.env, euid: number = process.geteuid?.() ?? 0): number[] {
  return [...new Set([0, euid, invokingUid(env, euid)])];
}

export interface StatLike {
  uid: number;
  mode: number;
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * Where a path component stands: the file itself (`leaf`), its own directory (`parent`), or a
 * directory further up (`ancestor`, where a sticky world-writable directory is fine).
 */
export type Position = 'leaf' | 'parent' | 'ancestor';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

export interface Untrusted {
  path: string;
  problem: 'owner' | 'writable' | 'unreadable';
  /** One line: what is wrong with `path`. */
  message: string;
  /** The command that fixes it. */
  fix: string;
}

/** Why `st` at `path` makes it untrusted, or undefined. Pure. */
export function untrustedReason(path: string, st: StatLike, position: Position, uids: readonly number[]): Untrusted | undefined {
  if (!uids.includes(st.uid)) {
    const others = uids.filter((u) => u !== 0);
    return {
      path,
      problem: 'owner',
      message: `${path} is owned by uid ${st.uid}, not by root${others.length ? ` or uid ${others.join('/')}` : ''}`,
      fix: `chown root ${path}, or use a file of your own outside directories others can write`,
    };
  }
  if (st.isSymbolicLink()) return undefined; // a link's own mode means nothing; its target is checked too
  if ((st.mode & GROUP_OR_OTHER_WRITE) === 0) return undefined;
  if (position === 'ancestor' && st.isDirectory() && (st.mode & STICKY) !== 0) return undefined;
  const who = (st.mode & 0o002) !== 0 ? 'everyone' : 'its group';
  return { path, problem: 'writable', message: `${path} is writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`, fix: `chmod go-w ${path}` };
}

/** `/a/b/c` → `['/a/b/c', '/a/b', '/a', '/']`. */
export function chain(path: string): string[] {
  const out: string[] = [];
  let p = resolve(path);
  for (;;) {
    out.push(p);
    const up = dirname(p);
    if (up === p) return out;
    p = up;
  }
}

/**
 * Checks `path` (a file or a directory) and every directory above it, both as written and with
 * symlinks resolved. `strictParent`: the path's own directory may not be writable by others even
 * with the sticky bit (a config file's folder, against which its relative paths resolve). Returns
 * the first reason it cannot be trusted, or undefined.
 */
export async function checkTrustedPath(path: string, opts: { strictParent?: boolean; uids?: readonly number[] } = {}): Promise<Untrusted | undefined> {
  const uids = opts.uids ?? trustedUids();
  const lexical = resolve(path);
  let real: string;
  try {
    real = await realpath(lexical);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return { path: lexical, problem: 'unreadable', message: `cannot read ${lexical}: ${code}`, fix: `check that ${lexical} exists` };
  }
  const position = (i: number): Position => (i === 0 ? 'leaf' : i === 1 && opts.strictParent ? 'parent' : 'ancestor');
  for (const [i, p] of chain(lexical).entries()) {
    const why = untrustedReason(p, await lstat(p), position(i), uids);
    if (why) return why;
  }
  if (real !== lexical) {
    for (const [i, p] of chain(real).entries()) {
      const why = untrustedReason(p, await stat(p), position(i), uids);
      if (why) return why;
    }
  }
  return undefined;
}
