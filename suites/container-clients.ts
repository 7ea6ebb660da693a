/**
 * Real clients next to the probe, for the container suites: curl (harness/nginx:local) and
 * redis-cli (harness/redis:local) run in a tool container that joins the client holder's network
 * namespace (`--network container:<client>`), the same namespace the probe used, while the fault
 * is still in force (RunEnv.duringFault). The binary is started with `nsenter -t <tool> -m -n`,
 * i.e. with the tool container's filesystem and the shared network namespace, so its wall time is
 * measured without `docker exec`'s ~100 ms of setup; that setup cost is measured separately
 * (`overheadMs`: the same binary's `--version` in the same place) and reported, not guessed.
 */
import { dockerAvailable } from '../docker/engine.js';
import { images } from '../docker/images.js';
import { run } from '../harness/core/exec.js';
import { counterDelta, readCounters, type Counters } from '../harness/engine/observers/counters.js';
import { readRuleHits } from '../harness/engine/observers/rules.js';
import type { StartedTarget } from '../targets/target.js';

const avail = await dockerAvailable();
const missing: string[] = [];
if (avail.ok) {
  for (const img of [images.probe.name, images.nginx.name, images.redis.name]) {
    const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', img], { reject: false });
    if (r.failed) missing.push(img);
  }
}
/** Docker answers and the harness images exist. */
export const dockerUp = avail.ok && missing.length === 0;
export const dockerSkipReason = !avail.ok
  ? `Docker is not available (${avail.reason}): ${avail.fix}`
  : missing.length
    ? `images missing: ${missing.join(', ')} (harness images build)`
    : '';
if (!dockerUp && process.getuid?.() === 0) console.warn(`container suites skipped: ${dockerSkipReason}`);

export interface RealClientResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Wall time of the client process, from the host. */
  durationMs: number;
  /** Wall time of `<binary> --version` in the same place: process start-up and exit. */
  overheadMs: number;
  /** Kernel counters of the client namespace: delta over the client's run. */
  counters: Counters;
  /** Packets the fault's rules matched during the client's run. */
  rulesHit: Record<string, number>;
}

function pidOf(path: string): number {
  const m = /^\/proc\/(\d+)\/ns\/net$/.exec(path);
  if (!m) throw new Error(`not a container namespace: ${path}`);
  return Number(m[1]);
}

/** Runs `argv` (a binary inside `image`) in the client namespace of a started container target. */
export async function runRealClient(runId: string, target: StartedTarget, image: string, argv: string[], timeoutMs: number): Promise<RealClientResult> {
  const h = target.containers;
  if (!h) throw new Error(`target ${target.name} is not a container target`);
  const tool = `harness-${runId}-tool`;
  // Labelled with the run: `harness gc` removes it if the test process dies before the finally.
  await run(['docker', 'run', '-d', '--name', tool, '--label', `harness.run=${runId}`, '--label', 'harness.role=tool', '--network', `container:${h.client}`, '--entrypoint', '/bin/sleep', image, 'infinity']);
  try {
    const pid = Number((await run(['docker', 'inspect', '--format', '{{.State.Pid}}', tool])).stdout.trim());
    const inTool = (a: string[]) => ['nsenter', '-t', String(pid), '-m', '-n', '--', ...a];
    let overheadMs = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await run(inTool([argv[0]!, '--version']));
      overheadMs = Math.min(overheadMs, performance.now() - t);
    }
    const clientPid = pidOf(target.client.path);
    const before = await readCounters(clientPid);
    const hitsBefore = await readRuleHits(target.server, runId);
    const t0 = performance.now();
    const r = await run(inTool(argv), { reject: false, timeoutMs });
    const durationMs = performance.now() - t0;
    const after = await readCounters(clientPid);
    const hitsAfter = await readRuleHits(target.server, runId);
    const rulesHit = Object.fromEntries(Object.entries(hitsAfter).map(([k, v]) => [k, v - (hitsBefore[k] ?? 0)]));
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs, overheadMs, counters: counterDelta(before, after), rulesHit };
  } finally {
    await run(['docker', 'rm', '-f', tool], { reject: false });
  }
}

/**
 * curl's argv for a GET of http://address:port/ that reports its own timing (-w) and, with -v,
 * the connect error's strerror ("connect to … failed: Connection timed out"): without -v curl
 * 7.88 only says "Couldn't connect to server".
 */
export function curlArgv(target: StartedTarget, connectTimeoutS: number): string[] {
  const { address, port } = target.endpoints;
  return ['/usr/bin/curl', '-v', '-sS', '-o', '/dev/null', '--connect-timeout', String(connectTimeoutS), '-w', '%{time_total}\n', `http://${address}:${port}/`];
}

export function redisCliArgv(target: StartedTarget): string[] {
  const { address, port } = target.endpoints;
  return ['/usr/bin/redis-cli', '-h', address, '-p', String(port), 'PING'];
}
