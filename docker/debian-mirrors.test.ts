import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { debianMirrors, parseDeb822, parseOneLine } from './debian-mirrors.js';

const dirs: string[] = [];
async function aptDir(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'harness-apt-'));
  dirs.push(d);
  await mkdir(join(d, 'sources.list.d'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('debian mirrors', () => {
  test('one-line format: options, comments and non-deb lines are skipped', () => {
    expect(
      parseOneLine('# deb http://old/debian bookworm main\ndeb-src http://src/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main # c\n'),
    ).toEqual([{ uri: 'http://m.example/debian', suites: ['bookworm'] }]);
  });

  test('deb822: several URIs and suites, disabled stanzas skipped', () => {
    const text = 'Types: deb\nURIs: http://a/debian http://b/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://c/debian\nSuites: bookworm\nEnabled: no\n';
    expect(parseDeb822(text)).toEqual([
      { uri: 'http://a/debian', suites: ['bookworm', 'bookworm-updates'] },
      { uri: 'http://b/debian', suites: ['bookworm', 'bookworm-updates'] },
    ]);
  });

  test('the archive and the security mirror of the host, trailing slashes dropped', async () => {
    const d = await aptDir({
      'sources.list.d/debian.sources':
        'Types: deb\nURIs: http://deb.example/debian/\nSuites: bookworm bookworm-updates\n\nTypes: deb\nURIs: http://sec.example/debian-security/\nSuites: bookworm-security\n',
    });
    expect(await debianMirrors(d, undefined)).toEqual({ archive: 'http://deb.example/debian', security: 'http://sec.example/debian-security' });
  });

  test('HARNESS_DEBIAN_MIRROR overrides the archive', async () => {
    const d = await aptDir({ 'sources.list': 'deb http://deb.example/debian bookworm main\n' });
    expect(await debianMirrors(d, 'http://mine/debian/')).toEqual({ archive: 'http://mine/debian' });
  });

  test('no mirror: an error that says how to name one', async () => {
    const d = await aptDir({ 'sources.list': '# nothing\n' });
    await expect(debianMirrors(d, undefined)).rejects.toMatchObject({ message: expect.stringContaining('no Debian mirror found'), fix: expect.stringContaining('HARNESS_DEBIAN_MIRROR') });
  });
});
