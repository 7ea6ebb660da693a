/** TCP ports: the one place that says what a port is, for flags, config files and rule builders. */
import { UsageError } from './errors.js';

export function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

/**
 * Parses a port given by a user (`--port 9000`): digits only, so "9e3" or "80abc" are refused
 * rather than coerced. `flag` names where it came from in the error.
 */
export function parsePort(raw: string | number, flag: string, fix = 'give a whole number from 1 to 65535'): number {
  const n = typeof raw === 'number' ? raw : /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!isPort(n)) throw new UsageError(flag, `${JSON.stringify(raw)} is not a TCP port`, fix);
  return n;
}
