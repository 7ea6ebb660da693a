/**
 * A target is a server in a network namespace, plus a client namespace that can reach it. The
 * `netns` backend makes both namespaces itself; the `container` backend uses a container's
 * namespace and a client attached to its Docker network. Faults, observers and the probe only
 * ever see the two namespaces, so one implementation serves both.
 */
import type { ServerMode } from '../harness/core/probe.js';
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

export interface StartedTarget {
  name: string;
  backend: 'netns' | 'container';
  endpoints: Endpoints;
  client: Netns;
  server: Netns;
  /**
   * The built-in server's mode, when the target is the probe's server (a fault whose workload needs
   * an echo can tell); absent for any other server (nginx, yours).
   */
  serverMode?: ServerMode;
  /** Which sides have only IPv4 sockets (the watcher then skips its IPv6 dump). */
  ipv4Only: { client: boolean; server: boolean };
  /** Sends a signal to the server process (app-crash). */
  killServer(signal: NodeJS.Signals): Promise<void>;
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
  /**
   * Optional: checks what the target needs (Docker up, image present or built) while the run is
   * prepared, before anything of it exists. Throws a HarnessError with the fix.
   */
  check?(): Promise<void>;
  start(ctx: TargetContext): Promise<StartedTarget>;
}
