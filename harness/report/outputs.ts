/**
 * What `harness run` writes besides its results, in one place so the command only calls it:
 * `--report DIR` (a page per run, an index for several; it captures packets, into DIR/pcap unless
 * `--pcap` says where), `--junit FILE`, and the live progress lines on a terminal. Every path is
 * checked by `prepareOutputs`, before anything runs.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EnvironmentError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RunEnv } from '../engine/runner.js';
import type { Result } from '../verdict/result.js';
import { writeIndex, writeRunPage } from './html.js';
import { writeJunit } from './junit.js';
import { checkJunitFile, checkReportDir } from './paths.js';
import { startProgress, type Progress } from './progress.js';

export interface OutputOptions {
  report?: string;
  junit?: string;
  pcap?: string;
  json?: boolean;
}

export interface Outputs {
  /** Where the captures go: `--pcap`, or the report's own folder. */
  readonly pcapDir: string | undefined;
  /** Starts the progress lines (a terminal only) and hooks them and their logger into the runs' env. */
  start<E extends RunEnv & { log: Logger }>(env: E, runs: readonly { runId: string; scenario: string }[]): E;
  /** Prints a result (stdout) without tearing the progress lines. */
  print(runId: string, text: string): void;
  /** The run's page. A page that cannot be written is reported by `finish`, after every run has reverted. */
  afterRun(r: Result): Promise<void>;
  /** The index, the JUnit file; stops the progress lines. Throws if anything could not be written. */
  finish(results: readonly Result[]): Promise<void>;
  /** Stops the progress lines (also when the command fails). */
  stop(): void;
}

export async function prepareOutputs(opts: OutputOptions, write: (s: string) => void, log: Logger): Promise<Outputs> {
  const reportDir = opts.report === undefined ? undefined : await checkReportDir(opts.report);
  const junitFile = opts.junit === undefined ? undefined : await checkJunitFile(opts.junit, reportDir);
  const pcapDir = opts.pcap ?? (reportDir ? join(reportDir, 'pcap') : undefined);
  let progress: Progress | undefined;
  const failures: string[] = [];
  const stop = () => {
    progress?.stop();
    progress = undefined;
  };
  return {
    pcapDir,
    start(env, runs) {
      if (opts.json) return env;
      progress = startProgress(runs);
      if (!progress) return env;
      const p = progress;
      return {
        ...env,
        log: p.logger(env.log),
        onStage: (stage, runId) => {
          env.onStage?.(stage, runId);
          p.onStage(stage, runId);
        },
        onExpected: (runId, expected) => {
          env.onExpected?.(runId, expected);
          p.onExpected(runId, expected);
        },
      };
    },
    print(runId, text) {
      if (!progress) return write(text);
      progress.finished(runId);
      progress.above(() => write(text));
    },
    async afterRun(r) {
      if (!reportDir) return;
      try {
        const file = await writeRunPage(reportDir, r);
        log.info({ runId: r.runId, file }, 'report page written');
      } catch (e) {
        failures.push(`${r.scenario} (run ${r.runId}): ${(e as Error).message}`);
      }
    },
    async finish(results) {
      stop();
      try {
        if (reportDir && results.length > 1) log.info({ file: await writeIndex(reportDir, results) }, 'report index written');
        if (junitFile) {
          await mkdir(dirname(junitFile), { recursive: true });
          await writeJunit(junitFile, results);
          log.info({ file: junitFile, testcases: results.length }, 'JUnit report written');
        }
      } catch (e) {
        failures.push((e as Error).message);
      }
      if (failures.length) throw new EnvironmentError('E_REPORT', `could not write the report: ${failures.join('; ')}`, 'check the disk and the permissions of the --report/--junit paths');
    },
    stop,
  };
}
