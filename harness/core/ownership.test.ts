import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chain, checkTrustedPath, invokingUid, trustedUids, untrustedReason, type StatLike } from './ownership.js';
import { parseIdentity, startTicksOf } from './liveness.js';

const st = (uid: number, mode: number, kind: 'file' | 'dir' | 'link' = 'file'): StatLike => ({
  uid,
  mode,
  isFile: () => kind === 'file',
  isDirectory: () => kind === 'dir',
  isSymbolicLink: () => kind === 'link',
});

describe('who is trusted', () => {
  test('under sudo the invoking user is SUDO_UID; otherwise the effective uid; SUDO_UID of a non-root process is ignored', () => {
    expect(invokingUid({ SUDO_UID: '1000' }, 0)).toBe(1000);
    expect(invokingUid({}, 0)).toBe(0);
    expect(invokingUid({ SUDO_UID: '1000' }, 1001)).toBe(1001);
    expect(invokingUid({ SUDO_UID: '1000; rm' }, 0)).toBe(0);
    expect(trustedUids({ SUDO_UID: '1000' }, 0)).toEqual([0, 1000]);
  });

  test.each([
    [st(0, 0o644), 'leaf', undefined],
    [st(1000, 0o644), 'leaf', undefined],
    [st(1001, 0o644), 'leaf', /owned by uid 1001, not by root or uid 1000/],
    [st(0, 0o664), 'leaf', /writable by its group \(mode 0664\)/],
    [st(0, 0o646), 'leaf', /writable by everyone/],
    [st(0, 0o1777, 'dir'), 'ancestor', undefined],
    [st(0, 0o1777, 'dir'), 'parent', /writable by everyone/],
    [st(0, 0o777, 'dir'), 'ancestor', /writable by everyone/],
    [st(0, 0o777, 'link'), 'leaf', undefined],
    [st(1001, 0o777, 'link'), 'leaf', /owned by uid 1001/],
  ] as const)('%o as %s → %s', (s, position, says) => {
    const why = untrustedReason('/x', s, position, [0, 1000]);
    if (says === undefined) expect(why).toBeUndefined();
    else expect(why?.message).toMatch(says);
  });

  test('chain lists the path and every directory above it', () => {
    expect(chain('/a/b/c')).toEqual(['/a/b/c', '/a/b', '/a', '/']);
  });
});

describe('checkTrustedPath (real files)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ownership-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('a private file in a private folder under sticky /tmp is trusted; the fix for a writable one is chmod go-w', async () => {
    const f = join(dir, 'ok.json');
    await writeFile(f, '{}', { mode: 0o644 });
    expect(await checkTrustedPath(f, { strictParent: true })).toBeUndefined();
    await chmod(f, 0o666);
    expect(await checkTrustedPath(f)).toMatchObject({ problem: 'writable', fix: `chmod go-w ${f}` });
  });

  test('a file in a folder others can write is refused when its folder matters; a symlink is followed and its target checked', async () => {
    const open = join(dir, 'open');
    await mkdir(open, { mode: 0o777 });
    await chmod(open, 0o1777);
    const f = join(open, 'c.json');
    await writeFile(f, '{}', { mode: 0o644 });
    expect(await checkTrustedPath(f, { strictParent: true })).toMatchObject({ path: open, problem: 'writable' });
    expect(await checkTrustedPath(f)).toBeUndefined();
    const link = join(dir, 'link.json');
    await symlink(f, link);
    expect(await checkTrustedPath(link, { strictParent: true })).toMatchObject({ path: open });
    expect(await checkTrustedPath(join(dir, 'missing'))).toMatchObject({ problem: 'unreadable' });
  });
});

describe('process identity', () => {
  test('start ticks come from field 22, even when the command name has spaces and parens', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 4)).join(' ');
    expect(startTicksOf(`123 (a) b (c)) S ${fields}`)).toBe('22');
    expect(parseIdentity('123-456-XyZ')).toEqual({ pid: 123, startTicks: '456' });
    expect(parseIdentity('abc')).toBeUndefined();
  });
});
