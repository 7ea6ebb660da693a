/**
 * The `container` backend: any image (or Dockerfile folder) becomes a target. A container is just
 * a network namespace with a process in it, so faults, observers and the probe work unchanged:
 *
 *   harness-<runId>-pod     holder (--network none): the probe's `watch` as a pause process; owns
 *     │                     the server netns, 198.18.0.1/30
 *     ├─ veth harness<runId>t ══ harness<runId>c   (both ends born in the holders' namespaces)
 *     │    └─ harness-<runId>-target   the user's image, --network container:<pod>
 *   harness-<runId>-client  holder (--network none): owns the client netns the probe enters
 *                           (nsenter from the host), 198.18.0.2/30
 *
 * No Docker network: the two namespaces are joined by a direct veth pair, as a netns run's are
 * (DESIGN §2), so Docker changes nothing in the host's network namespace — no bridge, no veth on
 * it, no route, no iptables rule — and a run costs no `docker network create` / `rm` (~65–85 and
 * ~100 ms of dockerd on this VM).
 *
 * The target shares the pod's namespace, so killing it (app-crash) leaves the namespace, its
 * address and its iptables rules alive, exactly like a crashed process on a live host. The probe
 * connects to the pod's own address on the veth, never to a mapped port: the docker-proxy would
 * accept on the host and hide every fault (DESIGN §2). Every container is journaled by name before
 * it exists, and labelled, so the journal and `harness gc` remove them (gc also removes the run
 * networks earlier versions made).
 *
 * testcontainers starts the containers; it must find TESTCONTAINERS_RYUK_DISABLED (Ryuk cannot be
 * pulled, the harness reaps its own leftovers by label) and TESTCONTAINERS_HOST_OVERRIDE (no
 * helper-image pull) in the environment before it is imported, hence the dynamic import below.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { ServerMode } from '../harness/core/probe.js';
import type { FreezeReport, ServerNeeds } from './target.js';
import { dockerAvailable } from '../docker/engine.js';
import { hashDir } from '../docker/hash-dir.js';
import { images, IMAGE_LABEL } from '../docker/images.js';
import { EnvironmentError } from '../harness/core/errors.js';
import { inNetns, run } from '../harness/core/exec.js';
import { processStartTicks } from '../harness/core/journal.js';
import { assertNotHost, pidNetns, type Netns } from '../harness/core/netns.js';
import { builtinServerArgv, CLIENT_ADDRESS, linkUpBatch, TARGET_ADDRESS, vethNames } from './netns.js';
import { assertListening, describeReady, readListeners, waitNetworkReady, type ReadySpec } from './ready.js';
import type { ContainerHandles, StartedTarget, TargetContext, TargetSpec, TargetTraits } from './target.js';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= 'localhost';

export interface ContainerTargetOptions {
  name: string;
  describe?: string;
  /** An image that exists locally (or can be pulled where a registry is reachable)… */
  image?: string;
  /** …or an absolute path to a folder with a Dockerfile, built with label harness.image=1. */
  build?: string;
  /** The TCP port the service listens on inside its namespace. */
  port: number;
  env?: Record<string, string>;
  /** Replaces the image's CMD; a function gets what the fault wants from a built-in server. */
  command?: string[] | ((server: ServerNeeds) => string[]);
  /** Default: `{tcp: true}`. */
  ready?: ReadySpec;
  readyTimeoutMs?: number;
  /** What its server does (faults that depend on it refuse a target without the trait). */
  traits?: TargetTraits;
  /**
   * The probe's server images: the built-in mode the image runs, or 'all' when `command` picks
   * the mode the fault wants. Absent: a server of its own (no built-in modes).
   */
  modes?: 'all' | readonly ServerMode[];
}

export type { ContainerHandles };

export const HOLDER_IMAGE = images.probe.name;
/** The pause process of a holder: the probe's watcher, polling once in ten minutes, stdin ignored. */
export const HOLDER_COMMAND = ['watch', '--no-stdin', '--interval-ms', '600000'];
export const DEFAULT_READY_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Pure parts (unit-tested)
// ---------------------------------------------------------------------------------------------

export type ContainerRole = 'pod' | 'target' | 'client';

export function containerName(runId: string, role: ContainerRole): string {
  return `harness-${runId}-${role}`;
}

export function runLabels(runId: string, role: ContainerRole, target: string): Record<string, string> {
  return { 'harness.run': runId, 'harness.role': role, 'harness.target': target };
}

/** Tag of an image built from a target's Dockerfile folder: the hash of the folder's contents. */
export function builtImageTag(target: string, contentHash: string): string {
  return `harness-target/${target.toLowerCase()}:${contentHash.slice(0, 12)}`;
}

export function isHarnessImage(image: string): boolean {
  return /^harness\/[a-z0-9-]+:local$/.test(image);
}

/** The fix for a missing image: build ours, or build/load theirs. */
export function missingImageFix(image: string): string {
  if (isHarnessImage(image)) return `build it: harness images build (or npm run images); Docker itself: bash scripts/docker-setup.sh`;
  return `build or load it first: docker build -t ${image} <folder>, or docker load -i <file.tar>; or use "build": "<folder>" in the config`;
}

/** Parses `docker inspect -f '{{.State.Pid}} {{.State.Status}} {{.State.ExitCode}}'`. */
export function parseInspect(line: string): { pid: number; status: string; exitCode: number } {
  const [pid, status, exitCode] = line.trim().split(/\s+/);
  return { pid: Number(pid), status: status ?? '', exitCode: Number(exitCode) };
}

// ---------------------------------------------------------------------------------------------
// Docker helpers
// ---------------------------------------------------------------------------------------------

async function imageExists(image: string): Promise<boolean> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', image], { reject: false, timeoutMs: 15_000 });
  return !r.failed;
}

async function hashFolder(dir: string): Promise<string> {
  const hash = createHash('sha256');
  await hashDir(hash, dir);
  return hash.digest('hex');
}

async function ensureImage(opts: ContainerTargetOptions): Promise<string> {
  if (opts.build) {
    const tag = builtImageTag(opts.name, await hashFolder(opts.build));
    if (await imageExists(tag)) return tag;
    const r = await run(
      ['docker', 'build', '--force-rm', '--label', `${IMAGE_LABEL}=1`, '--label', `harness.target=${opts.name}`, '-t', tag, opts.build],
      // The classic builder builds FROM local images without looking at a registry.
      { reject: false, timeoutMs: 30 * 60_000, env: { ...process.env, DOCKER_BUILDKIT: '0' } as Record<string, string> },
    );
    if (r.failed) {
      const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-12).join('\n');
      throw new EnvironmentError('E_IMAGE_BUILD', `target ${opts.name}: docker build ${opts.build} failed:\n${tail}`, `fix the Dockerfile in ${opts.build} (see the whole log with: docker build ${opts.build})`);
    }
    return tag;
  }
  const image = opts.image!;
  if (await imageExists(image)) return image;
  if (!isHarnessImage(image)) {
    // Pulled only where a registry answers; here none does, so this fails fast with the reason.
    const pull = await run(['docker', 'pull', image], { reject: false, timeoutMs: 120_000 });
    if (!pull.failed && (await imageExists(image))) return image;
    const why = (pull.stderr || pull.stdout).trim().split('\n').pop() ?? '';
    throw new EnvironmentError('E_IMAGE_MISSING', `image ${image} (target ${opts.name}) is not on this machine and could not be pulled: ${why}`, missingImageFix(image));
  }
  throw new EnvironmentError('E_IMAGE_MISSING', `image ${image} (target ${opts.name}) is not on this machine`, missingImageFix(image));
}

async function inspect(name: string): Promise<{ pid: number; status: string; exitCode: number }> {
  const r = await run(['docker', 'inspect', '--format', '{{.State.Pid}} {{.State.Status}} {{.State.ExitCode}}', name], { timeoutMs: 15_000 });
  return parseInspect(r.stdout);
}

async function logTail(name: string, lines = 15): Promise<string> {
  const r = await run(['docker', 'logs', '--tail', String(lines), name], { reject: false, timeoutMs: 15_000 });
  return r.failed ? '' : `${r.stdout}${r.stderr}`.trim();
}

/**
 * Whether the server listens on [::] (dual stack) on `port`. If not, the state watcher skips its
 * IPv6 dump: a Docker-made namespace shares the host's global TCP hash, so every dump walks all
 * of it (DESIGN §2 / targets/netns.ts CHILD_EHASH_ENTRIES), and one walk fewer per poll matters.
 */
async function listensOnIpv6(pid: number, port: number): Promise<boolean> {
  return (await readListeners(pid)).some((l) => l.family === 6 && l.port === port);
}

/** The processes in the pid namespace of `pid` (a container's own: its init and everything it started). */
async function pidsInPidNamespace(pid: number): Promise<number[]> {
  const ns = await readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
  if (!ns) return [];
  const out: number[] = [];
  for (const p of (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n))) {
    if ((await readlink(`/proc/${p}/ns/pid`).catch(() => undefined)) === ns) out.push(Number(p));
  }
  return out;
}

async function waitGone(pid: number, startTicks: string | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const t = await processStartTicks(pid);
    if (t === undefined || t !== startTicks) return true;
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(st)) return true; // exited (its files, hence its sockets, are closed)
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The target
// ---------------------------------------------------------------------------------------------

export function containerTarget(opts: ContainerTargetOptions): TargetSpec {
  if (!opts.image === !opts.build) throw new Error(`container target ${opts.name}: give exactly one of image or build`);
  const ready: ReadySpec = opts.ready ?? { tcp: true };
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  // One build (or image check) per spec, however many scenarios use it.
  let imageP: Promise<string> | undefined;
  const resolveImage = () => {
    imageP ??= ensureImage(opts).catch((e: unknown) => {
      imageP = undefined;
      throw e;
    });
    return imageP;
  };

  return {
    name: opts.name,
    backend: 'container',
    describe: opts.describe ?? `${opts.image ?? `built from ${opts.build}`}, port ${opts.port}`,
    ...(opts.traits ? { traits: opts.traits } : {}),
    // Frozen with the cgroup freezer (docker pause), whatever runs in it.
    plays: { modes: opts.modes ?? [], freeze: true, kill: true },

    async check() {
      // Loading testcontainers costs ~250 ms of this thread: start it while prepare() waits on
      // the kernel (sysctl checks in throwaway namespaces) rather than inside the run's set-up.
      void import('testcontainers').catch(() => undefined);
      const d = await dockerAvailable();
      if (!d.ok) throw new EnvironmentError('E_DOCKER', `target ${opts.name} needs Docker: ${d.reason ?? 'unavailable'}`, d.fix);
      if (!(await imageExists(HOLDER_IMAGE))) {
        throw new EnvironmentError('E_IMAGE_MISSING', `image ${HOLDER_IMAGE} (the namespace holders of every container target) is not on this machine`, missingImageFix(HOLDER_IMAGE));
      }
      await resolveImage();
    },

    async start(ctx: TargetContext): Promise<StartedTarget> {
      // Loaded already when check() ran (prepare); otherwise overlapped with the holders' start.
      const tc = import('testcontainers');
      tc.catch(() => undefined);
      const log = ctx.log.child({ target: opts.name });
      const t0 = performance.now();
      const image = await resolveImage();
      const names = { pod: containerName(ctx.runId, 'pod'), target: containerName(ctx.runId, 'target'), client: containerName(ctx.runId, 'client') };
      const tImage = performance.now();

      // All three journaled (one after the other: the journal is one file) before any exists, next
      // to each other, so the revert removes them with one `docker rm`.
      for (const role of ['pod', 'client', 'target'] as const) {
        await ctx.journal.record(`docker container ${names[role]}`, { kind: 'docker', object: 'container', id: names[role] });
      }
      // The holders are plain `docker run -d --network none` (no readiness to wait for: the
      // namespace exists once Docker has started the container), in parallel: testcontainers'
      // start with a log wait took ~1 s for the pair here, the CLI ~0.75 s.
      const holder = (role: 'pod' | 'client') =>
        run(
          ['docker', 'run', '-d', '--name', names[role], ...Object.entries(runLabels(ctx.runId, role, opts.name)).flatMap(([k, v]) => ['--label', `${k}=${v}`]), '--network', 'none', HOLDER_IMAGE, ...HOLDER_COMMAND],
          { timeoutMs: 30_000 },
        );
      // The veth joining the holders' namespaces (named as a netns run's).
      const { client: vc, server: vt } = vethNames(ctx.runId);
      // Each side as soon as its holder is up: the target starts once the pod has its namespace
      // (and the server side its sysctls), while the client's holder may still be starting.
      const up = async (role: 'pod' | 'client', side: 'server' | 'client') => {
        try {
          await holder(role);
        } catch (e) {
          throw new EnvironmentError('E_DOCKER_START', `could not start a namespace holder (${HOLDER_IMAGE}): ${e instanceof Error ? e.message : String(e)}`, 'docker info; harness doctor');
        }
        const st = await inspect(names[role]);
        const ns: Netns = pidNetns(st.pid, `container:${names[role]}`);
        await assertNotHost(ns);
        // The holders own the namespaces: their sysctls go in before the target starts and listens.
        await ctx.configureNetns?.(side, ns);
        // The pod's end of the veth, with its address, before the target starts: both ends are born
        // here, in the pod's namespace (never in the host's); the client's end moves over below.
        if (role === 'pod') {
          await run(inNetns(ns, ['ip', '-batch', '-']), {
            input: `link add ${vt} type veth peer name ${vc}\n${linkUpBatch(vt, TARGET_ADDRESS)}`,
            timeoutMs: 15_000,
          });
        }
        return { ...st, ns };
      };
      const podUp = up('pod', 'server');
      const cliUp = up('client', 'client');
      // Never return (and revert) while the other holder is still being created.
      const settled = Promise.allSettled([podUp, cliUp]);
      const pod = await podUp.catch(async (e: unknown) => {
        await settled;
        throw e;
      });
      const server = pod.ns;
      const tHolders = performance.now();

      const { GenericContainer, Wait } = await tc;
      let output = '';
      const command = typeof opts.command === 'function' ? opts.command(ctx.server) : opts.command;
      let c = new GenericContainer(image)
        .withName(names.target)
        .withLabels(runLabels(ctx.runId, 'target', opts.name))
        .withNetworkMode(`container:${names.pod}`)
        .withEnvironment(opts.env ?? {})
        .withStartupTimeout(readyTimeoutMs)
        // testcontainers removes a container that fails its wait strategy: keep its last lines.
        .withLogConsumer((stream) => {
          stream.on('data', (chunk: Buffer | string) => {
            output = `${output}${String(chunk)}`.slice(-4000);
          });
        });
      if (command) c = c.withCommand(command);
      if ('log' in ready) c = c.withWaitStrategy(Wait.forLogMessage(new RegExp(ready.log)));
      const notReady = async (detail: string) => {
        const st = await inspect(names.target).catch(() => undefined);
        const tail = (await logTail(names.target).catch(() => '')) || output.trim().split('\n').slice(-15).join('\n');
        return new EnvironmentError(
          'E_TARGET_NOT_READY',
          `target ${opts.name} (${image}) did not become ready (waited up to ${readyTimeoutMs} ms for ${describeReady(ready)}): ${detail}` +
            `${st ? `; container ${st.status}${st.status === 'exited' ? ` with code ${st.exitCode}` : ''}` : ''}${tail ? `\n--- last log lines ---\n${tail}` : ''}`,
          `check targets.${opts.name}.ready and .command in the config (docker logs shows the output of a run); raise readyTimeoutMs if it is only slow`,
        );
      };
      try {
        await c.start();
      } catch (e) {
        await settled;
        throw await notReady(e instanceof Error ? e.message.split('\n')[0]! : String(e));
      }
      const cli = await cliUp.catch(async (e: unknown) => {
        await settled;
        throw e;
      });
      const client = cli.ns;
      // The client's end of the veth moves from the pod's namespace straight into the client's,
      // then gets its address. The pair goes with the namespaces: nothing to journal.
      await run(inNetns(server, ['ip', 'link', 'set', vc, 'netns', String(cli.pid)]), { timeoutMs: 15_000 });
      await run(inNetns(client, ['ip', '-batch', '-']), { input: linkUpBatch(vc, CLIENT_ADDRESS), timeoutMs: 15_000 });
      const tgt = await inspect(names.target);
      const targetTicks = await processStartTicks(tgt.pid);
      if (!('log' in ready)) {
        const remaining = Math.max(1000, readyTimeoutMs - (performance.now() - tHolders));
        const r = await waitNetworkReady(ready, client, pod.pid, TARGET_ADDRESS, opts.port, remaining, async () =>
          (await processStartTicks(tgt.pid)) === undefined ? 'the target process exited' : undefined,
        );
        if (!r.ok) throw await notReady(r.detail);
      }
      await assertListening(opts.name, pod.pid, TARGET_ADDRESS, opts.port);
      const tReady = performance.now();
      log.debug(
        { image, imageMs: tImage - t0, holdersMs: tHolders - tImage, targetMs: tReady - tHolders },
        'container target ready',
      );

      const handles: ContainerHandles = { runId: ctx.runId, ...names, image };
      const mode = opts.modes === 'all' ? ctx.server.mode : opts.modes?.length === 1 ? opts.modes[0] : undefined;
      let paused = false;
      const unpause = async () => {
        const r = await run(['docker', 'unpause', names.target], { reject: false, timeoutMs: 30_000 });
        if (r.failed && !/is not paused|not running|No such/i.test(r.stderr)) throw new EnvironmentError('E_FREEZE', `docker unpause ${names.target}: ${r.stderr.trim()}`, 'harness gc thaws what a run froze');
        paused = false;
      };
      return {
        name: opts.name,
        backend: 'container',
        ...(mode ? { mode } : {}),
        endpoints: { address: TARGET_ADDRESS, port: opts.port, clientAddress: CLIENT_ADDRESS },
        client,
        server,
        // The probe's client sockets are IPv4; the server's are too unless it listens on [::].
        ipv4Only: { client: true, server: !(await listensOnIpv6(pod.pid, opts.port)) },
        containers: handles,
        async freezeServer(): Promise<FreezeReport> {
          const t0 = performance.now();
          // The cgroup freezer stops every process of the container, however it forks; `docker
          // pause` returns once the cgroup is frozen. Journaled first: gc unpauses after a SIGKILL.
          await ctx.journal.record(`freeze target ${opts.name}: docker pause ${names.target}`, { kind: 'docker', object: 'container', id: names.target, op: 'unpause' });
          const r = await run(['docker', 'pause', names.target], { reject: false, timeoutMs: 30_000 });
          if (r.failed) {
            await unpause().catch(() => undefined);
            const st = await inspect(names.target).catch(() => undefined);
            throw new EnvironmentError('E_FREEZE', `cannot freeze target ${opts.name}: docker pause ${names.target}: ${r.stderr.trim()}${st ? ` (container ${st.status})` : ''}`, 'the target must be running to be frozen');
          }
          paused = true;
          return { describe: `docker pause ${names.target} (the cgroup freezer: every process of ${opts.name})`, durationMs: performance.now() - t0 };
        },
        async thawServer() {
          if (paused) await unpause();
        },
        async killServer(signal) {
          // The process itself, as `docker kill -s` would, but synchronously: the trigger returns
          // once it has exited, so its sockets are closed before the client's next step.
          if ((await processStartTicks(tgt.pid)) !== targetTicks) return;
          try {
            process.kill(tgt.pid, signal);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ESRCH') return;
            throw e;
          }
          // A frozen task (cgroup v1 freezer: state D) acts on the signal only once thawed, and
          // the others would run first (a worker reading what its socket holds): every process of
          // the container gets the signal while frozen, then the thaw delivers them all at once.
          if (paused) {
            for (const p of await pidsInPidNamespace(tgt.pid)) {
              try {
                process.kill(p, signal);
              } catch {
                /* gone already */
              }
            }
            await unpause();
          }
          if (['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(signal) && !(await waitGone(tgt.pid, targetTicks, 10_000))) {
            log.warn({ signal }, 'target still running 10 s after the signal');
          }
        },
      };
    },
  };
}

/** Real third-party servers and the probe, in containers (need Docker and `harness images build`). */
export function builtinContainerTargets(): Record<string, TargetSpec> {
  return {
    nginx: containerTarget({
      name: 'nginx',
      image: images.nginx.name,
      port: 80,
      ready: { log: images.nginx.readyLog.source },
      describe: "Debian's nginx in a container (port 80)",
      // nginx sets SO_REUSEADDR on every listening socket (ngx_open_listening_sockets), SO_REUSEPORT
      // only with `listen … reuseport`, which docker/nginx/nginx.conf does not use.
      traits: { builtinModes: [], http: true, listener: { reuseaddr: true, reuseport: false } },
    }),
    redis: containerTarget({ name: 'redis', image: images.redis.name, port: 6379, ready: { log: images.redis.readyLog.source }, describe: "Debian's redis-server in a container (port 6379)", traits: { builtinModes: [] } }),
    'probe-echo': containerTarget({ name: 'probe-echo', image: images.probe.name, port: 9000, modes: ['echo'], ready: { log: images.probe.readyLog.source }, describe: "the probe's echo server in a FROM-scratch container (port 9000)", traits: { builtinModes: ['echo'] } }),
    'probe-container': containerTarget({
      name: 'probe-container',
      image: images.probe.name,
      port: 9000,
      command: (server) => builtinServerArgv(server, 9000),
      modes: 'all',
      ready: { log: images.probe.readyLog.source },
      traits: { builtinModes: 'any' },
      describe: "the probe's server in the mode the fault wants, in a container (port 9000)",
    }),
  };
}
