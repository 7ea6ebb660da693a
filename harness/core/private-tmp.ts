/**
 * A private temporary directory for the process while it has runs in flight. Dependencies write
 * fixed names in the temp dir: testcontainers truncates `$TMPDIR/testcontainers-node-<uid>.lock`
 * (common/file-lock.js: `writeFile(path.resolve(tmp.tmpdir, name), "")`, following symlinks), so in
 * a shared /tmp on a machine with `fs.protected_symlinks=0` another user's symlink there makes root
 * empty any file. `TMPDIR` therefore points, from the first run's journal until the last run of the
 * process has reverted, at `<state dir>/tmp/<pid>-<startTicks>-XXXXXX`: made by mkdtemp (0700) in a
 * root-owned 0700 directory that the state-dir check has vetted. testcontainers reads the temp dir
 * when it takes the lock (the `tmp` package's `tmpdir` is a getter over os.tmpdir()), which is
 * during a container target's start, after the journal exists.
 *
 * The holder is process-wide because `TMPDIR` is: runs of one process share the dir, and it is
 * removed (and `TMPDIR` restored) when the last one releases it, or at exit. After a SIGKILL,
 * `harness gc` removes the dirs of dead processes.
 */
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError } from './errors.js';
import { selfIdentity } from './liveness.js';
import { privateTmpBase } from './state-dir.js';

interface Held {
  dir: string;
  previous: string | undefined;
  users: number;
}

// Process-wide on purpose: TMPDIR, which it stands for, is (see above).
let held: Held | undefined;
let exitHookInstalled = false;

/**
 * Points TMPDIR at this process's private dir (making it on first use) and returns the release.
 * Synchronous, so two runs starting together share one dir. Call after `ensureStateDir()`.
 */
export function acquirePrivateTmp(): () => void {
  if (!held) {
    const base = privateTmpBase();
    const st = lstatSync(base);
    const euid = process.geteuid?.() ?? 0;
    if (!st.isDirectory() || st.uid !== euid || (st.mode & 0o077) !== 0) {
      throw new EnvironmentError('E_PRIVATE_TMP', `${base} must be a directory of uid ${euid} with mode 0700 (it is ${st.isSymbolicLink() ? 'a symlink' : `mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid}`})`, `rm -rf ${base} (the harness recreates it)`);
    }
    const dir = mkdtempSync(join(base, `${selfIdentity()}-`));
    held = { dir, previous: process.env.TMPDIR, users: 0 };
    process.env.TMPDIR = dir;
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        if (held) rmSync(held.dir, { recursive: true, force: true });
      });
    }
  }
  const h = held;
  h.users++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--h.users > 0 || held !== h) return;
    held = undefined;
    if (process.env.TMPDIR === h.dir) {
      if (h.previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = h.previous;
    }
    rmSync(h.dir, { recursive: true, force: true });
  };
}

/** The private dir in force, if any (for tests and diagnostics). */
export function privateTmpDir(): string | undefined {
  return held?.dir;
}
