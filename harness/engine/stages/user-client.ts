/**
 * Stage `client` with the user's own command instead of the probe: it runs in the client
 * namespace (or in a container of its image joined to it) while the fault is in force; a
 * mid-connection fault strikes when the client-side watcher sees its connection ESTABLISHED (or
 * at a given time). The harness kills a client that outlives the kernel's predicted end.
 */
import { HarnessError } from '../../core/errors.js';
import { inNetns, spawnLong } from '../../core/exec.js';
import { dockerObjectName } from '../../core/names.js';
import { fillPlaceholders, type Strike } from '../client-spec.js';
import type { RunState } from '../run-state.js';
import { fireTrigger, settleTriggers } from './fault.js';

const TAIL_CHARS = 2000;
/** SIGTERM first; a client that ignores it is SIGKILLed this much later. */
const KILL_GRACE_MS = 2000;

function tail(s: string): string {
  return s.length > TAIL_CHARS ? `…${s.slice(-TAIL_CHARS)}` : s;
}

const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/** How long the client may run: its own --client-timeout, or the kernel's predicted end plus a margin. */
export function clientTimeoutMs(s: RunState): number {
  const spec = s.p.client!;
  if (spec.timeoutMs !== undefined) return spec.timeoutMs;
  // The kernel's latest end; a fault whose end depends on when the client writes has only a
  // lower bound (endsMs[1] = Infinity): then that bound stands in.
  const latest = (w: [number, number] | undefined) => (w ? (Number.isFinite(w[1]) ? w[1] : w[0]) : 10_000);
  // A connection opened after the strike (a reconnect to a crashed host) has the kernel's end too.
  const after = s.prediction?.afterStrike?.endsMs;
  const end = Math.max(latest(s.prediction?.endsMs), after ? latest(after) : 0);
  const how = strikeOf(s);
  const strike = how.kind === 'at' ? how.ms : how.delayMs;
  return Math.ceil(strike + end * 1.5 + 5000);
}

export async function driveUserClient(s: RunState): Promise<void> {
  const spec = s.p.client!;
  const { address, port } = s.target!.endpoints;
  const argv = fillPlaceholders(spec.argv, address, port);
  const env = { ...spec.env, HARNESS_TARGET_HOST: address, HARNESS_TARGET_PORT: String(port) };
  let full: string[];
  if (spec.image) {
    const c = s.target!.containers;
    if (!c) throw new HarnessError('E_CLIENT_IMAGE', 'a client image needs a container target', { exitCode: 2 });
    const name = dockerObjectName(s.p.runId, 'cli');
    await s.journal.record(`client container ${name}`, { kind: 'docker', object: 'container', id: name });
    const labels = { 'harness.run': s.p.runId, 'harness.role': 'cli', 'harness.target': s.target!.name };
    full = [
      'docker', 'run', '--rm', '--name', name, ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), '--network', `container:${c.client}`,
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      spec.image, ...argv,
    ];
  } else {
    full = inNetns(s.ns!.client, argv);
  }
  const timeoutMs = clientTimeoutMs(s);
  let stdout = '';
  let stderr = '';
  const stop = new AbortController();
  const onAbort = () => stop.abort(s.signal.reason);
  s.signal.addEventListener('abort', onAbort, { once: true });
  s.t0Us = monoUs();
  const tStart = performance.now();
  const proc = spawnLong(full, {
    env,
    signal: stop.signal,
    stdout: (l) => (stdout = tail(`${stdout}${l}\n`)),
    stderr: (l) => (stderr = tail(`${stderr}${l}\n`)),
  });
  s.log.info({ argv: full, timeoutMs }, 'client started');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort(new Error('client timeout'));
    setTimeout(() => proc.kill('SIGKILL'), KILL_GRACE_MS).unref();
  }, timeoutMs);
  const striking = strike(s, address, port, stop.signal).catch((e: unknown) => {
    if (!stop.signal.aborted) throw e;
  });
  const r = await proc;
  const durationMs = performance.now() - tStart;
  clearTimeout(timer);
  s.signal.removeEventListener('abort', onAbort);
  // The client is done: a strike that never came (no connection, or exited first) is moot.
  stop.abort(new Error('client exited'));
  await striking;
  await settleTriggers(s);
  s.clientRun = {
    argv: spec.argv,
    ...(spec.image ? { image: spec.image } : {}),
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    durationMs: Math.round(durationMs * 10) / 10,
    timedOut,
    stdoutTail: stdout,
    stderrTail: stderr,
  };
}

/** Only a fault that holds a connection from its strike on strikes mid-connection. */
export function strikesMidConnection(s: RunState): boolean {
  return Object.keys(s.p.fault.triggers ?? {}).length > 0 && s.prediction?.from === 'strike';
}

/** How the strike comes: --strike, or when the client's connection is ESTABLISHED. */
function strikeOf(s: RunState): Strike {
  return s.p.client!.strike ?? { kind: 'established', delayMs: 0 };
}

/** When the strike is to come, in words (the check's expected value). */
export function plannedStrike(s: RunState): string {
  const how = strikeOf(s);
  return how.kind === 'at' ? `${how.ms} ms after the client started (--strike at:)` : `when a connection of the client is ESTABLISHED${how.delayMs ? ` (+${how.delayMs} ms)` : ''}`;
}

/** Fires the fault's triggers when the client's connection is ESTABLISHED (plus a delay), or at a time. */
async function strike(s: RunState, address: string, port: number, signal: AbortSignal): Promise<void> {
  if (!strikesMidConnection(s)) return;
  const how = strikeOf(s);
  let why: string;
  if (how.kind === 'established') {
    const e = await s.observers!.waitFor('client', (ev) => ev.state === 'ESTABLISHED' && ev.remote === `${address}:${port}`, signal);
    why = `the client's connection from ${e.local} was ESTABLISHED`;
    if (how.delayMs) {
      await sleep(how.delayMs, signal);
      why += ` (+${how.delayMs} ms)`;
    }
  } else {
    await sleep(how.ms, signal);
    why = `${how.ms} ms after the client started (--strike at:)`;
  }
  const ms = () => Math.round((monoUs() - s.t0Us!) / 10) / 100;
  const atMs = ms();
  for (const name of Object.keys(s.p.fault.triggers!)) await fireTrigger(s, name);
  // Firing takes time (a container's kill goes through docker: tens of ms); the fault takes hold
  // somewhere in between, so the kernel's window is measured from the start and widened by it.
  s.struck = { atMs, firedMs: Math.round((ms() - atMs) * 100) / 100, why };
  s.log.info({ atMs, why }, 'fault struck');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}
