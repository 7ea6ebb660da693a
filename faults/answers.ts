/**
 * Which servers answer the probe's requests: the network faults (latency, loss, bandwidth,
 * partition) time request/response rounds, so their server must answer what the probe writes.
 * The built-in server does (echo), and so does an HTTP server (the rounds send HTTP requests to
 * one); a server that waits for its own protocol (redis) or one the harness knows nothing of
 * would leave every round to time out, a failing verdict that says nothing of the fault.
 */
import type { TargetTraits } from '../targets/target.js';

export function answersRequests(traits: TargetTraits | undefined): string | undefined {
  if (traits?.builtinModes === 'any' || traits?.builtinModes.includes('echo') || traits?.http) return undefined;
  return "its server is not known to answer the probe's requests (the built-in echo server, or an HTTP server): every round would time out";
}
