import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UsageError } from '../core/errors.js';
import { checkJunitFile, checkReportDir } from './paths.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'harness-paths-'));
  await writeFile(join(dir, 'file'), '');
  await mkdir(join(dir, 'sub'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('checkReportDir', () => {
  test('a file in its place, a pseudo file system, an empty name: UsageError naming --report (exit 2)', async () => {
    const err = await checkReportDir(join(dir, 'file')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ flag: '--report', exitCode: 2, message: `--report: ${join(dir, 'file')} is not a directory` });
    await expect(checkReportDir('/proc/harness-report')).rejects.toThrow(/--report: .*pseudo file system/);
    await expect(checkReportDir(' ')).rejects.toThrow(/--report: an empty directory name/);
  });

  test('a new directory under a writable one is fine, and nothing is made yet', async () => {
    await expect(checkReportDir(join(dir, 'out', 'report'))).resolves.toBe(join(dir, 'out', 'report'));
    expect((await readdir(dir)).sort()).toEqual(['file', 'sub']);
  });
});

describe('checkJunitFile', () => {
  test('its directory must exist: the error says which and how to make it', async () => {
    const err = await checkJunitFile(join(dir, 'missing', 'junit.xml')).catch((e: UsageError) => e);
    expect(err).toMatchObject({ flag: '--junit', exitCode: 2, message: `--junit: directory ${join(dir, 'missing')} does not exist`, hint: `create it first (mkdir -p ${join(dir, 'missing')}), or give another path` });
    expect((await readdir(dir)).sort()).toEqual(['file', 'sub']);
  });

  test('a directory in its place, a file as its directory, /proc, an empty name', async () => {
    await expect(checkJunitFile(join(dir, 'sub'))).rejects.toThrow(/--junit: .*sub exists and is not a regular file/);
    await expect(checkJunitFile(join(dir, 'file', 'junit.xml'))).rejects.toThrow(/--junit: .*file is not a directory/);
    await expect(checkJunitFile('/proc/junit.xml')).rejects.toThrow(/--junit: .*pseudo file system/);
    await expect(checkJunitFile('')).rejects.toThrow(/--junit: an empty file name/);
  });

  test('inside the report directory (made by the run) it needs no directory yet; elsewhere it does', async () => {
    const report = join(dir, 'out');
    await expect(checkJunitFile(join(report, 'junit.xml'), report)).resolves.toBe(join(report, 'junit.xml'));
    await expect(checkJunitFile(join(report, 'ci', 'junit.xml'), report)).resolves.toBe(join(report, 'ci', 'junit.xml'));
    await expect(checkJunitFile(join(`${report}2`, 'junit.xml'), report)).rejects.toThrow(/does not exist/);
  });

  test('a new file, or an existing one to overwrite, in a writable directory', async () => {
    await expect(checkJunitFile(join(dir, 'sub', 'junit.xml'))).resolves.toBe(join(dir, 'sub', 'junit.xml'));
    await expect(checkJunitFile(join(dir, 'file'))).resolves.toBe(join(dir, 'file'));
  });
});
