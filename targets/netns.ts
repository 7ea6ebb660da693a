/**
 * The `netns` backend: two fresh namespaces per run, `harness-<runId>-t` (target) and
 * `harness-<runId>-c` (client), joined by a veth pair created directly inside them (the host's
 * namespace never sees it) with addresses from 198.18.0.0/15. The server is the probe's server
 * mode, or any command, started inside the target namespace.
 */
import { inNetns, run, spawnLong, withTimeout } from '../harness/core/exec.js';
import { EnvironmentError } from '../harness/core/errors.js';
import { processStartTicks } from '../harness/core/journal.js';
import { assertNotHost, namedNetns, type Netns } from '../harness/core/netns.js';
import { parseServerStep, probeCommand, type ServerStep } from '../harness/core/probe.js';
import { groupFreezer } from './freeze.js';
import type { ServerNeeds } from './target.js';
import type { StartedTarget, TargetContext, TargetSpec } from './target.js';

export const TARGET_ADDRESS = '198.18.0.1';
export const CLIENT_ADDRESS = '198.18.0.2';
export const PREFIX_LEN = 30;
export const DEFAULT_PORT = 9000;

export interface NetnsPair {
  client: Netns;
  server: Netns;
}

/**
 * Established-hash buckets of each run namespace. A namespace made from the host shares the
 * kernel's global TCP hash (262144 buckets on a 24 GiB machine), and every sock_diag dump the
 * state watcher makes walks all of it: ~1 ms of kernel time per dump. A namespace created from
 * a parent whose `tcp_child_ehash_entries` is set gets a table of its own (Linux >= 6.1).
 */
export const CHILD_EHASH_ENTRIES = 1024;

/** The veth of a run: its client end and its server (target) end, named for the run (≤ 15 chars). */
export function vethNames(runId: string): { client: string; server: string } {
  return { client: `harness${runId}c`, server: `harness${runId}t` };
}

/** `ip -batch` input that gives `dev` its address and brings it and lo up (each end of a run's veth). */
export function linkUpBatch(dev: string, addr: string): string {
  return [`addr add ${addr}/${PREFIX_LEN} dev ${dev}`, `link set ${dev} up`, 'link set lo up', ''].join('\n');
}

/**
 * Creates the two namespaces and the veth between them, each namespace journaled before it
 * exists. One process makes both and the veth: `harness-probe nursery` enters a new, nameless
 * namespace whose tcp_child_ehash_entries gives the children a TCP hash of their own, and runs
 * `ip -batch` there — the namespaces, then the veth with each end created straight into its
 * namespace (`link add … netns C type veth peer … netns T`): the host's namespace never holds
 * either end. The nursery goes with that process. Then each side's address and links, both sides
 * at once.
 */
export async function createNetnsPair(ctx: TargetContext): Promise<NetnsPair> {
  const { runId, journal } = ctx;
  const server = namedNetns(`harness-${runId}-t`);
  const client = namedNetns(`harness-${runId}-c`);
  const { client: vc, server: vt } = vethNames(runId);
  for (const ns of [server, client]) await journal.record(`network namespace ${ns.name}`, { kind: 'netns', name: ns.name });
  const made = await run(probeCommand(['nursery', '--child-ehash', String(CHILD_EHASH_ENTRIES), '--', 'ip', '-batch', '-']), {
    input: [`netns add ${server.name}`, `netns add ${client.name}`, `link add ${vc} netns ${client.name} type veth peer name ${vt} netns ${server.name}`].join('\n') + '\n',
  });
  if (made.stderr.trim()) ctx.log.debug({ stderr: made.stderr.trim() }, 'nursery');
  await Promise.all([server, client].map((ns) => assertNotHost(ns)));
  // Each side on its own: its sysctls (before anything listens there), then its address and links.
  const side = async (name: 'server' | 'client', ns: Netns, dev: string, addr: string) => {
    await ctx.configureNetns?.(name, ns);
    await run(['ip', '-n', ns.name, '-batch', '-'], { input: linkUpBatch(dev, addr) });
  };
  await Promise.all([side('server', server, vt, TARGET_ADDRESS), side('client', client, vc, CLIENT_ADDRESS)]);
  return { client, server };
}

export interface ServerProcess {
  pid: number;
  /** What it reported of its own syscalls (the probe's server; empty for other commands). */
  steps: ServerStep[];
  /** Its start time (clock ticks since boot), read when it started; undefined if it was gone already. */
  startTicks: string | undefined;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Starts `argv` in `ns`, journals its kill, and waits until `ready` sees a line (or the port listens). */
export async function startServer(ctx: TargetContext, ns: Netns, argv: string[], ready: (line: string) => boolean, timeoutMs = 10_000): Promise<ServerProcess> {
  let stderr = '';
  let onReady: (() => void) | undefined;
  const isReady = new Promise<void>((r) => (onReady = r));
  const steps: ServerStep[] = [];
  const proc = spawnLong(inNetns(ns, argv), {
    stdout: (l) => {
      const step = parseServerStep(l);
      if (step) steps.push(step);
      else if (ready(l)) onReady?.();
    },
    stderr: (l) => {
      stderr += `${l}\n`;
      ctx.log.debug({ server: l }, 'server stderr');
    },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new EnvironmentError('E_SERVER_START', `could not start ${argv[0]} in ${ns.name}`);
  const startTicks = await processStartTicks(pid);
  await ctx.journal.record(`server pid ${pid} in ${ns.name}`, { kind: 'kill', pid, startTicks: startTicks ?? '' });
  const ended = proc.then((r) => {
    throw new EnvironmentError('E_SERVER_START', `server ${argv.join(' ')} exited (${r.exitCode ?? r.signal}) before it was ready: ${stderr.trim()}`);
  });
  await withTimeout(Promise.race([isReady, ended]), timeoutMs, `server ${argv[0]} in ${ns.name} not ready after ${timeoutMs} ms`);
  ended.catch(() => undefined);
  return {
    pid,
    steps,
    startTicks,
    async kill(signal) {
      proc.kill(signal);
      await proc;
    },
  };
}

export function builtinServerArgv(server: ServerNeeds, port: number): string[] {
  const reuse = [
    ...(server.reuseaddr === false ? ['--reuseaddr', '0'] : []),
    ...(server.reuseport ? ['--reuseport', '1'] : []),
  ];
  return ['server', '--mode', server.mode, '--listen', `0.0.0.0:${port}`, '--backlog', String(server.backlog ?? 128), ...reuse];
}

/** A built-in target: the probe's server mode `mode` (or the fault's choice) in a fresh namespace. */
export function builtinTarget(name: string, describe: string, forcedMode?: ServerNeeds['mode']): TargetSpec {
  return {
    name,
    backend: 'netns',
    describe,
    traits: { builtinModes: forcedMode ? [forcedMode] : 'any' },
    // The probe's server: every mode (or the one forced), frozen and killed like any process.
    plays: { modes: forcedMode ? [forcedMode] : 'all', freeze: true, kill: true },
    async start(ctx: TargetContext): Promise<StartedTarget> {
      const pair = await createNetnsPair(ctx);
      const needs: ServerNeeds = forcedMode ? { ...ctx.server, mode: forcedMode } : ctx.server;
      const port = ctx.port ?? DEFAULT_PORT;
      const argv = probeCommand(builtinServerArgv(needs, port));
      const srv = await startServer(ctx, pair.server, argv, (l) => l.includes('"listening"'));
      return {
        name: forcedMode ?? needs.mode,
        backend: 'netns',
        mode: needs.mode,
        endpoints: { address: TARGET_ADDRESS, port, clientAddress: CLIENT_ADDRESS },
        ...pair,
        ipv4Only: { client: true, server: true },
        killServer: (signal) => srv.kill(signal),
        serverSteps: () => [...srv.steps],
        ...groupFreezer(ctx.journal, forcedMode ?? needs.mode, srv.pid, srv.startTicks, port),
      };
    },
  };
}
