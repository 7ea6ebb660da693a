/**
 * Socket states over time, from the probe's `watch` mode: one long-lived process per namespace
 * polls sock_diag every few ms and prints a line per change, so no process is spawned per sample.
 */
import { run, spawnLong, withTimeout, type LongProcess } from '../../core/exec.js';
import { processStartTicks, type Journal } from '../../core/journal.js';
import type { Netns } from '../../core/netns.js';
import { probeArgv } from '../../core/probe.js';
import { DEFAULT_WATCH_INTERVAL_MS } from '../../model/watch.js';

export interface SocketEvent {
  tUs: number;
  local: string;
  remote: string;
  state: string;
  rq?: number;
  wq?: number;
  retrans?: number;
}

export interface StateWatcher {
  /** pid of the watcher: a process inside the namespace, for /proc/<pid>/net/… reads. */
  pid: number;
  events: SocketEvent[];
  /** Resolves with the first event (seen already, or to come) that `match` accepts; rejects when `signal` aborts. */
  waitFor(match: (e: SocketEvent) => boolean, signal?: AbortSignal): Promise<SocketEvent>;
  stop(): Promise<SocketEvent[]>;
}

export interface WatchOptions {
  intervalMs?: number;
  /** Skip the IPv6 dump: for namespaces whose sockets are all IPv4 (halves the kernel work). */
  ipv4Only?: boolean;
}

export async function startStateWatcher(journal: Journal, ns: Netns, port: number, opts: WatchOptions = {}): Promise<StateWatcher> {
  const args = ['watch', '--interval-ms', String(opts.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS), '--port', String(port), ...(opts.ipv4Only ? ['--family', '4'] : [])];
  const events: SocketEvent[] = [];
  const listeners = new Set<(e: SocketEvent) => void>();
  let ready: (() => void) | undefined;
  const isReady = new Promise<void>((r) => (ready = r));
  const proc: LongProcess = spawnLong(probeArgv(ns, args), {
    stdout: (line) => {
      try {
        const e = JSON.parse(line) as SocketEvent & { event?: string };
        if (e.event === 'watching') ready?.();
        else if (e.state) {
          events.push(e);
          for (const l of listeners) l(e);
        }
      } catch {
        /* a partial line at exit */
      }
    },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('could not start the state watcher');
  await journal.record(`state watcher pid ${pid} in ${ns.name}`, { kind: 'kill', pid, startTicks: (await processStartTicks(pid)) ?? '' });
  await withTimeout(isReady, 5000, `the state watcher in ${ns.name} did not start`);
  return {
    pid,
    events,
    waitFor(match, signal) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = () => {
          listeners.delete(l);
          signal?.removeEventListener('abort', abort);
        };
        const l = (e: SocketEvent) => {
          if (!match(e)) return;
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
    async stop() {
      proc.stdin.end();
      proc.kill('SIGTERM');
      await proc;
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
