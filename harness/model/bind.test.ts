import { describe, expect, it } from 'vitest';
import { bindConflicts, predictBind, type PortHolder } from './bind.js';

/**
 * Measured on Linux 6.18 in a fresh namespace: a listener with (old SO_REUSEADDR, old
 * SO_REUSEPORT) accepted a connection and closed it first (TIME_WAIT on its port); a new socket
 * with (new SO_REUSEADDR, new SO_REUSEPORT) then bound the port — once beside the live listener,
 * once after it was closed with only the TIME_WAIT left. Columns: oldRA oldRP newRA newRP live tw.
 */
const MEASURED = `
0 0 0 0 EADDRINUSE EADDRINUSE
0 0 0 1 EADDRINUSE EADDRINUSE
0 0 1 0 EADDRINUSE EADDRINUSE
0 0 1 1 EADDRINUSE EADDRINUSE
0 1 0 0 EADDRINUSE EADDRINUSE
0 1 0 1 ok ok
0 1 1 0 EADDRINUSE EADDRINUSE
0 1 1 1 ok ok
1 0 0 0 EADDRINUSE EADDRINUSE
1 0 0 1 EADDRINUSE EADDRINUSE
1 0 1 0 EADDRINUSE ok
1 0 1 1 EADDRINUSE ok
1 1 0 0 EADDRINUSE EADDRINUSE
1 1 0 1 ok ok
1 1 1 0 EADDRINUSE ok
1 1 1 1 ok ok`
  .trim()
  .split('\n')
  .map((l) => l.split(' '));

describe('bind() against the sockets holding a port (inet_bind_conflict)', () => {
  it.each(MEASURED)('old %s/%s, new %s/%s: beside a live listener %s, after it (TIME_WAIT only) %s', (ora, orp, nra, nrp, live, tw) => {
    const sk = { reuseaddr: nra === '1', reuseport: nrp === '1' };
    const old = { reuseaddr: ora === '1', reuseport: orp === '1', sameUser: true };
    const listener: PortHolder = { ...old, state: 'LISTEN' };
    const timeWait: PortHolder = { ...old, state: 'TIME_WAIT' };
    // While the listener lives, its connection's TIME_WAIT holds the port too.
    expect(predictBind(sk, [listener, timeWait]).errno ?? 'ok').toBe(live);
    expect(predictBind(sk, [timeWait]).errno ?? 'ok').toBe(tw);
  });
  it('SO_REUSEPORT beside a live listener needs the same user; a TIME_WAIT of another user is shared', () => {
    const rp = { reuseaddr: false, reuseport: true };
    expect(bindConflicts(rp, { ...rp, state: 'LISTEN', sameUser: false })).toBe(true);
    expect(bindConflicts(rp, { ...rp, state: 'TIME_WAIT', sameUser: false })).toBe(false);
  });
  it('says why, naming the socket that holds the port', () => {
    const tw = (reuseaddr: boolean): PortHolder => ({ reuseaddr, reuseport: false, state: 'TIME_WAIT', sameUser: true });
    expect(predictBind({ reuseaddr: true, reuseport: false }, [tw(false)]).because).toMatch(/lack SO_REUSEADDR \(the old listener did not set it\)/);
    expect(predictBind({ reuseaddr: true, reuseport: false }, [{ ...tw(true), state: 'LISTEN' }]).because).toMatch(/never shares a port with the live listener/);
    expect(predictBind({ reuseaddr: false, reuseport: false }, [tw(true)]).because).toMatch(/neither SO_REUSEADDR nor SO_REUSEPORT → EADDRINUSE/);
    expect(predictBind({ reuseaddr: true, reuseport: false }, [tw(true)])).toMatchObject({ errno: null, because: expect.stringMatching(/inherited from the old listener/) });
    expect(predictBind({ reuseaddr: false, reuseport: false }, []).errno).toBeNull();
  });
});
