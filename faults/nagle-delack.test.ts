import { describe, expect, it } from 'vitest';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';
import { nagleDelack, REQUEST_END, REQUEST_HEAD } from './nagle-delack.js';
import { predictRequestReply } from '../harness/model/ack.js';
import { builtinTargets } from '../targets/index.js';

const ctx = (params: Record<string, unknown> = {}, server: Record<string, string> = { 'net.ipv4.tcp_pingpong_thresh': '1' }) =>
  faultContext(nagleDelack, { params, sysctls: { client: { 'net.ipv4.tcp_rto_min_us': '200000' }, server } });
const script = (c: ReturnType<typeof ctx>) => nagleDelack.script(c, nagleDelack.expect(c));
const ops = (c: ReturnType<typeof ctx>) =>
  script(c).map((s) => (s.op === 'setsockopt' ? `${s.opt}=${s.value}` : s.op === 'write' ? `write:${s.label ?? ''}:${JSON.stringify(s.data)}` : `${s.op}${s.label ? `:${s.label}` : ''}`));

describe('nagle-delack', () => {
  it('counts the client\'s data segments: every one carries PSH', () => {
    const argv = planRules('abc123', nagleDelack.plan(ctx()).rules!).map((s) => s.apply);
    expect(argv).toContainEqual(['iptables', '-w', '5', '-A', 'harness-abc123-out', '-p', 'tcp', '--dport', '9000', '--tcp-flags', 'PSH', 'PSH', '-m', 'comment', '--comment', 'harness:abc123:client-data', '-j', 'ACCEPT']);
    expect(nagleDelack.server(nagleDelack.params.parse({}))).toEqual({ mode: 'request-reply' });
  });
  it('writes each request in two parts — a header line, then the blank line that completes it — and reads the reply', () => {
    expect(ops(ctx({ requests: '2' }))).toEqual([
      'connect:connect',
      `write:request-1:${JSON.stringify(REQUEST_HEAD)}`,
      `write::${JSON.stringify(REQUEST_END)}`,
      'read:reply-1',
      `write:request-2:${JSON.stringify(REQUEST_HEAD)}`,
      `write::${JSON.stringify(REQUEST_END)}`,
      'read:reply-2',
      'sleep',
      'close',
    ]);
    expect(REQUEST_HEAD + REQUEST_END).toMatch(/^HEAD \/ HTTP\/1\.1\r\n.*\r\n\r\n$/s);
  });
  it('nodelay sets TCP_NODELAY first; cork wraps the two writes; cork-held corks before connecting and never uncorks', () => {
    expect(ops(ctx({ variant: 'nodelay', requests: '1' }))[0]).toBe('NODELAY=1');
    expect(ops(ctx({ variant: 'cork', requests: '1' })).slice(1, 6)).toEqual(['CORK=1', `write:request-1:${JSON.stringify(REQUEST_HEAD)}`, `write::${JSON.stringify(REQUEST_END)}`, 'CORK=0', 'read:reply-1']);
    const held = ops(ctx({ variant: 'cork-held', requests: '3' }));
    expect(held[0]).toBe('CORK=1');
    expect(held.filter((o) => o.startsWith('CORK'))).toEqual(['CORK=1']);
  });
  it('default: each reply timed from its request\'s first write, windows from the model; the server\'s delayed ACKs counted', () => {
    const c = ctx();
    const e = nagleDelack.expect(c);
    const m = predictRequestReply({ variant: 'nagle', requests: 4, pingpongThresh: 1, rtoMinMs: 200 }, c.clock);
    for (let k = 1; k <= 4; k++) expect(e.steps[`reply-${k}`]).toEqual({ ok: true, eof: false, windowMs: m.windowsMs[k - 1], fromStep: `request-${k}` });
    expect(e.steps['reply-2']!.windowMs).toEqual([40, 60]);
    expect(e.counters!.server).toEqual({ TcpExtDelayedACKs: 3 });
    expect(e.rulesHit).toEqual({ 'client-data': 8 });
    // The read waits past the window's end before giving up.
    const read = script(c).find((s) => s.label === 'reply-2');
    expect(read?.op === 'read' && read.timeoutMs).toBeGreaterThan(60);
  });
  it('follows tcp_pingpong_thresh on the server: 3 → only request 4 of 4 waits', () => {
    const e = nagleDelack.expect(ctx({}, { 'net.ipv4.tcp_pingpong_thresh': '3' }));
    expect(e.steps['reply-2']!.windowMs![1]).toBeLessThan(40);
    expect(e.steps['reply-4']!.windowMs).toEqual([40, 60]);
    expect(e.counters!.server).toEqual({ TcpExtDelayedACKs: 1 });
  });
  it('nodelay and cork: no wait, no delayed ACK; cork sends one segment per request; cork-held waits ~204 ms', () => {
    expect(nagleDelack.expect(ctx({ variant: 'nodelay' }))).toMatchObject({ counters: { server: { TcpExtDelayedACKs: 0 } }, rulesHit: { 'client-data': 8 } });
    const cork = nagleDelack.expect(ctx({ variant: 'cork' }));
    expect(cork).toMatchObject({ counters: { server: { TcpExtDelayedACKs: 0 } }, rulesHit: { 'client-data': 4 } });
    expect(cork.steps['reply-3']!.windowMs![1]).toBeLessThan(40);
    const held = nagleDelack.expect(ctx({ variant: 'cork-held' }));
    expect(held.steps['reply-1']!.windowMs).toEqual([204, 224]);
    expect(held.rulesHit).toEqual({ 'client-data': 4 });
  });
  it('runs on the built-in server in any mode and on HTTP servers; refuses the others, saying why', () => {
    const refuse = (name: string) => nagleDelack.refuseTarget!(builtinTargets[name]!, nagleDelack.params.parse({}));
    expect(refuse('builtin')).toBeUndefined();
    expect(refuse('probe-container')).toBeUndefined();
    expect(refuse('nginx')).toBeUndefined();
    expect(refuse('echo')).toMatch(/built-in echo mode, which answers every segment as it comes/);
    expect(refuse('probe-echo')).toMatch(/built-in echo mode/);
    expect(refuse('redis')).toMatch(/not known to reply only once a request is complete/);
    expect(nagleDelack.refuseTarget!({ name: 'my-svc' }, nagleDelack.params.parse({}))).toMatch(/not known/);
  });
  it('rejects unknown variants and out-of-range request counts', () => {
    expect(nagleDelack.params.safeParse({ variant: 'quickack' }).success).toBe(false);
    expect(nagleDelack.params.safeParse({ requests: '0' }).success).toBe(false);
    expect(nagleDelack.params.safeParse({ requests: '51' }).success).toBe(false);
    expect(nagleDelack.params.safeParse({ requests: '2.5' }).success).toBe(false);
  });
});
