import { describe, expect, test } from 'vitest';
import pLimit from 'p-limit';
import { DEFAULT_OUTAGE_MS } from '../../faults/partition.js';
import { chooseConcurrency, estimateMs, parsePlan, parseShard, pool, requestOf, schedule, shardOf, takeTurn } from './plan.js';
import { prepare } from './prepare.js';
import type { PreparedRun } from './prepare.js';

describe('parsePlan', () => {
  test('a list of runs, YAML or JSON', () => {
    expect(parsePlan('- scenario: syn-drop\n- name: slow\n  scenario: host-crash\n  set: {variant: keepalive}\n', 'p.yaml')).toEqual([
      { scenario: 'syn-drop' },
      { name: 'slow', scenario: 'host-crash', set: { variant: 'keepalive' } },
    ]);
    expect(parsePlan('[{"scenario":"reject","sysctls":["client:net.ipv4.tcp_retries2=3"]}]', 'p.json')).toHaveLength(1);
  });

  test.each([
    ['scenario: syn-drop\n', /p\.yaml: a plan is a list of runs/],
    ['[]\n', /at least one run/],
    ['- scenario: syn-drop\n- [oops\n', /not valid YAML/],
    ['- scenario: syn-drop\n- scenario: reject\n  sett: {with: tcp-reset}\n', /entry 2 \(reject\): field "sett": unknown field/],
    ['- scenario: syn-drop\n- name: x\n  scenario: reject\n  port: 70000\n', /x: port: /],
    ['- name: a\n  scenario: syn-drop\n- name: a\n  scenario: reject\n', /entry 2: name "a" is already used by entry 1/],
    ['- {}\n', /entry 1: scenario: must name a scenario/],
  ])('refuses %j naming the entry and the field', (text, msg) => {
    expect(() => parsePlan(text, 'p.yaml')).toThrow(msg);
  });

  test('an entry\'s values are checked with the entry named', () => {
    const [e] = parsePlan('- name: bad\n  scenario: syn-drop\n  sysctls: ["tcp_syn_retries=3"]\n', 'p.yaml');
    expect(() => requestOf(e!, 0, 'p.yaml')).toThrow(/^--plan: p\.yaml: bad: --sysctl: /);
    const [c] = parsePlan('- scenario: syn-drop\n  client: {argv: [curl], strike: soon}\n', 'p.yaml');
    expect(() => requestOf(c!, 0, 'p.yaml')).toThrow(/entry 1 \(syn-drop\): --strike/);
  });
});

describe('shards and concurrency', () => {
  test('--shard I/N', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/2', '3/2', '1/0', 'a/b', '1']) expect(() => parseShard(bad)).toThrow(/--shard/);
  });

  test('shards are disjoint, cover the plan, and balance the predicted time (longest first)', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f'];
    const est = [7000, 1000, 1000, 3000, 3000, 1000];
    const shards = [1, 2].map((i) => shardOf(items, est, 2, i));
    expect(shards.flat().sort()).toEqual(items);
    const load = shards.map((s) => s.reduce((t, x) => t + est[items.indexOf(x)]!, 0));
    expect(load).toEqual([8000, 8000]);
    // Deterministic: the same plan gives the same shards.
    expect(shardOf(items, est, 2, 1)).toEqual(shards[0]);
  });

  test('concurrency follows the watchers\' cost and the cores', () => {
    const netns = (n: number) => Array.from({ length: n }, () => ({ container: false }));
    expect(chooseConcurrency(netns(3), 2)).toMatchObject({ concurrency: 3, watchIntervalMs: 5 });
    expect(chooseConcurrency(netns(40), 1)).toMatchObject({ concurrency: 18, setupSlots: 1, watchIntervalMs: 10 });
    expect(chooseConcurrency(netns(40), 2)).toMatchObject({ concurrency: 36, setupSlots: 2, watchIntervalMs: 10 });
    expect(chooseConcurrency(netns(40), 3).concurrency).toBe(40);
    expect(chooseConcurrency(netns(60), 3)).toMatchObject({ concurrency: 54, setupSlots: 3 });
    // One run: one set-up slot, never more slots than runs.
    expect(chooseConcurrency(netns(1), 8)).toMatchObject({ concurrency: 1, setupSlots: 1 });
    // A container run costs 9 netns runs (dockerd, the host's TCP hash): fewer go at once.
    expect(chooseConcurrency(Array.from({ length: 40 }, () => ({ container: true })), 2).concurrency).toBe(4);
    // Mixed: the mean cost. 20 netns + 20 containers: 5 each, 36 / 5 → 7.
    expect(chooseConcurrency([...netns(20), ...Array.from({ length: 20 }, () => ({ container: true }))], 2).concurrency).toBe(7);
  });

  test('schedule: longest first by the estimates (ties in the given order), concurrency from what the runs are', async () => {
    const run = (name: string, backend: 'netns' | 'container') => ({ name, target: { backend } }) as unknown as PreparedRun;
    const runs = [run('a', 'netns'), run('b', 'container'), run('c', 'netns'), run('d', 'netns')];
    const s = await schedule(runs, [1000, 7000, 3000, 3000]);
    expect(s.ordered.map((r) => r.name)).toEqual(['b', 'c', 'd', 'a']);
    expect(s).toMatchObject(chooseConcurrency([{ container: true }, { container: false }, { container: false }, { container: false }]));
  });

  test('estimateMs: a step the model says times out lasts its timeout (a keepalive watch through a partition)', async () => {
    // The idle connection is watched through the whole outage: the run lasts at least that long.
    const idle = await estimateMs(await prepare({ scenario: 'partition', params: { variant: 'idle' } }));
    expect(idle).toBeGreaterThanOrEqual(1000 + DEFAULT_OUTAGE_MS.idle);
    // A read that gets nothing counts its 2 s timeout beside the dropped connect's ~3 s window.
    const cookie = await estimateMs(await prepare({ scenario: 'accept-queue-full', params: { overflow: 'cookie' } }));
    expect(cookie).toBeGreaterThan(1000 + 2000 + 3000);
  });

  test('takeTurn: admitted in the order the turns were taken, however long each caller takes to come to it', async () => {
    const gate = pLimit(1);
    const order: string[] = [];
    await Promise.all(
      [['a', 30], ['b', 0], ['c', 10]].map(async ([name, late]) => {
        const turn = takeTurn(gate);
        await new Promise((r) => setTimeout(r, late as number));
        await turn.admitted;
        order.push(name as string);
        await new Promise((r) => setTimeout(r, 5));
        turn.release();
      }),
    );
    expect(order).toEqual(['a', 'b', 'c']);
    // No gate: admitted at once.
    const free = takeTurn(undefined);
    await free.admitted;
    free.release();
  });

  test('pool keeps at most n in flight and keeps the order of results', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await pool([30, 10, 20, 5, 15], 2, async (ms) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return ms * 2;
    });
    expect(most).toBe(2);
    expect(out).toEqual([60, 20, 40, 10, 30]);
  });
});
