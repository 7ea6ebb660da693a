/** The fault registry. A new fault: its file, its unit test, one line here, one README row. */
import { synDrop } from './syn-drop.js';

export const faults = {
  'syn-drop': synDrop,
} as const;

export type FaultName = keyof typeof faults;

export function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(faults, name);
}
