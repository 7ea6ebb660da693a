/**
 * Network namespaces. A namespace is identified by the path of its nsfs file: `/run/netns/NAME`
 * for the ones the harness makes, `/proc/PID/ns/net` for a container's. Everything that acts in
 * a namespace goes through `assertNotHost` first: the host's namespace is never touched.
 */
import { stat } from 'node:fs/promises';
import { EnvironmentError } from './errors.js';

export interface Netns {
  /** Human name, e.g. `harness-k3j9x2-t`, or `container:abc123`. */
  name: string;
  /** Path of the namespace file that nsenter --net= takes. */
  path: string;
}

export const NETNS_DIR = '/run/netns';

export function namedNetns(name: string): Netns {
  return { name, path: `${NETNS_DIR}/${name}` };
}

export function pidNetns(pid: number, name = `pid:${pid}`): Netns {
  return { name, path: `/proc/${pid}/ns/net` };
}

async function inode(path: string): Promise<bigint> {
  return (await stat(path, { bigint: true })).ino;
}

/**
 * Refuses to act in the host's namespace: the inode of `ns` must differ from that of our own
 * namespace and of PID 1's (DESIGN §6).
 */
export async function assertNotHost(ns: Netns): Promise<void> {
  let target: bigint;
  try {
    target = await inode(ns.path);
  } catch (cause) {
    throw new EnvironmentError('E_NETNS_GONE', `network namespace ${ns.name} (${ns.path}) does not exist`, undefined, cause);
  }
  const hosts = await Promise.all(['/proc/self/ns/net', '/proc/1/ns/net'].map((p) => inode(p).catch(() => -1n)));
  if (hosts.includes(target)) {
    throw new EnvironmentError(
      'E_HOST_NETNS',
      `refusing to act in ${ns.name}: it is the host's network namespace (inode ${target})`,
      'faults only ever run inside namespaces the harness made or a container\'s own namespace',
    );
  }
}
