import { mkdtemp, mkdir, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
});
