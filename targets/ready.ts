/**
 * Readiness of a user's target (container or process), checked the way a client would: from the
 * client namespace, against the target's own address. `{log}` waits for a line of the server's
 * output, `{tcp: true}` for a connect that succeeds, `{http: path}` for an HTTP answer below 500.
 * Whatever the strategy, `assertListening` then proves the port answers before any fault is
 * applied, so a wrong port is a clear error and never a fault that "passed" against nothing.
 */
import { EnvironmentError } from '../harness/errors.js';
import { inNetns, run } from '../harness/exec.js';
import type { Netns } from '../harness/netns.js';
import { runClient } from '../harness/probe.js';

export type ReadySpec = { log: string } | { http: string } | { tcp: true };

export function describeReady(r: ReadySpec): string {
  if ('log' in r) return `log line /${r.log}/`;
  if ('http' in r) return `HTTP GET ${r.http}`;
  return 'TCP connect';
}

export interface ConnectOutcome {
  ok: boolean;
  errno: string | null;
}

/**
 * One connect from `client` to host:port, closed with SO_LINGER {1,0} (an RST): the client keeps
 * no TIME_WAIT socket that the run's state watcher could later mistake for the scenario's own.
 */
export async function probeConnect(client: Netns, host: string, port: number, timeoutMs = 1000): Promise<ConnectOutcome> {
  const out = await runClient(
    client,
    host,
    port,
    [
      { op: 'socket' },
      { op: 'setsockopt', opt: 'LINGER', value: 0, onoff: 1 },
      { op: 'connect', timeoutMs },
      { op: 'close' },
    ],
    timeoutMs + 5000,
  );
  const c = out.steps.find((s) => s.op === 'connect');
  if (!c) return { ok: false, errno: 'no connect step' };
  return { ok: c.ok, errno: c.ok ? null : (c.errno ?? (c.timedOut ? `no answer in ${timeoutMs} ms` : 'unknown')) };
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

/** Waits for a `{tcp}` or `{http}` readiness (a `{log}` readiness is the backend's business). */
export async function waitNetworkReady(ready: ReadySpec, client: Netns, host: string, port: number, timeoutMs: number, isDead?: () => Promise<string | undefined>): Promise<{ ok: boolean; detail: string }> {
  if ('http' in ready) {
    return pollUntil(async () => {
      const r = await httpStatus(client, host, port, ready.http);
      return r.status !== undefined && r.status < 500 ? { ok: true, detail: `HTTP ${r.status}` } : { ok: false, detail: r.error ?? `HTTP ${r.status}` };
    }, timeoutMs, isDead);
  }
  return pollUntil(async () => {
    const c = await probeConnect(client, host, port);
    return { ok: c.ok, detail: c.ok ? 'connected' : `connect: ${c.errno}` };
  }, timeoutMs, isDead);
}

/**
 * Proves that `name` answers on host:port from the client namespace. A server that logs its
 * ready line a moment before listen() gets `graceMs` of ECONNREFUSED before this gives up.
 */
export async function assertListening(name: string, client: Netns, host: string, port: number, graceMs = 2000, fix?: string): Promise<void> {
  const r = await pollUntil(async () => {
    const c = await probeConnect(client, host, port);
    return { ok: c.ok, detail: c.errno ?? 'ok' };
  }, graceMs);
  if (!r.ok) {
    throw new EnvironmentError(
      'E_TARGET_PORT',
      `target ${name} does not listen on port ${port} (connect from the client namespace to ${host}:${port}: ${r.detail})`,
      fix ?? `set the port the service really listens on (targets.${name}.port in the config file)`,
    );
  }
}
