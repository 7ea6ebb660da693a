/**
 * A target is a server in a network namespace, plus a client namespace that can reach it. The
 * `netns` backend makes both namespaces itself; the `container` backend uses a container's
 * namespace and a client attached to its Docker network. Faults, observers and the probe only
 * ever see the two namespaces, so one implementation serves both.
 */
import type { Endpoints, ServerNeeds } from '../faults/define.js';
import type { Journal } from '../harness/journal.js';
import type { Logger } from '../harness/log.js';
import type { Netns } from '../harness/netns.js';

export interface TargetContext {
  runId: string;
  journal: Journal;
  log: Logger;
  /** What the fault wants from a built-in server (a container target ignores it). */
  server: ServerNeeds;
  /** Port for built-in targets (`--port`); a target with its own port ignores it. */
  port?: number;
}

export interface StartedTarget {
  name: string;
  backend: 'netns' | 'container';
  endpoints: Endpoints;
  client: Netns;
  server: Netns;
  /** Which sides have only IPv4 sockets (the watcher then skips its IPv6 dump). */
  ipv4Only: { client: boolean; server: boolean };
  /** Sends a signal to the server process (app-crash). */
  killServer(signal: NodeJS.Signals): Promise<void>;
}

export interface TargetSpec {
  name: string;
  backend: 'netns' | 'container';
  describe: string;
  start(ctx: TargetContext): Promise<StartedTarget>;
}
