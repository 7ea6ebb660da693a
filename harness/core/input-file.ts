/**
 * Reads a file a user named (a config file, a `sysctl -a` dump) as input: a regular file of
 * bounded size, read through one descriptor, so `/dev/zero`, a FIFO, a directory or a 2 GB log
 * gets a usage error naming the flag instead of a hang or "Invalid string length".
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { UsageError } from './errors.js';

export interface InputFileOptions {
  /** The flag or field that named the file, for the error. */
  flag: string;
  /** Refuse files larger than this. */
  maxBytes: number;
  /** What the file should be, for the fix: e.g. "the output of `sysctl -a`". */
  expected: string;
  /** Extra check on the open file (ownership, mode): throw to refuse. */
  check?: (st: Stats) => void;
}

export async function readInputFile(path: string, opts: InputFileOptions): Promise<string> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new UsageError(opts.flag, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, `give the path of ${opts.expected}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new UsageError(opts.flag, `${path} is ${kindOf(st)}, not a regular file`, `give the path of ${opts.expected}`);
    }
    if (st.size > opts.maxBytes) {
      throw new UsageError(opts.flag, `${path} is ${st.size} bytes, more than the ${opts.maxBytes} this input may be`, `give the path of ${opts.expected}`);
    }
    opts.check?.(st);
    // Bounded even when the size lies (files in /proc say 0).
    const buf = Buffer.alloc(opts.maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > opts.maxBytes) throw new UsageError(opts.flag, `${path} holds more than ${opts.maxBytes} bytes`, `give the path of ${opts.expected}`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}
