/**
 * A FaultContext for unit tests of a fault's plan(), expect() and script(), without root: the
 * built-in target's endpoints, HZ=250, watchers at the default interval, and the sysctls you say
 * are in force.
 * One builder, so a field added to FaultContext reaches every test at once.
 */
import type { z } from 'zod';
import type { SidedSysctls } from '../harness/core/sysctl.js';
import { DEFAULT_WATCH_INTERVAL_MS } from '../harness/model/watch.js';
import type { FaultContext, FaultDefinition, ServerFacts } from './define.js';

export interface TestContextOptions {
  /** Raw parameters, parsed by the fault's schema (defaults applied). */
  params?: Record<string, unknown>;
  sysctls?: Partial<SidedSysctls>;
  hz?: number;
  watchIntervalMs?: number;
  /** The server as the harness found it (default: the built-in server in the mode the fault wants). */
  server?: ServerFacts;
}

export function faultContext<S extends z.ZodObject>(fault: FaultDefinition<S>, opts: TestContextOptions = {}): FaultContext<z.infer<S>> {
  const params = fault.params.parse(opts.params ?? {});
  return {
    runId: 'abc123',
    params,
    server: opts.server ?? { mode: fault.server(params).mode },
    endpoints: { address: '198.18.0.1', port: 9000, clientAddress: '198.18.0.2' },
    sysctls: { client: { ...opts.sysctls?.client }, server: { ...opts.sysctls?.server } },
    clock: { hz: opts.hz ?? 250 },
    watchIntervalMs: opts.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS,
  };
}
