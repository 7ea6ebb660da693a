/**
 * The native probe (probe/): types of its step script and JSON output, where its binary is, and
 * how to run its client inside a namespace. A network error is data in the output, never an
 * exception; only a broken probe throws.
 */
import { existsSync } from 'node:fs';
import { EnvironmentError, HarnessError } from './errors.js';
import { inNetns, spawnLong } from './exec.js';
import type { Netns } from './netns.js';
import { packageRoot, probeBuildHint, probeCandidates } from './probe-install.js';

/** The built-in server's modes: generated from the probe's MODES table (see server-modes.ts). */
export { SERVER_MODES, SERVER_MODE_SUMMARIES, type ServerMode } from './server-modes.js';

export type SockOpt =
  | 'SYNCNT'
  | 'USER_TIMEOUT'
  | 'KEEPALIVE'
  | 'KEEPIDLE'
  | 'KEEPINTVL'
  | 'KEEPCNT'
  | 'LINGER'
  | 'NODELAY'
  | 'RCVBUF'
  | 'SNDBUF'
  | 'CORK'
  | 'REUSEADDR'
  | 'REUSEPORT';

/**
 * One step of a client script. `label` names the step in results and expectations. `blocking`
 * (connect, write, read, close) makes the step's syscall block the way a blocking client's does —
 * O_NONBLOCK cleared for it, its time limit as SO_SNDTIMEO/SO_RCVTIMEO — instead of the probe's
 * default non-blocking call + epoll; some faults look different to the two (see reject).
 */
export type ClientStep = { label?: string; sock?: number } & (
  | { op: 'socket' }
  | { op: 'setsockopt'; opt: SockOpt; value: number; onoff?: 0 | 1 }
  | { op: 'connect'; timeoutMs: number; host?: string; port?: number; bindPort?: number; blocking?: boolean }
  /** `bytes` of filler, or `data`: those exact bytes (a request a real server parses). */
  | ({ op: 'write'; timeoutMs: number; blocking?: boolean } & ({ bytes: number; data?: never } | { data: string; bytes?: never }))
  /** bind() + listen() (default address 0.0.0.0, port the script's): a server (re)starting on a port. */
  | { op: 'listen'; host?: string; port?: number; backlog?: number }
  | { op: 'read'; bytes?: number; timeoutMs: number; blocking?: boolean }
  | { op: 'wait'; timeoutMs: number }
  | { op: 'shutdown'; how: 'rd' | 'wr' | 'rdwr' }
  | { op: 'close'; blocking?: boolean }
  | { op: 'sleep'; ms: number }
  | { op: 'tcpinfo' }
  /** Pauses the script until the harness has done the action named `name` (a trigger). */
  | { op: 'barrier'; name: string }
  /** Measures the machine's wake-up lateness: `samples` timed waits of `sleepUs` (default 64 × 1000 µs). */
  | { op: 'calibrate'; samples?: number; sleepUs?: number }
);

/** The ops whose syscall a step can make blocking. */
export const BLOCKING_OPS = ['connect', 'write', 'read', 'close'] as const;

/** Every connect/write/read/close step of a script made blocking, unless the step says otherwise. */
export function asBlocking(steps: readonly ClientStep[]): ClientStep[] {
  return steps.map((s) => ((BLOCKING_OPS as readonly string[]).includes(s.op) && !('blocking' in s && s.blocking === false) ? ({ ...s, blocking: true } as ClientStep) : s));
}

export interface TcpInfo {
  state: string;
  caState: number;
  retransmits: number;
  totalRetrans: number;
  backoff: number;
  rtoUs: number;
  rttUs: number;
  unacked: number;
  lost: number;
  probes: number;
  lastDataSentMs?: number;
  /** tcpi_last_data_recv: ms (whole jiffies) since the last data segment arrived; after a connect, since the handshake completed. */
  lastDataRecvMs?: number;
  /** tcpi_last_ack_recv: ms (whole jiffies) since the last ACK arrived (a connect's SYN-ACK). */
  lastAckRecvMs?: number;
  /** tcpi_bytes_acked: payload the peer's kernel acknowledged (its receive queue, for a peer that does not read); +1 for the SYN. */
  bytesAcked?: number;
  bytesReceived?: number;
  /** tcpi_notsent_bytes: written by the application, not yet sent (the send queue behind a closed window). */
  notsentBytes?: number;
  /** tcpi_snd_wnd: the peer's advertised receive window (0: a zero window). */
  sndWnd?: number;
}

export interface ProbeStepResult {
  i: number;
  op: string;
  sock?: number;
  ok: boolean;
  errno: string | null;
  errnoNum?: number;
  startUs: number;
  endUs: number;
  timedOut?: boolean;
  bytes?: number;
  eof?: boolean;
  events?: string[];
  local?: string;
  remote?: string;
  tcp?: TcpInfo | null;
  /** The step's syscall was blocking. */
  blocking?: boolean;
  /** calibrate: how late the timed waits woke up, µs. */
  late?: { samples: number; sleepUs: number; medianUs: number; p90Us: number; maxUs: number };
}

/** One syscall of the probe's server (`{"event":"step",…}` on its stdout): the Result's serverSteps. */
export interface ServerStep {
  op: 'accept' | 'read' | 'write' | 'close';
  ok: boolean;
  errno: string | null;
  startUs: number;
  endUs: number;
  bytes: number;
  eof: boolean;
  local: string;
  remote: string;
}

/** A server step from one line of the probe server's stdout, or undefined for any other line. */
export function parseServerStep(line: string): ServerStep | undefined {
  if (!line.startsWith('{"event":"step"')) return undefined;
  try {
    const { event: _e, ...step } = JSON.parse(line) as ServerStep & { event: string };
    return step;
  } catch {
    return undefined;
  }
}

export interface ProbeClientOutput {
  probe: 'harness-probe';
  version: number;
  mode: 'client';
  steps: ProbeStepResult[];
  /** SIGTERM/SIGINT stopped the script: only the steps run so far are listed. */
  interrupted?: boolean;
}

/**
 * The probe binary: $HARNESS_PROBE, or probe/build/harness-probe of this package — a checkout, or
 * node_modules/@netfault/harness where npm's install script built it — or, installed, the
 * prebuilt static probe the package carries for this CPU (see probe-install.ts).
 */
export function probePath(): string {
  const env = process.env.HARNESS_PROBE;
  if (env) return env;
  const root = packageRoot();
  const candidates = probeCandidates(root);
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  throw new EnvironmentError('E_PROBE_MISSING', `the native probe is not built (looked for ${candidates.join(' and ')})`, probeBuildHint(root));
}

/** argv that runs the probe (in whatever namespace it is started in). */
export function probeCommand(args: readonly string[]): string[] {
  return [probePath(), ...args];
}

/** argv for the probe in `ns`. */
export function probeArgv(ns: Netns, args: readonly string[]): string[] {
  return inNetns(ns, probeCommand(args));
}

export function parseProbeOutput(stdout: string): ProbeClientOutput {
  let doc: ProbeClientOutput;
  try {
    doc = JSON.parse(stdout) as ProbeClientOutput;
  } catch (cause) {
    throw new HarnessError('E_PROBE_OUTPUT', `the probe printed something that is not JSON: ${stdout.slice(0, 200)}`, { exitCode: 3, cause });
  }
  if (doc.probe !== 'harness-probe' || !Array.isArray(doc.steps)) {
    throw new HarnessError('E_PROBE_OUTPUT', 'the probe output lacks its header or steps', { exitCode: 3 });
  }
  return doc;
}

/** Strips harness-only fields (labels) before the script goes to the probe. */
export function probeScript(host: string, port: number, steps: readonly ClientStep[]): string {
  return JSON.stringify({ host, port, steps: steps.map(({ label: _label, ...s }) => s) });
}

export interface ProbeClientOptions {
  /**
   * Called when the script reaches `{op: 'barrier', name}`; the probe waits until it resolves (a
   * fault that strikes mid-connection). An error it throws ends the run after the probe has
   * finished its script.
   */
  onBarrier?(name: string): Promise<void>;
  /** Stops the script (SIGTERM): the probe still prints the steps it ran. */
  signal?: AbortSignal;
}

/**
 * A network namespace of the probe's own, made for it and gone with it (`harness-probe nursery`):
 * for a script that opens no socket (the calibration's timed waits), so that it can run before
 * any namespace of the run exists, without running in the host's.
 */
export const OWN_NETNS = 'own';

/**
 * Runs a client script in `ns` (or OWN_NETNS). The script goes to the probe on descriptor 3 (no
 * temporary file to leave behind, nothing to clean up after a SIGKILL); barriers are announced on
 * the probe's stderr as `{"event":"barrier",…}`, and the go-ahead is a line on its stdin.
 */
export async function runProbeClient(ns: Netns | typeof OWN_NETNS, host: string, port: number, script: readonly ClientStep[], opts: ProbeClientOptions = {}): Promise<ProbeClientOutput> {
  let stdout = '';
  let stderr = '';
  let barrierChain = Promise.resolve();
  let barrierError: unknown;
  const args = ['client', '--script-fd', '3'];
  const proc = spawnLong(ns === OWN_NETNS ? probeCommand(['nursery', '--', probePath(), ...args]) : probeArgv(ns, args), {
    input3: probeScript(host, port, script),
    ...(opts.signal ? { signal: opts.signal } : {}),
    stdout: (line) => (stdout += `${line}\n`),
    stderr: (line) => {
      const name = barrierName(line);
      if (name === undefined) {
        stderr += `${line}\n`;
        return;
      }
      barrierChain = barrierChain.then(async () => {
        try {
          await opts.onBarrier?.(name);
        } catch (e) {
          barrierError = e;
        }
        if (!proc.stdin.destroyed) proc.stdin.write('go\n');
      });
    },
  });
  const r = await proc;
  await barrierChain;
  if (barrierError) throw barrierError;
  if (r.exitCode !== 0 && opts.signal?.aborted && !stdout) {
    // Stopped by the run's own signal before it printed a step (a calibration cut short): the
    // interruption is the cause, not the probe.
    throw new HarnessError('E_INTERRUPTED', 'interrupted while the probe ran', { exitCode: 3 });
  }
  if (r.exitCode !== 0 && !opts.signal?.aborted) {
    throw new HarnessError('E_PROBE', `the probe failed (exit ${r.exitCode ?? r.signal}): ${stderr.trim()}`, { exitCode: 3 });
  }
  return parseProbeOutput(stdout);
}

function barrierName(line: string): string | undefined {
  try {
    const ev = JSON.parse(line) as { event?: string; name?: string };
    return ev?.event === 'barrier' && ev.name ? ev.name : undefined;
  } catch {
    return undefined;
  }
}
