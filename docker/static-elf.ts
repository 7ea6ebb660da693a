/**
 * Whether a binary can run in a FROM-scratch image: an ELF executable with no program interpreter
 * (PT_INTERP), i.e. linked with -static. A dynamic binary there fails only when the container
 * starts, with a bare "no such file or directory" about the missing loader; checking the header
 * first turns that into a usage error naming the flag.
 */
import { open } from 'node:fs/promises';

const PT_INTERP = 3; // elf.h
// Linkers put the program headers right after the ELF header (offset 64 or 52): a small prefix holds them.
const PREFIX_BYTES = 64 * 1024;

/** Why a file starting with `bytes` is not a static ELF executable; undefined when it is one. */
export function notStaticElf(bytes: Uint8Array): string | undefined {
  if (bytes.length < 52 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return 'not an ELF executable';
  const is64 = bytes[4] === 2;
  if (bytes[4] !== 1 && !is64) return 'not an ELF executable (unknown class)';
  if (bytes[5] !== 1 && bytes[5] !== 2) return 'not an ELF executable (unknown byte order)';
  const le = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (is64 && bytes.length < 64) return 'a truncated ELF file';
  const phoff = is64 ? Number(view.getBigUint64(0x20, le)) : view.getUint32(0x1c, le);
  const phentsize = view.getUint16(is64 ? 0x36 : 0x2a, le);
  const phnum = view.getUint16(is64 ? 0x38 : 0x2c, le);
  if (phnum === 0 || phentsize < 4) return 'an ELF file without program headers (not an executable)';
  if (phoff + phentsize * phnum > bytes.length) return 'a truncated ELF file (or program headers past its first 64 KiB)';
  for (let i = 0; i < phnum; i++) {
    if (view.getUint32(phoff + i * phentsize, le) === PT_INTERP) {
      return 'dynamically linked (it needs a loader and a libc, which a FROM-scratch image lacks)';
    }
  }
  return undefined;
}

/** notStaticElf for a file; also says when it cannot be read. */
export async function fileNotStaticElf(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    return `cannot open it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    if (!(await fh.stat()).isFile()) return 'not a regular file';
    const prefix = Buffer.alloc(PREFIX_BYTES);
    const { bytesRead } = await fh.read(prefix, 0, PREFIX_BYTES, 0);
    return notStaticElf(prefix.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
