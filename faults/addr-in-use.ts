/**
 * addr-in-use — a server restarts while its port still has connections in TIME_WAIT (it closed
 * them first: HTTP/1.0 requests, answered and closed), or a second listener starts beside a live
 * one. The new listener is the probe's `listen` step run in the server's namespace, with the
 * options `--set reuse=` names; the old one is the target's server.
 *
 * A server observes: bind() fails at once with EADDRINUSE — unless both the new socket and the
 * socket holding the port allow sharing it (net/ipv4/inet_connection_sock.c inet_bind_conflict):
 * SO_REUSEADDR on both shares it with TIME_WAIT (never with a live listener); SO_REUSEPORT on both
 * shares it with TIME_WAIT, and with a live listener of the same user (two listeners, the kernel
 * spreads connections between them). A TIME_WAIT carries the options of the listener that
 * accepted its connection, so SO_REUSEADDR on the restarted server does nothing if the old server
 * did not set it too (`--set serverReuseaddr=false`, built-in server only). A client observes: the
 * connections before the restart end with the server's EOF (it closes first: no TIME_WAIT on the
 * client); after a failed restart, connect() is refused at once (ECONNREFUSED); after a successful
 * one it completes in the new listener's queue. The server side's watcher sees the TIME_WAITs held
 * through the restart, and the new listener (its backlog) when bind() succeeded.
 *
 * Where this kernel differs from the seeds: seed 003 says a socket with SO_REUSEADDR may bind
 * despite TIME_WAIT, and seed 004 sets SO_REUSEADDR and SO_REUSEPORT together. On 6.18 (as since
 * 2.6) both ends matter: the TIME_WAIT's own options, inherited from the old listener, decide as
 * much as the new socket's (measured: all 16 combinations, see harness/model/bind.test.ts), and
 * SO_REUSEADDR alone never lets a second listener start beside a live one — only SO_REUSEPORT on
 * both does. bind() fails in a few µs: no timer is involved, TIME_WAIT lasts its fixed 60 s.
 */
import { z } from 'zod';
import { predictBind, type PortHolder, type ReuseOptions } from '../harness/model/bind.js';
import { TCP_TIMEWAIT_LEN_MS } from '../harness/model/teardown.js';
import { immediateWindowMs } from '../harness/model/tcp.js';
import { settleMs } from '../harness/model/watch.js';
import type { ClientStep } from '../harness/core/probe.js';
import { defineFault, type Expectation, type FaultContext, type StepExpectation } from './define.js';

const VARIANTS = ['restart', 'second-listener'] as const;
const REUSE = ['none', 'reuseaddr', 'reuseport', 'both'] as const;

/** A request the server answers, then closes first (HTTP/1.0): its TIME_WAIT lands on the server's port. */
export const CLOSING_REQUEST = 'HEAD / HTTP/1.0\r\nHost: harness\r\n\r\n';
/** The restarted listener's backlog: different from any server's, so the watcher tells the two apart. */
export const NEW_BACKLOG = 16;

const params = z.object({
  variant: z.enum(VARIANTS).default('restart').describe('restart: the server is stopped (SIGTERM) and a new listener binds its port, TIME_WAITs still there; second-listener: a new listener binds beside the live server'),
  reuse: z.enum(REUSE).default('none').describe('socket options of the new listener: none, reuseaddr (SO_REUSEADDR), reuseport (SO_REUSEPORT) or both'),
  serverReuseaddr: z.stringbool().default(true).describe("SO_REUSEADDR on the old server's listener, inherited by its connections' TIME_WAIT (built-in server; nginx sets it)"),
  serverReuseport: z.stringbool().default(false).describe("SO_REUSEPORT on the old server's listener (built-in server; nginx does not set it)"),
  connections: z.coerce.number().int().min(1).max(64).default(3).describe('connections the server closes first before the restart: its TIME_WAITs (variant restart)'),
});
type Params = z.infer<typeof params>;

const newOptions = (p: Params): ReuseOptions => ({ reuseaddr: p.reuse === 'reuseaddr' || p.reuse === 'both', reuseport: p.reuse === 'reuseport' || p.reuse === 'both' });

/** What holds the port when the new listener binds, and what bind() does about it. */
export function bindOutcome(p: Params) {
  const old = { reuseaddr: p.serverReuseaddr, reuseport: p.serverReuseport, sameUser: true };
  const holders: PortHolder[] =
    p.variant === 'restart' ? Array.from({ length: p.connections }, () => ({ ...old, state: 'TIME_WAIT' as const })) : [{ ...old, state: 'LISTEN' }];
  return { holders, bind: predictBind(newOptions(p), holders) };
}

export const addrInUse = defineFault({
  name: 'addr-in-use',
  summary: "a server restarts while its port has connections in TIME_WAIT (it closed them first), or a second listener starts beside a live one",
  observes: 'bind() fails at once with EADDRINUSE unless SO_REUSEADDR is on both the new socket and the TIME_WAITs (never beside a live listener) or SO_REUSEPORT on both; then connect() is refused',
  shapedBy: {},
  params,
  server: (p) => ({ mode: 'request-reply', reuseaddr: p.serverReuseaddr, reuseport: p.serverReuseport }),
  // Which servers close first and can be restarted on their port is the targets' traits (refuseTarget below).
  needs: () => 'any',
  fastSysctls: () => ({}),
  plan: () => ({}),
  refuseTarget: ({ name, traits }, p) => {
    if (traits?.builtinModes === 'any') return undefined;
    if (!traits?.http || !traits.listener) {
      return "it needs a server that closes first (after answering an HTTP/1.0 request) and whose listener's SO_REUSEADDR/SO_REUSEPORT are known: the built-in server or nginx";
    }
    const { reuseaddr, reuseport } = traits.listener;
    const differs = (param: string, want: boolean, has: boolean, opt: string) =>
      want === has ? undefined : { param, why: `${want} on target ${name}, whose listener ${has ? 'sets' : 'does not set'} ${opt}: only the built-in server takes ${param} (leave it ${has}, or pick another target)` };
    return differs('serverReuseaddr', p.serverReuseaddr, reuseaddr, 'SO_REUSEADDR') ?? differs('serverReuseport', p.serverReuseport, reuseport, 'SO_REUSEPORT');
  },
  triggers: {
    restart: ({ params: p }) => {
      const o = newOptions(p);
      const listener: ClientStep[] = [
        { op: 'setsockopt', opt: 'REUSEADDR', value: o.reuseaddr ? 1 : 0 },
        { op: 'setsockopt', opt: 'REUSEPORT', value: o.reuseport ? 1 : 0 },
        { op: 'listen', label: 'listen', backlog: NEW_BACKLOG },
        // Keep it listening while the client connects; closed after the client's script.
        { op: 'barrier', name: 'hold' },
        { op: 'close' },
      ];
      const script = { kind: 'server-script' as const, steps: listener };
      return p.variant === 'restart' ? { kind: 'all', triggers: [{ kind: 'kill-server', signal: 'SIGTERM' }, script] } : script;
    },
  },
  expect: (ctx): Expectation => expectBind(ctx),
  script: ({ params: p, watchIntervalMs }): ClientStep[] => {
    const steps: ClientStep[] = [];
    const n = p.variant === 'restart' ? p.connections : 0;
    for (let i = 0; i < n; i++) {
      steps.push(
        { op: 'connect', sock: i, label: `connect-${i + 1}`, timeoutMs: 5000 },
        { op: 'write', sock: i, data: CLOSING_REQUEST, timeoutMs: 2000 },
        // The reply, then the server's FIN: the server closed first.
        { op: 'read', sock: i, label: `reply-${i + 1}`, bytes: 1 << 20, timeoutMs: 2000 },
        { op: 'close', sock: i },
      );
    }
    const settle = { op: 'sleep' as const, ms: settleMs(watchIntervalMs) };
    steps.push(
      settle,
      { op: 'barrier', name: 'restart' },
      // The connection made after the restart is aborted (RST): it leaves no FIN_WAIT2 or
      // TIME_WAIT on either side to blur the ones the restart is about.
      { op: 'setsockopt', sock: n, opt: 'LINGER', value: 0, onoff: 1 },
      { op: 'connect', sock: n, label: 'connect-after', timeoutMs: 2000 },
      settle,
      { op: 'close', sock: n },
      settle,
    );
    return steps;
  },
});

function expectBind({ params: p, clock }: FaultContext<Params>): Expectation {
  const { bind } = bindOutcome(p);
  const now = immediateWindowMs(clock);
  const n = p.variant === 'restart' ? p.connections : 0;
  const listening = bind.errno === null || p.variant === 'second-listener';
  const steps: Record<string, StepExpectation> = {
    listen: { ok: bind.errno === null, errno: bind.errno, windowMs: now, ...(bind.errno === null ? { tcpState: 'LISTEN' } : {}) },
    // No listener: the kernel answers the SYN with a RST at once.
    'connect-after': listening ? { ok: true, errno: null, windowMs: now } : { ok: false, errno: 'ECONNREFUSED', windowMs: now },
  };
  for (let i = 1; i <= n; i++) {
    steps[`connect-${i}`] = { ok: true };
    steps[`reply-${i}`] = { ok: true, eof: true };
  }
  const e: Expectation = {
    steps,
    statesAbsent: { client: ['TIME_WAIT'] },
    counters: {
      // The client's one RST is its abort of the connection made after the restart.
      client: { TcpActiveOpens: n + 1, TcpAttemptFails: listening ? 0 : 1, TcpExtTW: 0, TcpOutRsts: listening ? 1 : 0 },
      // The server's one RST answers the SYN that found no listener.
      server: { TcpPassiveOpens: n + (listening ? 1 : 0), TcpExtTW: n, TcpOutRsts: listening ? 0 : 1 },
    },
    because: [
      p.variant === 'restart'
        ? `${n} connections closed by the server first: ${n} TIME_WAIT on its port for ${TCP_TIMEWAIT_LEN_MS / 1000} s, with the old listener's SO_REUSEADDR=${p.serverReuseaddr ? 1 : 0} SO_REUSEPORT=${p.serverReuseport ? 1 : 0}; the server stopped`
        : `the old server still listens, SO_REUSEADDR=${p.serverReuseaddr ? 1 : 0} SO_REUSEPORT=${p.serverReuseport ? 1 : 0}`,
      bind.because,
    ],
  };
  if (p.variant === 'restart') {
    e.states = { server: ['TIME_WAIT'] };
    // Every TIME_WAIT outlives the run (60 s): held through the restart.
    e.spans = [{ side: 'server', state: 'TIME_WAIT', sockets: n, then: 'held' }];
    // The restarted listener is the last the watcher sees (its backlog tells it from the old one).
    if (bind.errno === null) e.listen = { server: { wq: NEW_BACKLOG } };
  }
  return e;
}
