/**
 * A target is a server in a network namespace, plus a client namespace that can reach it. The
 * `netns` backend makes both namespaces itself; the `container` backend uses a container's
 * namespace and a client attached to its Docker network. Faults, observers and the probe only
 * ever see the two namespaces, so one implementation serves both.
 */
import type { ServerMode, ServerStep } from '../harness/core/probe.js';
import type { Journal } from '../harness/core/journal.js';
import type { Logger } from '../harness/core/log.js';
import type { Netns } from '../harness/core/netns.js';

/** The built-in server a fault needs when the target is the built-in one. */
export interface ServerNeeds {
  mode: ServerMode;
  backlog?: number;
}

export interface Endpoints {
  /** Address and port the client connects to (the target's own address, never a mapped port). */
  address: string;
  port: number;
  clientAddress: string;
}

export interface TargetContext {
  runId: string;
  journal: Journal;
  log: Logger;
  /** What the fault wants from a built-in server (a container target ignores it). */
  server: ServerNeeds;
  /** Port for built-in targets (`--port`); a target with its own port ignores it. */
  port?: number;
  /**
   * Called by the backend once a side's namespace exists and before the server starts, so the
   * server's sysctls are in force when it calls listen() (listen() reads somaxconn only then).
   */
  configureNetns?(side: 'client' | 'server', ns: Netns): Promise<void>;
}

/**
 * What a target can play (prepare refuses a scenario that needs more; `harness list`). A server of
 * the user's own has no built-in modes, but any process can be frozen and killed.
 */
export interface TargetPlays {
  /** Built-in server modes it runs: all (the probe's server in the mode the fault wants), some, or none. */
  modes: 'all' | readonly ServerMode[];
  /** Its processes can be frozen (SIGSTOP to the process group, or the cgroup freezer) and thawed. */
  freeze: boolean;
  /** Its process can be killed (killServer). */
  kill: boolean;
}

/** A TargetSpec that does not say: a server of its own that can be killed (killServer is required). */
export const DEFAULT_PLAYS: TargetPlays = { modes: [], freeze: false, kill: true };

/** What a freeze did, for the Result's `fault.applied` and the measurements. */
export interface FreezeReport {
  describe: string;
  durationMs: number;
}

export interface StartedTarget {
  name: string;
  backend: 'netns' | 'container';
  /** The built-in server mode it runs (the probe's server); undefined for a server of the user's own. */
  mode?: ServerMode;
  endpoints: Endpoints;
  client: Netns;
  server: Netns;
  /** Which sides have only IPv4 sockets (the watcher then skips its IPv6 dump). */
  ipv4Only: { client: boolean; server: boolean };
  /** Sends a signal to the server process (app-crash). */
  killServer(signal: NodeJS.Signals): Promise<void>;
  /**
   * Stops the server's processes (SIGSTOP to its process group, or `docker pause`): it stops
   * accepting and reading while its kernel keeps answering. The thaw is journaled before the
   * freeze, so the revert (or `harness gc`) always thaws. Throws EnvironmentError (exit 3) when
   * the server's process cannot be found; then nothing is left frozen.
   */
  freezeServer?(): Promise<FreezeReport>;
  /** Resumes a frozen server (idempotent; the revert thaws anyway). */
  thawServer?(): Promise<void>;
  /** The built-in server's own syscalls so far (accept, read, write, close); absent for a server that does not report them. */
  serverSteps?(): ServerStep[];
  /** Container targets: the run's Docker objects (a real client joins `--network container:<client>`). */
  containers?: ContainerHandles;
}

/** Names of the Docker objects of a container target's run. */
export interface ContainerHandles {
  runId: string;
  network: string;
  /** Holder owning the server namespace; the target runs with `--network container:<pod>`. */
  pod: string;
  target: string;
  /** Holder owning the client namespace the probe enters. */
  client: string;
  image: string;
}

export interface TargetSpec {
  name: string;
  backend: 'netns' | 'container';
  describe: string;
  /** What it can play; absent: DEFAULT_PLAYS. */
  plays?: TargetPlays;
  /**
   * Optional: checks what the target needs (Docker up, image present or built) while the run is
   * prepared, before anything of it exists. Throws a HarnessError with the fix.
   */
  check?(): Promise<void>;
  start(ctx: TargetContext): Promise<StartedTarget>;
}
