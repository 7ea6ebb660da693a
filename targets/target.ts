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
  /**
   * SO_REUSEADDR (default on, as most servers) and SO_REUSEPORT (default off) on the listener:
   * every connection it accepts inherits them, and so does that connection's TIME_WAIT.
   */
  reuseaddr?: boolean;
  reuseport?: boolean;
}

/**
 * What a fault may count on from a target's server. Most faults act on the kernel and need
 * nothing; one whose outcome depends on how the server behaves (replies only to a complete
 * request, closes first, restarts) refuses a target that does not behave so.
 */
export interface TargetTraits {
  /** The built-in server modes it runs: `any` (it honours ServerNeeds), one forced mode, or none (another server). */
  builtinModes: 'any' | readonly ServerMode[];
  /** An HTTP/1.1 server: replies once a request is complete, keeps the connection; closes first after an HTTP/1.0 request. */
  http?: boolean;
  /** SO_REUSEADDR / SO_REUSEPORT on its listener, when fixed by the server (a built-in server takes ServerNeeds'). */
  listener?: { reuseaddr: boolean; reuseport: boolean };
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
  /** What its server does (absent: unknown — a user's own server). */
  traits?: TargetTraits;
  /** What it can play; absent: DEFAULT_PLAYS. */
  plays?: TargetPlays;
  /**
   * Optional: checks what the target needs (Docker up, image present or built) while the run is
   * prepared, before anything of it exists. Throws a HarnessError with the fix.
   */
  check?(): Promise<void>;
  start(ctx: TargetContext): Promise<StartedTarget>;
}
