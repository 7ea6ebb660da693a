/**
 * The container images the harness builds for its container targets: the catalogue. How they
 * are built is in build.ts (Dockerfiles, the probe) and base-image.ts (the Debian base).
 *
 * No registry is reachable, so nothing is ever pulled:
 *  - `harness/probe:local`       FROM scratch with the static probe binary;
 *  - `harness/debian-base:local` a `debootstrap --variant=minbase bookworm` rootfs, `docker import`ed;
 *  - `harness/nginx:local`, `harness/redis:local` FROM the base, Debian packages installed with
 *                                apt-get during the build.
 *
 * Every image carries `harness.image=1` (a cache, never removed by `harness gc`) and
 * `harness.image.inputs=<sha256>`, a hash of what it was built from; an image whose hash differs
 * from its inputs' is rebuilt, so an edited Dockerfile never leaves a stale image behind.
 */
import { UsageError } from '../harness/core/errors.js';
import { SERVER_MODES } from '../harness/core/probe.js';

export type ImageKey = 'probe' | 'debian-base' | 'nginx' | 'redis';

export interface ImageSpec {
  /** Short name, also the directory under docker/. */
  readonly key: ImageKey;
  /** Full reference, always with the `:local` tag. */
  readonly name: string;
  readonly description: string;
  /** How it is made: a Dockerfile in docker/<key>/, or a debootstrap rootfs + docker import. */
  readonly build: 'dockerfile' | 'rootfs';
  /** Keys of images that must exist first. */
  readonly dependsOn: readonly ImageKey[];
  /** TCP ports the default command listens on (all interfaces). */
  readonly ports: readonly number[];
  /**
   * Readiness: a line the default command prints (stdout or stderr) once its listening socket is
   * open. Works with testcontainers' `Wait.forLogMessage`. Undefined: not a server by default.
   */
  readonly readyLog?: RegExp;
  /** argv of the default command (what CMD runs, after the ENTRYPOINT when there is one). */
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  /** Server modes the default entrypoint offers (probe: `server --mode MODE`), from the probe's table. */
  readonly serverModes?: readonly string[];
  /** Client tool inside the image, for suites that drive a real client. */
  readonly client?: { readonly binary: string; readonly example: readonly string[] };
}

export const images = {
  probe: {
    key: 'probe',
    name: 'harness/probe:local',
    description: 'FROM scratch: the static epoll probe (client, server modes, state watcher)',
    build: 'dockerfile',
    dependsOn: [],
    ports: [9000],
    readyLog: /"event":"listening"/,
    entrypoint: ['/harness-probe'],
    serverModes: SERVER_MODES,
    command: ['server', '--mode', 'echo', '--listen', '0.0.0.0:9000'],
  },
  'debian-base': {
    key: 'debian-base',
    name: 'harness/debian-base:local',
    description: 'debootstrap --variant=minbase bookworm rootfs, docker import',
    build: 'rootfs',
    dependsOn: [],
    ports: [],
    command: ['/bin/bash'],
  },
  nginx: {
    key: 'nginx',
    name: 'harness/nginx:local',
    description: "Debian's nginx on 0.0.0.0:80 in the foreground (daemon off), with curl",
    build: 'dockerfile',
    dependsOn: ['debian-base'],
    ports: [80],
    readyLog: /start worker process/,
    command: ['nginx', '-g', 'daemon off;'],
    client: { binary: 'curl', example: ['curl', '-sS', '-o', '/dev/null', 'http://ADDRESS:80/1m.bin'] },
  },
  redis: {
    key: 'redis',
    name: 'harness/redis:local',
    description: "Debian's redis-server on 0.0.0.0:6379, protected mode off, no persistence, with redis-cli",
    build: 'dockerfile',
    dependsOn: ['debian-base'],
    ports: [6379],
    readyLog: /Ready to accept connections/,
    command: ['redis-server', '--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
    client: { binary: 'redis-cli', example: ['redis-cli', '-h', 'ADDRESS', '-p', '6379', 'PING'] },
  },
} as const satisfies Record<ImageKey, ImageSpec>;

/** Build order: dependencies first. */
export const imageOrder: readonly ImageKey[] = ['debian-base', 'probe', 'nginx', 'redis'];

/** Label every harness image carries. Images are a cache: `harness gc` must not delete them. */
export const IMAGE_LABEL = 'harness.image';
/** Label holding the sha256 of an image's inputs. */
export const INPUTS_LABEL = 'harness.image.inputs';

/**
 * User input ('nginx', 'harness/nginx:local', 'harness/nginx') to a key; anything else is a
 * UsageError naming `flag` and listing the images.
 */
export function resolveImageKey(input: string, flag = 'IMAGE'): ImageKey {
  for (const key of imageOrder) {
    const spec = images[key];
    if (input === key || input === spec.name || input === spec.name.replace(/:local$/, '')) return key;
  }
  throw new UsageError(flag, `unknown image ${JSON.stringify(input)}`, `pick from: ${imageOrder.map((k) => `${k} (${images[k].name})`).join(', ')}`);
}

/** `keys` and everything they depend on, transitively. */
export function withDependencies(keys: Iterable<ImageKey>): Set<ImageKey> {
  const out = new Set<ImageKey>();
  const visit = (k: ImageKey): void => {
    if (out.has(k)) return;
    out.add(k);
    for (const d of images[k].dependsOn) visit(d);
  };
  for (const k of keys) visit(k);
  return out;
}
