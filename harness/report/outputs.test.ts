import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EnvironmentError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import type { RunEnv } from '../engine/runner.js';
import type { Result } from '../verdict/result.js';
import { prepareOutputs } from './outputs.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixture = (name: string): Result => {
  const r = JSON.parse(readFileSync(join(FIXTURES, `${name}.result.json`), 'utf8')) as Result;
  r.captures = r.captures!.map((c) => ({ ...c, file: join(FIXTURES, c.file) }));
  return r;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'harness-outputs-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('prepareOutputs', () => {
  test('bad paths are refused before anything is written', async () => {
    await writeFile(join(dir, 'taken'), '');
    await expect(prepareOutputs({ report: join(dir, 'taken') }, () => undefined, silentLogger)).rejects.toThrow(/--report/);
    await expect(prepareOutputs({ junit: join(dir, 'no', 'j.xml') }, () => undefined, silentLogger)).rejects.toThrow(/--junit/);
    expect(await readdir(dir)).toEqual(['taken']);
  });

  test('the report captures into its own folder unless --pcap says where', async () => {
    expect((await prepareOutputs({ report: join(dir, 'r') }, () => undefined, silentLogger)).pcapDir).toBe(join(dir, 'r', 'pcap'));
    expect((await prepareOutputs({ report: join(dir, 'r'), pcap: '/x' }, () => undefined, silentLogger)).pcapDir).toBe('/x');
    expect((await prepareOutputs({}, () => undefined, silentLogger)).pcapDir).toBeUndefined();
  });

  test('two runs: two pages, an index, a JUnit file with both; results printed as they are (no terminal here)', async () => {
    const printed: string[] = [];
    const out = await prepareOutputs({ report: join(dir, 'two'), junit: join(dir, 'junit.xml') }, (s) => printed.push(s), silentLogger);
    const runs = [fixture('syn-drop'), fixture('synack-drop')];
    const env: RunEnv = out.start({ log: silentLogger }, runs.map((r) => ({ runId: r.runId, scenario: r.scenario })));
    expect(env.onStage).toBeUndefined();
    for (const r of runs) {
      out.print(r.runId, `${r.scenario}\n`);
      await out.afterRun(r);
    }
    await out.finish(runs);
    expect(printed).toEqual(['syn-drop\n', 'synack-drop\n']);
    expect((await readdir(join(dir, 'two'))).sort()).toEqual([`syn-drop-${runs[0]!.runId}.html`, `synack-drop-${runs[1]!.runId}.html`, 'index.html'].sort());
    expect((await readFile(join(dir, 'junit.xml'), 'utf8')).match(/<testcase /g)).toHaveLength(2);
  });

  test('a page that cannot be written does not stop the other runs; finish reports it (exit 3)', async () => {
    const out = await prepareOutputs({ report: join(dir, 'late') }, () => undefined, silentLogger);
    await writeFile(join(dir, 'late'), 'a file appeared where the report goes');
    await out.afterRun(fixture('syn-drop'));
    const err = await out.finish([fixture('syn-drop')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).message).toMatch(/could not write the report: syn-drop \(run \w+\)/);
  });
});
