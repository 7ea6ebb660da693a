import { describe, expect, it } from 'vitest';
import { parseQdiscStats, planQdiscs, qdiscHits, type Qdisc } from './tc.js';

const shape: Qdisc = { name: 'shape', side: 'server', kind: 'tbf', rateBitsPerS: 1_000_000, burstBytes: 3028, limitBytes: 200_000 };

describe('tc builder', () => {
  it('puts a tbf at the root of the side\'s device toward the peer, and deletes the same handle', () => {
    const [step] = planQdiscs([shape], (side) => (side === 'server' ? 'harnessabc123t' : 'harnessabc123c'));
    expect(step).toEqual({
      side: 'server',
      describe: 'qdisc shape: tbf rate 1000000bit burst 3028 limit 200000 on harnessabc123t (server)',
      apply: ['tc', 'qdisc', 'add', 'dev', 'harnessabc123t', 'root', 'handle', '10:', 'tbf', 'rate', '1000000bit', 'burst', '3028', 'limit', '200000'],
      revert: ['tc', 'qdisc', 'del', 'dev', 'harnessabc123t', 'root', 'handle', '10:'],
      absent: expect.any(String),
    });
  });
  it('refuses bad names, duplicates and non-positive numbers', () => {
    const dev = () => 'eth0';
    expect(() => planQdiscs([{ ...shape, name: 'Bad' }], dev)).toThrow(/name/);
    expect(() => planQdiscs([shape, shape], dev)).toThrow(/two qdiscs/);
    expect(() => planQdiscs([{ ...shape, rateBitsPerS: 0 }], dev)).toThrow(/rate/);
    expect(() => planQdiscs([{ ...shape, limitBytes: 1.5 }], dev)).toThrow(/limit/);
  });
  it('reads `tc -s -j qdisc show` into rule hits: packets, overlimits, drops', () => {
    const json = '[{"kind":"tbf","handle":"10:","root":true,"refcnt":3,"options":{"rate":125000,"burst":3028,"lat":775776},"bytes":71234,"packets":52,"drops":0,"overlimits":37,"requeues":0,"backlog":0,"qlen":0}]';
    expect(qdiscHits(shape, 0, parseQdiscStats(json))).toEqual({ shape: 52, 'shape:overlimits': 37, 'shape:drops': 0 });
    // Another handle (not ours) reports nothing: the check then says "no such rule", never 0.
    expect(qdiscHits(shape, 1, parseQdiscStats(json))).toEqual({});
  });
});
