/**
 * Readiness of a user's target (container or process). `{log}` waits for a line of the server's
 * output, `{http: path}` for an HTTP answer below 500 from the client namespace, `{tcp: true}` for
 * a listening socket on the port. Whatever the strategy, `assertListening` then proves the server
 * listens where the client can reach it before any fault is applied, so a wrong port is a clear
 * error and never a fault that "passed" against nothing.
 *
 * Listening is read from the server namespace's socket table (/proc/<pid>/net/tcp{,6}), never by
 * connecting: a connection made to check readiness would sit in the accept queue of a server that
 * never accepts and take one of its slots before the fault starts (accept-queue-full measured one
 * connection fewer than its backlog allows on container targets when readiness connected).
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { EnvironmentError } from '../harness/core/errors.js';
import { inNetns, run } from '../harness/core/exec.js';
import type { Netns } from '../harness/core/netns.js';

export type ReadySpec = { log: string } | { http: string } | { tcp: true };

export function describeReady(r: ReadySpec): string {
  if ('log' in r) return `log line /${r.log}/`;
  if ('http' in r) return `HTTP GET ${r.http}`;
  return 'a listening socket';
}

export interface Listener {
  family: 4 | 6;
  /** The local address as /proc prints it: hex of the address words in host byte order. */
  addrHex: string;
  port: number;
}

/** LISTEN sockets (st 0A) of a /proc/net/tcp or tcp6 table: `sl local_address rem_address st …`. */
export function parseListeners(text: string, family: 4 | 6): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== '0A' || !f[1]) continue;
    const [addrHex, portHex] = f[1].split(':');
    if (addrHex && portHex) out.push({ family, addrHex, port: parseInt(portHex, 16) });
  }
  return out;
}

/** An IPv4 address as /proc/net/tcp prints it (%08X of a __be32 read as a host-order u32). */
export function ipv4Hex(ip: string, order = endianness()): string {
  const bytes = ip.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'));
  return (order === 'LE' ? bytes.reverse() : bytes).join('');
}

/**
 * Whether a client can reach `host:port` through one of `listeners`: a wildcard listener ([::]
 * is dual-stack), or one bound to `host` itself. "loopback" when the server listens on the port,
 * but only on 127.0.0.1 / ::1.
 */
export function reachability(listeners: readonly Listener[], host: string, port: number, order = endianness()): 'reachable' | 'loopback' | 'absent' {
  const v4 = ipv4Hex(host, order);
  const v6mapped = `0000000000000000${order === 'LE' ? 'FFFF0000' : '0000FFFF'}${v4}`;
  const onPort = listeners.filter((l) => l.port === port);
  if (onPort.some((l) => /^0+$/.test(l.addrHex) || l.addrHex === v4 || l.addrHex === v6mapped)) return 'reachable';
  return onPort.length ? 'loopback' : 'absent';
}

/** The LISTEN sockets of the namespace `pid` lives in: a file read, no process, no connection. */
export async function readListeners(pid: number): Promise<Listener[]> {
  const [t4, t6] = await Promise.all(['tcp', 'tcp6'].map((f) => readFile(`/proc/${pid}/net/${f}`, 'utf8').catch(() => '')));
  return [...parseListeners(t4 ?? '', 4), ...parseListeners(t6 ?? '', 6)];
}

/**
 * A fixed program (never built from user input: host, port and path are argv) that Node runs
 * inside the client namespace: GET path, print the status code. Exit 0 on any HTTP answer.
 */
const HTTP_GET = `
const [host, port, path, ms] = process.argv.slice(1);
const http = await import('node:http');
const req = http.get({ host, port: Number(port), path, timeout: Number(ms), agent: false }, (res) => {
  res.resume();
  process.stdout.write(String(res.statusCode));
  res.socket.resetAndDestroy?.();
  process.exit(0);
});
req.on('timeout', () => { process.stderr.write('timeout'); process.exit(1); });
req.on('error', (e) => { process.stderr.write(e.code ?? e.message); process.exit(1); });
`;

export async function httpStatus(client: Netns, host: string, port: number, path: string, timeoutMs = 1000): Promise<{ status?: number; error?: string }> {
  const r = await run(inNetns(client, [process.execPath, '--input-type=module', '-e', HTTP_GET, host, String(port), path, String(timeoutMs)]), {
    reject: false,
    timeoutMs: timeoutMs + 5000,
  });
  if (r.failed) return { error: r.stderr.trim() || `exit ${r.exitCode}` };
  return { status: Number(r.stdout.trim()) };
}

/** Polls `check` every 100 ms until it returns true or `timeoutMs` has passed; returns the last detail. */
export async function pollUntil(check: () => Promise<{ ok: boolean; detail: string }>, timeoutMs: number, isDead?: () => Promise<string | undefined>): Promise<{ ok: boolean; detail: string }> {
  const deadline = performance.now() + timeoutMs;
  let last = { ok: false, detail: 'not checked' };
  for (;;) {
    last = await check();
    if (last.ok) return last;
    const dead = await isDead?.();
    if (dead) return { ok: false, detail: dead };
    if (performance.now() >= deadline) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Waits for a `{tcp}` or `{http}` readiness (a `{log}` readiness is the backend's business).
 * `serverPid` is any process in the server's namespace.
 */
export async function waitNetworkReady(
  ready: ReadySpec,
  client: Netns,
  serverPid: number,
  host: string,
  port: number,
  timeoutMs: number,
  isDead?: () => Promise<string | undefined>,
): Promise<{ ok: boolean; detail: string }> {
  if ('http' in ready) {
    return pollUntil(async () => {
      const r = await httpStatus(client, host, port, ready.http);
      return r.status !== undefined && r.status < 500 ? { ok: true, detail: `HTTP ${r.status}` } : { ok: false, detail: r.error ?? `HTTP ${r.status}` };
    }, timeoutMs, isDead);
  }
  return pollUntil(async () => {
    const r = reachability(await readListeners(serverPid), host, port);
    return { ok: r === 'reachable', detail: r === 'reachable' ? 'listening' : r === 'loopback' ? 'listening on loopback only' : `nothing listens on port ${port}` };
  }, timeoutMs, isDead);
}

/**
 * Proves that `name` listens on `port` where a client reaches it (wildcard or `host`). A server
 * that logs its ready line a moment before listen() gets `graceMs` before this gives up.
 */
export async function assertListening(name: string, serverPid: number, host: string, port: number, graceMs = 2000, fix?: string): Promise<void> {
  const r = await pollUntil(async () => {
    const reach = reachability(await readListeners(serverPid), host, port);
    return { ok: reach === 'reachable', detail: reach };
  }, graceMs);
  if (!r.ok) {
    throw new EnvironmentError(
      'E_TARGET_PORT',
      r.detail === 'loopback'
        ? `target ${name} listens on port ${port} only on loopback: a client at another address (${host}) cannot reach it`
        : `target ${name} does not listen on port ${port} (no listening socket on that port in its namespace)`,
      fix ?? (r.detail === 'loopback' ? 'make the service listen on 0.0.0.0 (or ::)' : `set the port the service really listens on (targets.${name}.port in the config file)`),
    );
  }
}
