/**
 * Socket states over time, and the kernel counters, of several namespaces from one long-lived
 * process: the probe's `watch --netns A --netns B` holds one sock_diag socket per namespace
 * (created inside it) and polls them all on one timer, so a run costs one wake-up per interval
 * instead of one per namespace, and nothing is spawned per sample. Its counters come from the
 * /proc/net files it opened inside each namespace, on request (a `counters` line on its stdin),
 * so no process has to live in a namespace to read them.
 */
import { run, spawnLong, withTimeout, type LongProcess } from '../../core/exec.js';
import { processStartTicks, type Journal } from '../../core/journal.js';
import type { Netns } from '../../core/netns.js';
import { probeArgv, probeCommand } from '../../core/probe.js';
import { DEFAULT_WATCH_INTERVAL_MS } from '../../model/watch.js';
import { parseProcNetCounters, type Counters } from './counters.js';

export interface SocketEvent {
  tUs: number;
  local: string;
  remote: string;
  state: string;
  rq?: number;
  wq?: number;
  retrans?: number;
}

/** One namespace to watch: the sockets on `port` (either end). */
export interface Watched {
  ns: Netns;
  port: number;
  /** Skip the IPv6 dump: for namespaces whose sockets are all IPv4 (halves the kernel work). */
  ipv4Only?: boolean;
}

export interface StateWatcher {
  /** pid of the one watcher process (it lives in the harness's namespace, not in the watched ones). */
  pid: number;
  /** Events of each watched namespace, in the order given to `startStateWatcher`. */
  events: SocketEvent[][];
  /** Resolves with the first event of namespace `i` (seen already, or to come) that `match` accepts; rejects when `signal` aborts. */
  waitFor(i: number, match: (e: SocketEvent) => boolean, signal?: AbortSignal): Promise<SocketEvent>;
  /** Each namespace's /proc/net/snmp and /proc/net/netstat counters now, in the order given. */
  counters(): Promise<Counters[]>;
  stop(): Promise<SocketEvent[][]>;
}

export interface WatchOptions {
  intervalMs?: number;
}

/** The watcher's argv (after the probe binary): the port and family follow each `--netns`. */
export function watchArgs(watched: readonly Watched[], intervalMs: number = DEFAULT_WATCH_INTERVAL_MS): string[] {
  return ['watch', '--interval-ms', String(intervalMs), ...watched.flatMap((w) => ['--netns', w.ns.path, '--port', String(w.port), '--family', w.ipv4Only ? '4' : 'all'])];
}

interface CountersLine {
  event: 'counters';
  ns: number;
  snmp?: string;
  netstat?: string;
  error?: string;
}

type Pending = { got: Map<number, Counters>; resolve: (c: Counters[]) => void; reject: (e: Error) => void };

export async function startStateWatcher(journal: Journal, watched: readonly Watched[], opts: WatchOptions = {}): Promise<StateWatcher> {
  if (watched.length === 0) throw new Error('startStateWatcher: no namespace to watch');
  const names = watched.map((w) => w.ns.name).join(', ');
  const events: SocketEvent[][] = watched.map(() => []);
  const listeners = new Set<(i: number, e: SocketEvent) => void>();
  let ready: (() => void) | undefined;
  const isReady = new Promise<void>((r) => (ready = r));
  // Requests are answered in order, one at a time: the head of this queue gets the next lines.
  const pending: Pending[] = [];
  const onCounters = (c: CountersLine) => {
    const p = pending[0];
    if (!p) return;
    if (c.error !== undefined) {
      pending.shift();
      p.reject(new Error(`the state watcher could not read the counters of ${watched[c.ns]?.ns.name ?? `namespace ${c.ns}`}: ${c.error}`));
      return;
    }
    p.got.set(c.ns, { ...parseProcNetCounters(c.snmp ?? ''), ...parseProcNetCounters(c.netstat ?? '') });
    if (p.got.size < watched.length) return;
    pending.shift();
    p.resolve(watched.map((_, i) => p.got.get(i) ?? {}));
  };
  let stderr = '';
  const proc: LongProcess = spawnLong(probeCommand(watchArgs(watched, opts.intervalMs)), {
    stderr: (line) => (stderr = `${stderr}${line}\n`.slice(-2000)),
    stdout: (line) => {
      let e: SocketEvent & { event?: string; ns?: number };
      try {
        e = JSON.parse(line) as typeof e;
      } catch {
        return; /* a partial line at exit */
      }
      if (e.event === 'watching') ready?.();
      else if (e.event === 'counters') onCounters(e as unknown as CountersLine);
      else if (e.state && typeof e.ns === 'number' && events[e.ns]) {
        const { ns: i, ...ev } = e;
        events[i]!.push(ev);
        for (const l of listeners) l(i, ev);
      }
    },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('could not start the state watcher');
  // Whatever is still waiting for counters when the watcher ends will never get them.
  const ended = proc.then((r) => {
    for (const p of pending.splice(0)) p.reject(new Error(`the state watcher of ${names} ended (exit ${r.exitCode ?? r.signal}) before it printed the counters`));
    return r;
  });
  await journal.record(`state watcher pid ${pid} of ${names}`, { kind: 'kill', pid, startTicks: (await processStartTicks(pid)) ?? '' });
  try {
    const exited = ended.then((r) => Promise.reject(new Error(`the state watcher of ${names} exited (${r.exitCode ?? r.signal}): ${stderr.trim()}`)));
    await withTimeout(Promise.race([isReady, exited]), 5000, `the state watcher of ${names} did not start`);
  } catch (err) {
    proc.kill('SIGKILL');
    await ended;
    throw err;
  }
  return {
    pid,
    events,
    waitFor(i, match, signal) {
      const seen = events[i]!.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = () => {
          listeners.delete(l);
          signal?.removeEventListener('abort', abort);
        };
        const l = (j: number, e: SocketEvent) => {
          if (j !== i || !match(e)) return;
          done();
          resolve(e);
        };
        const abort = () => {
          done();
          reject(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason ?? 'aborted')));
        };
        if (signal?.aborted) return abort();
        listeners.add(l);
        signal?.addEventListener('abort', abort, { once: true });
      });
    },
    async counters() {
      if (proc.exitCode !== null || proc.stdin.destroyed) throw new Error(`the state watcher of ${names} is not running`);
      let entry: Pending | undefined;
      const answer = new Promise<Counters[]>((resolve, reject) => pending.push((entry = { got: new Map(), resolve, reject })));
      proc.stdin.write('counters\n');
      try {
        return await withTimeout(answer, 5000, `the state watcher of ${names} did not print the counters`);
      } finally {
        // A request that timed out must not take the lines of the next one.
        const k = pending.indexOf(entry!);
        if (k >= 0) pending.splice(k, 1);
      }
    },
    async stop() {
      proc.stdin.end();
      proc.kill('SIGTERM');
      await ended;
      return events;
    },
  };
}

/** A LISTEN socket as sock_diag reports it: rq = connections in its accept queue, wq = its backlog (sk_max_ack_backlog). */
export interface Listener {
  local: string;
  backlog: number;
  queued: number;
}

/**
 * The listener a client reaches on `address:port` in `ns`, read once (`probe watch --once`, one
 * sock_diag dump): IPv4 on the address or the wildcard first, else a dual-stack [::].
 * Undefined when nothing listens there.
 */
export async function readListener(ns: Netns, address: string, port: number): Promise<Listener | undefined> {
  const r = await run(probeArgv(ns, ['watch', '--once', '--no-stdin', '--port', String(port)]), { timeoutMs: 10_000 });
  const listeners = r.stdout
    .split('\n')
    .map((l) => {
      try {
        return JSON.parse(l) as SocketEvent;
      } catch {
        return undefined;
      }
    })
    .filter((e): e is SocketEvent => e?.state === 'LISTEN');
  const pick = [`${address}:${port}`, `0.0.0.0:${port}`, `[::]:${port}`].map((l) => listeners.find((e) => e.local === l)).find(Boolean);
  return pick ? { local: pick.local, backlog: pick.wq ?? 0, queued: pick.rq ?? 0 } : undefined;
}
