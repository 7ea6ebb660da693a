import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { fileNotStaticElf, notStaticElf } from './static-elf.js';

/** An ELF header followed by program headers of the given p_type values. */
function elf(opts: { is64: boolean; le: boolean; types: number[] }): Uint8Array {
  const ehsize = opts.is64 ? 64 : 52;
  const phentsize = opts.is64 ? 56 : 32;
  const buf = new Uint8Array(ehsize + phentsize * opts.types.length);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, opts.is64 ? 2 : 1, opts.le ? 1 : 2, 1]);
  if (opts.is64) v.setBigUint64(0x20, BigInt(ehsize), opts.le);
  else v.setUint32(0x1c, ehsize, opts.le);
  v.setUint16(opts.is64 ? 0x36 : 0x2a, phentsize, opts.le);
  v.setUint16(opts.is64 ? 0x38 : 0x2c, opts.types.length, opts.le);
  opts.types.forEach((t, i) => v.setUint32(ehsize + i * phentsize, t, opts.le));
  return buf;
}

const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_DYNAMIC = 2; // a static-pie has PT_DYNAMIC but no interpreter, and runs in scratch

describe('static ELF check', () => {
  test.each([
    { is64: true, le: true },
    { is64: false, le: true },
    { is64: true, le: false },
    { is64: false, le: false },
  ])('no PT_INTERP is static, PT_INTERP is dynamic (64-bit: $is64, little-endian: $le)', (shape) => {
    expect(notStaticElf(elf({ ...shape, types: [PT_LOAD, PT_LOAD] }))).toBeUndefined();
    expect(notStaticElf(elf({ ...shape, types: [PT_LOAD, PT_DYNAMIC] }))).toBeUndefined();
    expect(notStaticElf(elf({ ...shape, types: [6, PT_INTERP, PT_LOAD] }))).toMatch(/dynamically linked/);
  });

  test('not an ELF, or cut short', () => {
    expect(notStaticElf(new TextEncoder().encode('#!/bin/sh\necho hi\n'.padEnd(80)))).toMatch(/not an ELF/);
    const whole = elf({ is64: true, le: true, types: [PT_LOAD, PT_INTERP] });
    expect(notStaticElf(whole.subarray(0, 70))).toMatch(/truncated/);
    expect(notStaticElf(elf({ is64: true, le: true, types: [] }))).toMatch(/without program headers/);
  });

  test('a real dynamic binary (this tree\'s probe, built without -static) is refused; a folder too', async () => {
    expect(await fileNotStaticElf(resolve(import.meta.dirname, '../probe/build/harness-probe'))).toMatch(/dynamically linked/);
    expect(await fileNotStaticElf(import.meta.dirname)).toBe('not a regular file');
    expect(await fileNotStaticElf('/nonexistent/harness-probe')).toMatch(/cannot open it \(ENOENT\)/);
  });
});
