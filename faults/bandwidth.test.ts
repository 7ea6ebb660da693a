import { describe, expect, it } from 'vitest';
import { planQdiscs } from './tc.js';
import { bandwidth } from './bandwidth.js';
import { faultContext } from './context.js';

const ctx = (params: Record<string, unknown> = {}, serverMode?: null) => faultContext(bandwidth, { params, ...(serverMode === null ? { serverMode } : {}) });

describe('bandwidth', () => {
  it('puts a tbf on the target\'s interface toward the client', () => {
    const c = ctx({ rate: '256kbit', burst: '4000', limit: '50000' });
    const plan = bandwidth.plan(c);
    expect(plan.qdiscs).toEqual([{ name: 'shape', side: 'server', kind: 'tbf', rateBitsPerS: 256_000, burstBytes: 4000, limitBytes: 50_000 }]);
    expect(planQdiscs(plan.qdiscs!, () => 'harnessabc123t')[0]!.apply).toEqual(['tc', 'qdisc', 'add', 'dev', 'harnessabc123t', 'root', 'handle', '10:', 'tbf', 'rate', '256000bit', 'burst', '4000', 'limit', '50000']);
    expect(bandwidth.mechanisms!(c.params)).toEqual(['tbf']);
  });
  it('the echo of 64000 B at 1 Mbit/s: 511.5 ms and up; nothing dropped, the target resends nothing', () => {
    const c = ctx();
    const e = bandwidth.expect(c);
    expect(e.steps.transfer!.bytes).toBe(64_000);
    expect(e.steps.transfer!.windowMs![0]).toBeCloseTo(511.536, 3);
    expect(e.rulesHit).toEqual({ shape: { min: 45 }, 'shape:overlimits': { min: 1 }, 'shape:drops': 0 });
    expect(e.counters).toEqual({ server: { TcpRetransSegs: 0 } });
    const read = bandwidth.script(c, e).find((s) => s.label === 'transfer');
    expect(read).toMatchObject({ op: 'read', bytes: 64_000 });
  });
  it('an answer within the bucket is not delayed (no overlimits)', () => {
    const e = bandwidth.expect(ctx({ bytes: '1000' }));
    expect(e.rulesHit!['shape:overlimits']).toBe(0);
  });
  it('another server (nginx): no size, no timing; the shaper\'s counters prove its answer passed', () => {
    const c = ctx({}, null);
    const e = bandwidth.expect(c);
    expect(e.steps.transfer).toEqual({ ok: true });
    expect(e.rulesHit).toEqual({ shape: { min: 1 }, 'shape:drops': 0 });
    expect(bandwidth.script(c, e).find((s) => s.label === 'transfer')).not.toHaveProperty('bytes');
  });
  it('refuses rates, bursts and limits that mean nothing, naming the parameter', () => {
    const path = (raw: Record<string, unknown>) => bandwidth.params.safeParse(raw).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    expect(path({ rate: '10furlongs' })).toMatch(/^rate: "10furlongs" is not a rate/);
    expect(path({ rate: '0' })).toMatch(/^rate: .*out of range/);
    expect(path({ rate: '100gbit' })).toMatch(/^rate: .*out of range/);
    expect(path({ burst: '100' })).toMatch(/^burst/); // smaller than a frame: tbf would drop full-sized packets
    expect(path({ limit: '-1' })).toMatch(/^limit/);
    expect(path({ bytes: '0' })).toMatch(/^bytes/);
  });
});
