/**
 * Where `--report DIR` and `--junit FILE` write, checked before anything runs (bad input changes
 * nothing, exit 2). A report directory is checked like a capture directory (it is one: the
 * captures go in it); a JUnit file's directory must already exist (a typo there should not
 * become a stray directory tree), unless it is the report's own directory, made by the run.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { UsageError } from '../core/errors.js';
import { checkCaptureDir } from '../engine/observers/pcap.js';

export function checkReportDir(raw: string): Promise<string> {
  return checkCaptureDir(raw, '--report');
}

const JUNIT_FIX = 'give a file path in an existing, writable directory, e.g. --junit out/junit.xml after mkdir -p out';

/**
 * `reportDir`: the report's directory, which the run creates; a JUnit file in it (`--report out
 * --junit out/junit.xml`) needs no directory of its own yet.
 */
export async function checkJunitFile(raw: string, reportDir?: string): Promise<string> {
  if (!raw.trim()) throw new UsageError('--junit', 'an empty file name', JUNIT_FIX);
  const file = resolve(raw);
  // ENOTDIR: a file where its directory should be, said below in those words.
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? undefined : e));
  if (st instanceof Error) throw new UsageError('--junit', `${file}: ${st.message}`, JUNIT_FIX);
  if (st && !st.isFile()) throw new UsageError('--junit', `${file} exists and is not a regular file`, JUNIT_FIX);
  const dir = dirname(file);
  if (reportDir !== undefined && (dir === reportDir || dir.startsWith(`${reportDir}${sep}`))) {
    if (st) await access(file, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError('--junit', `${file} is not writable (${e.code})`, JUNIT_FIX);
    });
    return file;
  }
  const dst = await stat(dir).catch(() => undefined);
  if (!dst) throw new UsageError('--junit', `directory ${dir} does not exist`, `create it first (mkdir -p ${dir}), or give another path`);
  if (!dst.isDirectory()) throw new UsageError('--junit', `${dir} is not a directory`, JUNIT_FIX);
  // The directory as a capture directory is checked: a real file system (not /proc), writable.
  await checkCaptureDir(dir, '--junit');
  // As root, access(W_OK) still fails on a read-only mount or an immutable file (EROFS/EPERM).
  if (st) {
    await access(file, constants.W_OK).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError('--junit', `${file} is not writable (${e.code})`, JUNIT_FIX);
    });
  }
  return file;
}
