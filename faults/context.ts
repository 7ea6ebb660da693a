/**
 * A FaultContext for unit tests of a fault's plan(), expect() and script(), without root: the
 * built-in target's endpoints, HZ=250, watchers at the default interval, and the sysctls you say
 * are in force.
 * One builder, so a field added to FaultContext reaches every test at once.
 */
import type { z } from 'zod';
import type { ServerMode } from '../harness/core/probe.js';
import type { SidedSysctls } from '../harness/core/sysctl.js';
import { DEFAULT_WATCH_INTERVAL_MS } from '../harness/model/watch.js';
import type { FaultContext, FaultDefinition, ServerFacts } from './define.js';

export interface TestContextOptions {
  /** Raw parameters, parsed by the fault's schema (defaults applied). */
  params?: Record<string, unknown>;
  sysctls?: Partial<SidedSysctls>;
  hz?: number;
  /** The calibrated wake-up lateness (ms) the run would have measured; absent: uncalibrated. */
  lateMs?: number;
  watchIntervalMs?: number;
  /** The built-in server's mode (default: the one the fault asks for); null: another server (nginx). Sets `server.mode`. */
  serverMode?: ServerMode | null;
  blocking?: boolean;
  /** The server as the harness found it (default: the built-in server in the mode the fault wants). */
  server?: ServerFacts;
}

export function faultContext<S extends z.ZodObject>(fault: FaultDefinition<S>, opts: TestContextOptions = {}): FaultContext<z.infer<S>> {
  const params = fault.params.parse(opts.params ?? {});
  const serverMode = opts.serverMode === undefined ? fault.server(params).mode : opts.serverMode;
  return {
    runId: 'abc123',
    params,
    server: opts.server ?? (serverMode ? { mode: serverMode } : {}),
    endpoints: { address: '198.18.0.1', port: 9000, clientAddress: '198.18.0.2' },
    sysctls: { client: { ...opts.sysctls?.client }, server: { ...opts.sysctls?.server } },
    clock: { hz: opts.hz ?? 250, ...(opts.lateMs !== undefined ? { lateMs: opts.lateMs } : {}) },
    watchIntervalMs: opts.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS,
    blocking: opts.blocking ?? false,
  };
}
