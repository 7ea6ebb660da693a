import { mkdtemp, mkdir, writeFile, chmod, chown, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { loadConfig, targetsFromConfig } from './config.js';
import { UsageError } from '../core/errors.js';

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'harness-config-test-'));
  file = join(dir, 'harness.config.json');
  await mkdir(join(dir, 'svc'));
  await writeFile(join(dir, 'svc', 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(dir, 'server'), '#!/bin/sh\n');
  await chmod(join(dir, 'server'), 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function usageError(raw: unknown): Promise<UsageError> {
  const e = await targetsFromConfig(raw, file).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UsageError);
  return e as UsageError;
}

describe('config file', () => {
  test('a valid config gives one target per entry, with the right backend', async () => {
    const t = await targetsFromConfig(
      {
        targets: {
          'my-svc': { build: './svc', port: 8080, env: { A: 'b' }, ready: { log: 'listening on \\d+' } },
          pg: { image: 'postgres:16', port: 5432, ready: { tcp: true } },
          'my-bin': { process: ['./server', '--port', '7000'], port: 7000, ready: { http: '/health' } },
        },
      },
      file,
    );
    expect(Object.keys(t)).toEqual(['my-svc', 'pg', 'my-bin']);
    expect(t['my-svc']!.backend).toBe('container');
    expect(t['my-svc']!.describe).toContain(join(dir, 'svc'));
    expect(t.pg!.backend).toBe('container');
    expect(t['my-bin']!.backend).toBe('netns');
    expect(t['my-bin']!.describe).toContain(join(dir, 'server'));
  });

  test.each([
    [{ targets: { s: { image: 'x:1', port: 0 } } }, 'targets.s.port', 'must be 1-65535'],
    [{ targets: { s: { image: 'x:1', port: 70000 } } }, 'targets.s.port', 'must be 1-65535'],
    [{ targets: { s: { image: 'x:1', port: '80' } } }, 'targets.s.port', 'must be a number'],
    [{ targets: { s: { image: 'x:1' } } }, 'targets.s.port', 'must be a number'],
    [{ targets: { s: { port: 80 } } }, 'targets.s.image', 'exactly one of'],
    [{ targets: { s: { image: 'x:1', build: './svc', port: 80 } } }, 'targets.s.image', 'exactly one of'],
    [{ targets: { s: { image: 'x:1', port: 80, ready: { log: '(' } } } }, 'targets.s.ready.log', 'not a valid regular expression'],
    [{ targets: { s: { image: 'x:1', port: 80, ready: { http: 'health' } } } }, 'targets.s.ready.http', 'starting with "/"'],
    [{ targets: { s: { image: 'x:1', port: 80, ready: { tcp: false } } } }, 'targets.s.ready', 'must be {"log"'],
    [{ targets: { s: { image: 'x:1', port: 80, ready: { disk: 1 } } } }, 'targets.s.ready', 'must be {"log"'],
    [{ targets: { s: { image: 'x:1', port: 80, portt: 1 } } }, 'targets.s', 'portt'],
    [{ targets: { s: { image: 'x:1', port: 80, env: { A: 1 } } } }, 'targets.s.env.A', 'strings'],
    [{ targets: { 'My Svc': { image: 'x:1', port: 80 } } }, 'targets.My Svc', 'lowercase'],
    [{ targets: { s: { process: [], port: 80 } } }, 'targets.s.process', 'must name a command'],
    [{ targets: { s: { process: ['./missing'], port: 80 } } }, 'targets.s.process', 'does not exist'],
    [{ targets: { s: { build: './nope', port: 80 } } }, 'targets.s.build', 'no Dockerfile'],
    [{ target: {} }, 'config', 'target'],
  ])('%j → %s', async (raw, flag, msg) => {
    const e = await usageError(raw);
    expect(e.flag).toBe(flag);
    expect(e.message).toContain(msg);
    expect(e.exitCode).toBe(2);
    expect(e.hint).toContain(file);
  });

  test('found in the working directory; YAML works; an explicit missing file is a usage error', async () => {
    expect((await loadConfig(undefined, join(dir, 'svc'))).path).toBeUndefined();
    const ydir = await mkdtemp(join(tmpdir(), 'harness-config-yaml-'));
    try {
      await writeFile(join(ydir, 'harness.config.yaml'), 'targets:\n  web:\n    image: nginx:1\n    port: 80\n    ready: {log: "start worker"}\n');
      const c = await loadConfig(undefined, ydir);
      expect(c.path).toBe(join(ydir, 'harness.config.yaml'));
      expect(Object.keys(c.targets)).toEqual(['web']);
      await writeFile(join(ydir, 'bad.json'), '{"targets": ');
      await expect(loadConfig('bad.json', ydir)).rejects.toThrow(/--config: .*bad.json is not valid JSON/);
      await expect(loadConfig('missing.json', ydir)).rejects.toThrow(/--config: cannot read .*missing.json: ENOENT/);
      await writeFile(join(ydir, 'c.mjs'), 'export default { targets: { m: { image: "a:b", port: 1 } } };\n');
      expect(Object.keys((await loadConfig('c.mjs', ydir)).targets)).toEqual(['m']);
    } finally {
      await rm(ydir, { recursive: true, force: true });
    }
  });

  test.each([
    [null, /holds nothing \(null\), not an object/],
    [[1], /holds a list, not an object/],
    ['x', /holds a string, not an object/],
  ])('a config holding %j is a usage error naming the file', async (raw, says) => {
    const e = await usageError(raw);
    expect(e.flag).toBe('config');
    expect(e.message).toContain(file);
    expect(e.message).toMatch(says);
  });

  test.each(['builtin', 'echo', 'nginx'])('a config cannot redefine the built-in target %s', async (name) => {
    const e = await usageError({ targets: { [name]: { process: ['/bin/sh', '-c', 'id'], port: 9000 } } });
    expect(e.flag).toBe(`targets.${name}`);
    expect(e.message).toContain(`"${name}" is a built-in target and cannot be redefined`);
    expect(e.hint).toContain('another name');
  });
});

describe('whose config file is loaded', () => {
  let d: string;
  beforeEach(async () => {
    d = await mkdtemp(join(tmpdir(), 'harness-config-trust-'));
  });
  afterEach(() => rm(d, { recursive: true, force: true }));
  const good = '{"targets": {"web": {"image": "nginx:1", "port": 80}}}';

  test('a code config in the working directory is never loaded without --config, even alone', async () => {
    const marker = join(d, 'ran');
    await writeFile(join(d, 'harness.config.mjs'), `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x'); export default { targets: {} };\n`);
    expect(await loadConfig(undefined, d)).toEqual({ targets: {} });
    await expect(import('node:fs/promises').then((f) => f.access(marker))).rejects.toThrow(/ENOENT/);
    // Named explicitly, it is the user's choice.
    await loadConfig('harness.config.mjs', d);
    await expect(import('node:fs/promises').then((f) => f.access(marker))).resolves.toBeUndefined();
  });

  test('a config others can write is refused with the file and chmod go-w; so is one in a folder others can write', async () => {
    const f = join(d, 'harness.config.json');
    await writeFile(f, good);
    await chmod(f, 0o666);
    const e = await loadConfig(undefined, d).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).message).toContain(`refusing ${f}: ${f} is writable by everyone`);
    expect((e as UsageError).hint).toBe(`chmod go-w ${f}`);
    await chmod(f, 0o644);
    expect(Object.keys((await loadConfig(undefined, d)).targets)).toEqual(['web']);
    await chmod(d, 0o1777);
    await expect(loadConfig(undefined, d)).rejects.toThrow(`${d} is writable by everyone`);
    await expect(loadConfig(f, '/')).rejects.toThrow(/^--config: refusing/);
  });

  test.skipIf(process.geteuid?.() !== 0)('a config owned by another user is refused, unless that user invoked sudo', async () => {
    const f = join(d, 'harness.config.json');
    await writeFile(f, good);
    await chown(f, 4242, 4242);
    await expect(loadConfig(undefined, d)).rejects.toThrow(`${f} is owned by uid 4242, not by root`);
    const saved = process.env.SUDO_UID;
    process.env.SUDO_UID = '4242';
    try {
      expect(Object.keys((await loadConfig(undefined, d)).targets)).toEqual(['web']);
    } finally {
      if (saved === undefined) delete process.env.SUDO_UID;
      else process.env.SUDO_UID = saved;
    }
  });

  test('an empty --config and an empty YAML file are usage errors', async () => {
    await expect(loadConfig('', d)).rejects.toThrow(/--config: is empty/);
    await writeFile(join(d, 'harness.config.yaml'), '');
    await expect(loadConfig(undefined, d)).rejects.toThrow(/holds nothing \(null\)/);
  });
});
