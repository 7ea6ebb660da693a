import { describe, expect, it } from 'vitest';
import { addrInUse, CLOSING_REQUEST, NEW_BACKLOG } from './addr-in-use.js';
import { faultContext } from './context.js';
import { immediateWindowMs } from '../harness/model/tcp.js';
import { builtinTargets } from '../targets/index.js';
import { builtinServerArgv } from '../targets/netns.js';

const ctx = (params: Record<string, unknown> = {}) => faultContext(addrInUse, { params });
const expectOf = (params: Record<string, unknown> = {}) => addrInUse.expect(ctx(params));

describe('addr-in-use', () => {
  it('the server answers HTTP/1.0 and closes first, with the listener options asked for', () => {
    expect(addrInUse.server(addrInUse.params.parse({}))).toEqual({ mode: 'request-reply', reuseaddr: true, reuseport: false });
    const s = addrInUse.server(addrInUse.params.parse({ serverReuseaddr: 'false', serverReuseport: 'true' }));
    expect(builtinServerArgv(s, 9000)).toEqual(['server', '--mode', 'request-reply', '--listen', '0.0.0.0:9000', '--backlog', '128', '--reuseaddr', '0', '--reuseport', '1']);
    expect(CLOSING_REQUEST).toMatch(/^HEAD \/ HTTP\/1\.0\r\n.*\r\n\r\n$/s);
  });
  it('restart: N connections closed by the server, then the restart barrier; the connection after it is aborted', () => {
    const c = ctx({ connections: '2' });
    const steps = addrInUse.script(c, addrInUse.expect(c));
    expect(steps.map((s) => `${s.op}${s.sock !== undefined ? s.sock : ''}${s.label ? `:${s.label}` : ''}`)).toEqual([
      'connect0:connect-1', 'write0', 'read0:reply-1', 'close0',
      'connect1:connect-2', 'write1', 'read1:reply-2', 'close1',
      'sleep', 'barrier', 'setsockopt2', 'connect2:connect-after', 'sleep', 'close2', 'sleep',
    ]);
    expect(steps[1]).toMatchObject({ op: 'write', data: CLOSING_REQUEST });
    expect(steps[10]).toEqual({ op: 'setsockopt', sock: 2, opt: 'LINGER', value: 0, onoff: 1 });
  });
  it('restart trigger: SIGTERM the server, then bind and listen on its port in its namespace, held until the client is done', () => {
    expect(addrInUse.triggers!.restart!(ctx({ reuse: 'reuseaddr' }))).toEqual({
      kind: 'all',
      triggers: [
        { kind: 'kill-server', signal: 'SIGTERM' },
        {
          kind: 'server-script',
          steps: [
            { op: 'setsockopt', opt: 'REUSEADDR', value: 1 },
            { op: 'setsockopt', opt: 'REUSEPORT', value: 0 },
            { op: 'listen', label: 'listen', backlog: NEW_BACKLOG },
            { op: 'barrier', name: 'hold' },
            { op: 'close' },
          ],
        },
      ],
    });
    // A second listener starts beside the live server: nothing is killed.
    expect(addrInUse.triggers!.restart!(ctx({ variant: 'second-listener' }))).toMatchObject({ kind: 'server-script' });
  });
  it('default: bind() EADDRINUSE at once, then connect() refused; the TIME_WAITs held on the server, none on the client', () => {
    const e = expectOf();
    const now = immediateWindowMs({ hz: 250 });
    expect(e.steps.listen).toEqual({ ok: false, errno: 'EADDRINUSE', windowMs: now });
    expect(e.steps['connect-after']).toEqual({ ok: false, errno: 'ECONNREFUSED', windowMs: now });
    expect(e.steps['reply-3']).toEqual({ ok: true, eof: true });
    expect(e.spans).toEqual([{ side: 'server', state: 'TIME_WAIT', sockets: 3, then: 'held' }]);
    expect(e.statesAbsent).toEqual({ client: ['TIME_WAIT'] });
    expect(e.counters).toEqual({
      client: { TcpActiveOpens: 4, TcpAttemptFails: 1, TcpExtTW: 0, TcpOutRsts: 0 },
      server: { TcpPassiveOpens: 3, TcpExtTW: 3, TcpOutRsts: 1 },
    });
    expect(e.listen).toBeUndefined();
  });
  it('SO_REUSEADDR (or SO_REUSEPORT) on both the new listener and the TIME_WAITs: bind() succeeds, the new listener is seen, connect() completes', () => {
    for (const reuse of ['reuseaddr', 'both'] as const) {
      const e = expectOf({ reuse });
      expect(e.steps.listen).toMatchObject({ ok: true, errno: null, tcpState: 'LISTEN' });
      expect(e.steps['connect-after']).toMatchObject({ ok: true, errno: null });
      expect(e.listen).toEqual({ server: { wq: NEW_BACKLOG } });
      expect(e.counters!.server).toMatchObject({ TcpPassiveOpens: 4, TcpOutRsts: 0 });
    }
    expect(expectOf({ reuse: 'reuseport' }).steps.listen!.errno).toBe('EADDRINUSE');
    expect(expectOf({ reuse: 'reuseport', serverReuseport: 'true' }).steps.listen!.errno).toBeNull();
  });
  it('TIME_WAITs from a listener without SO_REUSEADDR: the new listener\'s SO_REUSEADDR does not help', () => {
    const e = expectOf({ reuse: 'reuseaddr', serverReuseaddr: 'false' });
    expect(e.steps.listen!.errno).toBe('EADDRINUSE');
    expect(e.because!.join(' ')).toMatch(/old listener did not set it/);
  });
  it('second listener: SO_REUSEADDR never shares a live listener\'s port, SO_REUSEPORT on both does; the old server answers either way', () => {
    const addr = expectOf({ variant: 'second-listener', reuse: 'reuseaddr' });
    expect(addr.steps.listen!.errno).toBe('EADDRINUSE');
    expect(addr.steps['connect-after']).toMatchObject({ ok: true });
    expect(addr.spans).toBeUndefined();
    expect(addr.counters!.server).toMatchObject({ TcpExtTW: 0, TcpPassiveOpens: 1 });
    expect(expectOf({ variant: 'second-listener', reuse: 'reuseport', serverReuseport: 'true' }).steps.listen!.errno).toBeNull();
  });
  it('runs on the built-in server and on nginx with nginx\'s own listener options; refuses the rest, naming the --set parameter', () => {
    const refuse = (name: string, raw: Record<string, unknown> = {}) => addrInUse.refuseTarget!(builtinTargets[name]!, addrInUse.params.parse(raw));
    expect(refuse('builtin')).toBeUndefined();
    expect(refuse('probe-container', { serverReuseport: 'true' })).toBeUndefined();
    expect(refuse('nginx')).toBeUndefined();
    expect(refuse('nginx', { reuse: 'both', variant: 'second-listener' })).toBeUndefined();
    expect(refuse('nginx', { serverReuseaddr: 'false' })).toEqual({ param: 'serverReuseaddr', why: expect.stringMatching(/^false on target nginx, whose listener sets SO_REUSEADDR/) });
    expect(refuse('nginx', { serverReuseport: 'true' })).toEqual({ param: 'serverReuseport', why: expect.stringMatching(/^true on target nginx, whose listener does not set SO_REUSEPORT/) });
    for (const t of ['redis', 'probe-echo', 'echo']) expect(refuse(t)).toMatch(/closes first/);
  });
  it('rejects bad values', () => {
    for (const bad of [{ reuse: 'yes' }, { variant: 'reload' }, { connections: '0' }, { connections: '65' }, { serverReuseaddr: 'maybe' }]) {
      expect(addrInUse.params.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
