/** The fault registry. A new fault: its file, its unit test, one line here, one README row. */
import { closeWait } from './close-wait.js';
import { timeWait } from './time-wait.js';
import { lastAckDrop } from './last-ack-drop.js';
import { finDrop } from './fin-drop.js';
import { synDrop } from './syn-drop.js';
import { synackDrop } from './synack-drop.js';
import { acceptQueueFull } from './accept-queue-full.js';
import { synQueueFull } from './syn-queue-full.js';
import { appCrash } from './app-crash.js';
import { appHang } from './app-hang.js';
import { hostCrash } from './host-crash.js';
import { reject } from './reject.js';
import { rstClose } from './rst-close.js';
import { nagleDelack } from './nagle-delack.js';
import { addrInUse } from './addr-in-use.js';
import { latency } from './latency.js';
import { partition } from './partition.js';
import { loss } from './loss.js';
import { bandwidth } from './bandwidth.js';

export const faults = {
  'syn-drop': synDrop,
  'synack-drop': synackDrop,
  'accept-queue-full': acceptQueueFull,
  'syn-queue-full': synQueueFull,
  'fin-drop': finDrop,
  'close-wait': closeWait,
  'time-wait': timeWait,
  'last-ack-drop': lastAckDrop,
  'app-crash': appCrash,
  'app-hang': appHang,
  'host-crash': hostCrash,
  reject,
  'rst-close': rstClose,
  'nagle-delack': nagleDelack,
  'addr-in-use': addrInUse,
  latency,
  loss,
  bandwidth,
  partition,
} as const;

export type FaultName = keyof typeof faults;

export function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(faults, name);
}
