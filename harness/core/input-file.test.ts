import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readInputFile } from './input-file.js';
import { readSysctlsFrom } from './sysctls-from.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'input-file-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const opts = { flag: '--sysctls-from', maxBytes: 1024, expected: 'a dump' };
const keys = { writable: new Set(['net.ipv4.tcp_syn_retries']), readOnly: new Set<string>() };

describe('input files', () => {
  test('a regular file within the cap is read', async () => {
    await writeFile(join(dir, 'ok.txt'), 'net.ipv4.tcp_syn_retries = 3\n');
    expect(await readInputFile(join(dir, 'ok.txt'), opts)).toBe('net.ipv4.tcp_syn_retries = 3\n');
  });

  test.each([
    ['/dev/zero', /\/dev\/zero is a character device, not a regular file/],
    ['DIR', /is a directory, not a regular file/],
    ['BIG', /is 2097152 bytes, more than the 1024/],
    ['FIFO', /is a FIFO, not a regular file/],
    ['MISSING', /cannot read .*: ENOENT/],
  ])('%s is a usage error naming the flag, at once', async (which, says) => {
    let path = which;
    if (which === 'DIR') path = dir;
    if (which === 'BIG') {
      path = join(dir, 'big.txt');
      await writeFile(path, '');
      await truncate(path, 2 << 20);
    }
    if (which === 'FIFO') {
      path = join(dir, 'fifo');
      execFileSync('mkfifo', [path]);
    }
    if (which === 'MISSING') path = join(dir, 'nope');
    const e = await readInputFile(path, opts).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'E_USAGE', exitCode: 2, flag: '--sysctls-from' });
    expect((e as Error).message).toMatch(says);
    expect((e as { hint: string }).hint).toBe('give the path of a dump');
  });

  test('--sysctls-from /dev/zero says what is wrong (it used to say "Invalid string length")', async () => {
    await expect(readSysctlsFrom('/dev/zero', keys)).rejects.toThrow(/--sysctls-from: \/dev\/zero is a character device/);
  });
});
