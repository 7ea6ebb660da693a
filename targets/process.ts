/**
 * The `process` target: any command (a server binary of your own, `python3 -m http.server`…)
 * started in the target namespace of a fresh netns pair (targets/netns.ts), so every fault and
 * observer works on it as on the built-in server. The command runs in the config file's folder
 * (`env -C`), with the config's environment added; readiness is a log line on stdout or stderr,
 * a TCP connect or an HTTP answer, checked from the client namespace.
 */
import { EnvironmentError } from '../harness/core/errors.js';
import { inNetns, spawnLong, withTimeout } from '../harness/core/exec.js';
import { processStartTicks } from '../harness/core/journal.js';
import { groupFreezer } from './freeze.js';
import { CLIENT_ADDRESS, createNetnsPair, TARGET_ADDRESS } from './netns.js';
import { assertListening, describeReady, waitNetworkReady, type ReadySpec } from './ready.js';
import type { StartedTarget, TargetContext, TargetSpec } from './target.js';
import { DEFAULT_READY_TIMEOUT_MS } from './container.js';

export interface ProcessTargetOptions {
  name: string;
  describe?: string;
  /** argv; argv[0] is absolute, or a name found on PATH. */
  argv: string[];
  /** Working directory of the command (the config file's folder). */
  cwd: string;
  port: number;
  env?: Record<string, string>;
  /** Default: `{tcp: true}`. */
  ready?: ReadySpec;
  readyTimeoutMs?: number;
}

/** The argv that starts the command in its folder with its environment (run inside the namespace). */
export function processArgv(opts: Pick<ProcessTargetOptions, 'argv' | 'cwd' | 'env'>): string[] {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  // `env` takes NAME=VALUE operands before the command; a command containing "=" is refused by the config.
  return ['env', '-C', opts.cwd, ...env, ...opts.argv];
}

export function processTarget(opts: ProcessTargetOptions): TargetSpec {
  const ready: ReadySpec = opts.ready ?? { tcp: true };
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return {
    name: opts.name,
    backend: 'netns',
    describe: opts.describe ?? `${opts.argv.join(' ')} (port ${opts.port})`,
    // A server of the user's own: no built-in modes; its process group (it and the workers it forks) can be frozen.
    plays: { modes: [], freeze: true, kill: true },
    async start(ctx: TargetContext): Promise<StartedTarget> {
      const pair = await createNetnsPair(ctx); // applies the sysctls (configureNetns) before the command starts
      let output = '';
      let exited: string | undefined;
      let onLog: (() => void) | undefined;
      const logSeen = new Promise<void>((r) => (onLog = r));
      const re = 'log' in ready ? new RegExp(ready.log) : undefined;
      const line = (l: string) => {
        output = `${output}${l}\n`.slice(-4000);
        if (re?.test(l)) onLog?.();
      };
      const proc = spawnLong(inNetns(pair.server, processArgv(opts)), { stdout: line, stderr: line });
      const pid = proc.pid;
      if (pid === undefined) throw new EnvironmentError('E_SERVER_START', `could not start ${opts.argv[0]}`);
      const startTicks = await processStartTicks(pid);
      await ctx.journal.record(`target ${opts.name} pid ${pid}`, { kind: 'kill', pid, startTicks: startTicks ?? '' });
      const ended = proc.then((r) => {
        exited = `exited (${r.exitCode ?? r.signal}) before it was ready`;
      });
      const notReady = (detail: string) =>
        new EnvironmentError(
          'E_TARGET_NOT_READY',
          `target ${opts.name} (${opts.argv.join(' ')}) did not become ready (waited up to ${readyTimeoutMs} ms for ${describeReady(ready)}): ${detail}` +
            (output.trim() ? `\n--- last output ---\n${output.trim().split('\n').slice(-15).join('\n')}` : ''),
          `check targets.${opts.name}.process, .ready and .port in the config file`,
        );
      if (re) {
        try {
          await withTimeout(Promise.race([logSeen, ended.then(() => Promise.reject(new Error(exited)))]), readyTimeoutMs, 'timed out');
        } catch (e) {
          throw notReady(e instanceof Error ? e.message : String(e));
        }
      } else {
        const r = await waitNetworkReady(ready, pair.client, pid, TARGET_ADDRESS, opts.port, readyTimeoutMs, async () => exited);
        if (!r.ok) throw notReady(r.detail);
      }
      await assertListening(opts.name, pid, TARGET_ADDRESS, opts.port);
      return {
        name: opts.name,
        backend: 'netns',
        endpoints: { address: TARGET_ADDRESS, port: opts.port, clientAddress: CLIENT_ADDRESS },
        ...pair,
        // Any server: it may listen on [::]. The probe's client sockets are IPv4.
        ipv4Only: { client: true, server: false },
        ...groupFreezer(ctx.journal, opts.name, pid, startTicks, opts.port),
        async killServer(signal) {
          if (exited) return;
          // A crash takes the whole application: the command and the workers it forked (its
          // process group), stopped or not — a frozen worker must not outlive it holding sockets.
          if (signal === 'SIGKILL' && startTicks !== undefined && (await processStartTicks(pid)) === startTicks) {
            try {
              process.kill(-pid, 'SIGKILL');
            } catch {
              /* gone already */
            }
          } else proc.kill(signal);
          if (['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(signal)) await withTimeout(ended, 10_000, `target ${opts.name} still running 10 s after ${signal}`);
        },
      };
    },
  };
}
