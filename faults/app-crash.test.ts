import { describe, expect, it } from 'vitest';
import { appCrash } from './app-crash.js';
import { faultContext } from './context.js';
import { immediateWindowMs } from '../harness/model/tcp.js';

const ctx = (params: Record<string, unknown>) =>
  faultContext(appCrash, { params: params, sysctls: { client: {}, server: {} } });

describe('app-crash', () => {
  it('kills the server with SIGKILL at the crash barrier and installs no rule', () => {
    const c = ctx({});
    expect(appCrash.plan(c)).toEqual({});
    expect(appCrash.triggers!.crash!(c)).toEqual({ kind: 'kill-server', signal: 'SIGKILL' });
    expect(appCrash.script(c, appCrash.expect(c)).filter((s) => s.op === 'barrier')).toEqual([{ op: 'barrier', name: 'crash' }]);
  });
  it('idle: EOF, a write that succeeds, EOF again, then EPIPE twice (6.18 order)', () => {
    const c = ctx({ variant: 'idle' });
    const e = appCrash.expect(c);
    expect(appCrash.server(c.params).mode).toBe('echo');
    const labels = appCrash.script(c, e).flatMap((s) => (s.label ? [s.label] : []));
    expect(labels).toEqual(['connect', 'read-eof', 'write-after-fin', 'read-after-rst', 'write-epipe', 'write-again']);
    expect(e.steps['read-eof']).toMatchObject({ eof: true, tcpState: 'CLOSE_WAIT' });
    expect(e.steps['read-after-rst']).toMatchObject({ eof: true, tcpState: 'CLOSE' });
    expect(e.steps['write-epipe']!.errno).toBe('EPIPE');
    expect(e.counters!.server!.TcpOutRsts).toBe(1);
    expect(e.counters!.client!.TcpEstabResets).toBe(1);
    expect(e.states!.client).toContain('CLOSE_WAIT');
  });
  it('unread: the server is a sink, the client writes before the crash and reads ECONNRESET at once', () => {
    const c = ctx({ variant: 'unread', bytes: '500' });
    const e = appCrash.expect(c);
    expect(appCrash.server(c.params).mode).toBe('sink');
    const script = appCrash.script(c, e);
    const iWrite = script.findIndex((s) => s.label === 'write-before');
    const iCrash = script.findIndex((s) => s.op === 'barrier' && s.name === 'crash');
    expect(iWrite).toBeLessThan(iCrash);
    expect(script[iWrite]).toMatchObject({ op: 'write', bytes: 500 });
    expect(e.steps['read-reset']).toMatchObject({ errno: 'ECONNRESET', windowMs: immediateWindowMs(c.clock) });
    expect(e.counters!.server!.TcpExtTCPAbortOnClose).toBe(1);
    expect(e.statesAbsent!.client).toContain('CLOSE_WAIT');
  });
  it('unread on a server that reads: frozen before the client writes, so the bytes are unread when it dies', () => {
    const own = faultContext(appCrash, { params: { variant: 'unread' }, server: {} });
    expect(appCrash.needs(own.params)).toBe('freeze');
    expect(appCrash.needs(appCrash.params.parse({}))).toBe('kill');
    expect(appCrash.triggers!.hold!(own)).toEqual({ kind: 'freeze-server' });
    // The built-in sink never reads: nothing to freeze.
    expect(appCrash.triggers!.hold!(ctx({ variant: 'unread' }))).toEqual({ kind: 'all', triggers: [] });
    expect(appCrash.triggers!.hold!(ctx({ variant: 'idle' }))).toEqual({ kind: 'all', triggers: [] });
    const script = appCrash.script(own, appCrash.expect(own));
    expect(script.filter((s) => s.op === 'barrier' || s.label === 'write-before').map((s) => s.label ?? (s as { name: string }).name)).toEqual(['hold', 'write-before', 'crash']);
    // Not accepted before the freeze, the connection is reset from the accept queue: a RST, no abort-on-close count.
    expect(appCrash.expect(own).counters!.server!.TcpExtTCPAbortOnClose).toEqual({ min: 0, max: 1 });
  });
  it('after-death: a second socket connects after the crash and is refused', () => {
    const c = ctx({ variant: 'after-death' });
    const e = appCrash.expect(c);
    const s = appCrash.script(c, e).find((x) => x.label === 'connect-after');
    expect(s).toMatchObject({ op: 'connect', sock: 1 });
    expect(e.steps['connect-after']!.errno).toBe('ECONNREFUSED');
    expect(e.counters!.client!.TcpAttemptFails).toBe(1);
  });
  it('rejects unknown variants and out-of-range sizes', () => {
    expect(appCrash.params.safeParse({ variant: 'reboot' }).success).toBe(false);
    expect(appCrash.params.safeParse({ bytes: '0' }).success).toBe(false);
  });
});
