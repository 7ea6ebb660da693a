/**
 * `harness run --plan`: the shipped catalogue plan (every documented variant of every scenario)
 * passes on this machine, concurrently, and a bad plan changes nothing (exit 2, entry and field
 * named). Runs in the `cli` group: alone, so its dozen concurrent runs have the machine.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parsePlan } from '../harness/engine/plan.js';
import type { Result } from '../harness/verdict/result.js';
import { readFile } from 'node:fs/promises';
import { hostSnapshot } from './support/host-snapshot.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const cli = (args: string[]) => execa('node', ['dist/harness/cli.js', 'run', ...args], { reject: false });

describe.skipIf(!isRoot)('harness run --plan', { tags: ['cli', 'netns'] }, () => {
  // Many runs at a time on two cores: a run whose only failures are events late by no more than
  // the machine (or the harness's own delayer) was measured to be late is `inconclusive`, exit 4 —
  // the documented "too loaded to judge". Nothing may fail or break.
  test('plans/catalogue.yaml: every run passes (or is too loaded to judge), one Result per entry, named', { timeout: 240_000 }, async () => {
    const entries = parsePlan(await readFile('plans/catalogue.yaml', 'utf8'), 'catalogue.yaml');
    const r = await cli(['--plan', 'plans/catalogue.yaml', '--json']);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Result);
    const failed = results.filter((x) => x.verdict !== 'pass' && x.verdict !== 'inconclusive').map((x) => `${x.name}: ${x.error?.message ?? x.checks.filter((c) => !c.pass).map((c) => c.name).join(', ')}`);
    expect(failed).toEqual([]);
    // An inconclusive run failed timing checks only, each late (never early, never a wrong errno or state).
    for (const x of results.filter((y) => y.verdict === 'inconclusive')) expect(x.checks.filter((c) => !c.pass && c.lateByMs === undefined), x.name).toEqual([]);
    expect(r.exitCode).toBe(results.some((x) => x.verdict === 'inconclusive') ? 4 : 0);
    expect(results.map((x) => x.name).sort()).toEqual(entries.map((e) => e.name).sort());
    expect(r.stderr).toMatch(/plan: \d+ runs, \d+ at a time \(\d+ cores/);
  });

  test('--shard splits a plan: the two halves are disjoint and cover it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-plan-'));
    try {
      const plan = join(dir, 'p.yaml');
      await writeFile(plan, ['reject', 'app-crash', 'rst-close'].map((s, i) => `- name: r${i}\n  scenario: ${s}\n`).join(''));
      const halves = await Promise.all(['1/2', '2/2'].map((s) => cli(['--plan', plan, '--shard', s, '--json'])));
      const names = halves.map((h) => h.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Result).name));
      expect(halves.map((h) => h.exitCode)).toEqual([0, 0]);
      expect([...names[0]!, ...names[1]!].sort()).toEqual(['r0', 'r1', 'r2']);
      expect(names[0]!.filter((n) => names[1]!.includes(n))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test.for([
    { text: 'scenario: syn-drop\n', says: /a plan is a list of runs/ },
    { text: Array.from({ length: 6 }, () => '- scenario: syn-drop\n').join('') + '- scenario: no-such\n', says: /entry 7 \(no-such\): scenario: unknown scenario "no-such"/ },
    { text: '- scenario: syn-drop\n  colour: red\n', says: /entry 1 \(syn-drop\): field "colour": unknown field/ },
    { text: '- name: a\n  scenario: syn-drop\n- name: a\n  scenario: reject\n', says: /name "a" is already used/ },
    { text: '- scenario: syn-drop\n  set: {nosuch: 1}\n', says: /entry 1 \(syn-drop\): --set: syn-drop: nosuch/ },
  ])('a bad plan ($says): exit 2, nothing runs, nothing changes', async ({ text, says }) => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-plan-'));
    try {
      const plan = join(dir, 'bad.yaml');
      await writeFile(plan, text);
      const before = await hostSnapshot();
      const r = await cli(['--plan', plan]);
      expect(r.exitCode).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(says);
      expect(await hostSnapshot()).toEqual(before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
