/**
 * Whether bind() on a port succeeds while other sockets hold it: net/ipv4/inet_connection_sock.c
 * inet_csk_get_port → inet_csk_bind_conflict → inet_bind_conflict (bind() passes relax and
 * reuseport_ok true). Against each socket `sk2` already bound to the port (a listener, a
 * connection it accepted, that connection's TIME_WAIT), the new socket `sk` conflicts unless
 * - both have SO_REUSEADDR and `sk2` is not listening (a TIME_WAIT — or any connection — is
 *   shared; a live listener never is), or
 * - both have SO_REUSEPORT and `sk2` is in TIME_WAIT or belongs to the same user.
 * A connection and its TIME_WAIT carry the options of the listener that accepted it (sk_clone
 * copies sk_reuse and sk_reuseport; inet_twsk_alloc copies them to tw_reuse / tw_reuseport), so
 * SO_REUSEADDR on the restarted server does nothing if the old one did not set it too.
 * Measured on 6.18 (all 16 combinations, TIME_WAIT and live listener): see bind.test.ts.
 */

export interface ReuseOptions {
  reuseaddr: boolean;
  reuseport: boolean;
}

export interface PortHolder extends ReuseOptions {
  state: 'LISTEN' | 'TIME_WAIT' | 'ESTABLISHED';
  /** Owned by the same user as the new socket (always, when one user runs both servers). */
  sameUser: boolean;
}

/** inet_bind_conflict with relax and reuseport_ok true, as bind() calls it. */
export function bindConflicts(sk: ReuseOptions, sk2: PortHolder): boolean {
  if (sk.reuseaddr && sk2.reuseaddr && sk2.state !== 'LISTEN') return false;
  return !(sk.reuseport && sk2.reuseport && (sk2.state === 'TIME_WAIT' || sk2.sameUser));
}

export interface BindPrediction {
  errno: 'EADDRINUSE' | null;
  /** Which holder decides it, in words. */
  because: string;
}

const opts = (o: ReuseOptions) => [o.reuseaddr ? 'SO_REUSEADDR' : '', o.reuseport ? 'SO_REUSEPORT' : ''].filter(Boolean).join(' + ') || 'neither SO_REUSEADDR nor SO_REUSEPORT';
const what = (h: PortHolder) => (h.state === 'LISTEN' ? 'the live listener' : `the ${h.state} sockets`);

export function predictBind(sk: ReuseOptions, holders: readonly PortHolder[]): BindPrediction {
  const blocker = holders.find((h) => bindConflicts(sk, h));
  if (!blocker) {
    const h = holders[0];
    const why = !h
      ? 'nothing holds the port'
      : sk.reuseaddr && h.reuseaddr && h.state !== 'LISTEN'
        ? `SO_REUSEADDR is on both the new socket and ${what(h)} (${h.state === 'TIME_WAIT' ? "inherited from the old listener" : 'its own'})`
        : `SO_REUSEPORT is on both the new socket and ${what(h)}${h.state === 'LISTEN' ? ' (same user): two listeners share the port' : ''}`;
    return { errno: null, because: `bind() with ${opts(sk)} succeeds: ${why}` };
  }
  const b = what(blocker);
  const why =
    blocker.state === 'LISTEN' && sk.reuseaddr && blocker.reuseaddr
      ? `SO_REUSEADDR never shares a port with ${b}${sk.reuseport ? ', and it lacks SO_REUSEPORT' : '; SO_REUSEPORT on both would'}`
      : sk.reuseaddr && !blocker.reuseaddr
        ? `${b} lack SO_REUSEADDR (${blocker.state === 'TIME_WAIT' ? 'the old listener did not set it' : 'not set'}), so the new socket's does not count`.replace('listener lack', 'listener lacks')
        : sk.reuseport && !blocker.reuseport
          ? `SO_REUSEPORT must be on both sockets, and ${b} lack${blocker.state === 'LISTEN' ? 's' : ''} it`
          : `${b} hold${blocker.state === 'LISTEN' ? 's' : ''} the port`;
  return { errno: 'EADDRINUSE', because: `bind() with ${opts(sk)} → EADDRINUSE: ${why}` };
}
