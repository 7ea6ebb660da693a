/**
 * Live progress on a terminal: one line per running scenario, its stage, and once the client runs,
 * the time elapsed against the end the model predicts (a `--kernel-defaults` syn-drop waits
 * 131 s: the line says so, and counts). Drawn on stderr with log-update, and only when stderr is a
 * terminal and the output is not `--json`: piped or machine-read output never sees it.
 *
 * Anything else written to the terminal meanwhile (a result on stdout, a log line) goes through
 * `above()`, which lifts the live lines out of the way and redraws them below it; the run's logger
 * is swapped for one that does the same (`logger()`), so pino lines and live lines never tear.
 */
import { createLogUpdate } from 'log-update';
import { pino, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { StageName } from '../engine/runner.js';
import type { Expectation } from '../verdict/expectation.js';
import { fmtMs } from './markup.js';

/**
 * When the client's script should be over, from the model: its steps run one after another, so
 * their windows add up; a state predicted to end later (from a step's start or t = 0) extends it.
 * `[lo, hi]` like the windows: nominal timers, and those plus timer-wheel granularity. A sum of
 * windows: an estimate for a progress line, not a check.
 */
export function predictedEndMs(e: Expectation): [number, number] | undefined {
  const windows = Object.values(e.steps).flatMap((s) => (s.windowMs ? [s.windowMs] : []));
  const states = [...(e.stateLeft ?? []).map((s) => s.windowMs), ...(e.spans ?? []).flatMap((s) => (s.lastsMs ? [s.lastsMs] : []))];
  if (!windows.length && !states.length) return undefined;
  const sum = (i: 0 | 1) => windows.reduce((a, w) => a + w[i], 0);
  const latest = (i: 0 | 1) => Math.max(0, ...states.map((w) => w[i]));
  return [Math.max(sum(0), latest(0)), Math.max(sum(1), latest(1))];
}

export interface RunProgress {
  scenario: string;
  stage: StageName;
  /** performance.now() when the client's script started. */
  clientStartMs?: number;
  predictedEndMs?: [number, number];
}

const STAGE_TEXT: Record<RunProgress['stage'], string> = {
  target: 'starting the target',
  sysctls: 'setting sysctls',
  expect: 'deriving the expectation',
  observe: 'starting observers',
  fault: 'applying the fault',
  calibrate: 'measuring wake-up lateness',
  client: 'client running',
  collect: 'collecting',
  // The revert follows the last stage without a stage of its own.
  check: 'checking, reverting',
  hook: 'running the hook, reverting',
  judge: 'measuring the load again',
};

const BAR_WIDTH = 20;

/** One live line. Pure (the clock is passed in), so its text is tested without a terminal. */
export function progressLine(p: RunProgress, nowMs: number, nameWidth = 18): string {
  const name = p.scenario.padEnd(nameWidth);
  if (p.stage !== 'client' || p.clientStartMs === undefined) return `  ${name} ${STAGE_TEXT[p.stage]}…`;
  const elapsed = nowMs - p.clientStartMs;
  if (p.predictedEndMs === undefined) return `  ${name} client running  ${fmtSeconds(elapsed)}`;
  const [lo, hi] = p.predictedEndMs;
  // The bar fills at the nominal end; the window's far edge is when the run is late.
  const frac = lo > 0 ? Math.min(1, elapsed / lo) : 1;
  const full = Math.round(frac * BAR_WIDTH);
  const bar = `${'█'.repeat(full)}${'░'.repeat(BAR_WIDTH - full)}`;
  const over = elapsed > hi ? ' (past the prediction: waiting for the kernel)' : '';
  const window = hi - lo >= 100 ? `${fmtSeconds(lo).replace(/ s$/, '')}–${fmtSeconds(hi)}` : fmtSeconds(hi);
  return `  ${name} client running  ${fmtSeconds(elapsed)} of ${window} predicted  ${bar}${over}`;
}

function fmtSeconds(ms: number): string {
  return ms < 1000 ? fmtMs(ms) : `${(ms / 1000).toFixed(1)} s`;
}

export interface Progress {
  onStage(stage: StageName, runId: string): void;
  onExpected(runId: string, expected: Expectation): void;
  /** A run's result is out: its line goes at the next redraw (the result is written with `above`). */
  finished(runId: string): void;
  /** Writes something else to the terminal without tearing the live lines. */
  above(write: () => void): void;
  /** A logger like `base` (same level) whose lines go through `above`. */
  logger(base: Logger): Logger;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  intervalMs?: number;
  now?: () => number;
}

/** Undefined when the stream is not a terminal: then there is no progress at all. */
export function startProgress(runs: readonly { runId: string; scenario: string }[], opts: ProgressOptions = {}): Progress | undefined {
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY) return undefined;
  const now = opts.now ?? (() => performance.now());
  const state = new Map<string, RunProgress>(runs.map((r) => [r.runId, { scenario: r.scenario, stage: 'target' }]));
  const nameWidth = Math.max(...runs.map((r) => r.scenario.length), 8);
  // The cursor stays visible: hiding it would install exit hooks next to the CLI's own signal handling.
  const live = createLogUpdate(stream, { showCursor: true });
  let stopped = false;
  const draw = () => {
    if (stopped) return;
    const lines = [...state.values()].map((p) => progressLine(p, now(), nameWidth));
    if (lines.length) live(lines.join('\n'));
    else live.clear();
  };
  const timer = setInterval(draw, opts.intervalMs ?? 250);
  timer.unref();
  const progress: Progress = {
    onStage(stage, runId) {
      const p = state.get(runId);
      if (!p) return;
      p.stage = stage;
      if (stage === 'client') p.clientStartMs = now();
      draw();
    },
    onExpected(runId, expected) {
      const p = state.get(runId);
      const end = predictedEndMs(expected);
      if (p && end !== undefined) p.predictedEndMs = end;
    },
    finished(runId) {
      state.delete(runId);
    },
    above(write) {
      if (stopped) return write();
      live.clear();
      write();
      draw();
    },
    logger(base) {
      const pretty = pinoPretty.prettyFactory({ colorize: true, ignore: 'pid,hostname' });
      // pino calls write() synchronously with each JSON line: the line is out before the next redraw.
      return pino({ level: base.level }, { write: (line: string) => progress.above(() => stream.write(pretty(line))) });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      live.clear();
    },
  };
  draw();
  return progress;
}
