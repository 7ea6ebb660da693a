/** The Result contract (DESIGN §5): what `--json` prints, suites assert on and reports read. */
import type { ClientConnection } from './client.js';
import type { ConnectionPrediction, Expectation } from './expectation.js';
import type { TcpInfo } from '../core/probe.js';
import type { Side, SidedSysctls } from '../core/sysctl.js';
import type { CalibrationReport } from '../model/calibration.js';

/** Kernel counters of a namespace (nstat names), or their deltas over a run. */
export type Counters = Record<string, number>;

export interface StepResult {
  /** Set on steps a fault ran in the server's namespace (a restarting server); absent: the client's. */
  side?: 'server';
  label?: string;
  op: string;
  sock?: number;
  ok: boolean;
  errno: string | null;
  startMs: number;
  endMs: number;
  durationMs: number;
  timedOut?: boolean;
  bytes?: number;
  eof?: boolean;
  events?: string[];
  tcp?: TcpInfo | null;
  /** The step's syscall blocked (a blocking client's connect/read/write/close), instead of non-blocking + epoll. */
  blocking?: boolean;
}

export interface StateSample {
  tMs: number;
  state: string;
  local: string;
  remote: string;
  rq?: number;
  wq?: number;
  retrans?: number;
}

/** What the user's client did under the fault: how it ended, and each connection it made, explained. */
export interface ClientResult {
  argv: string[];
  image?: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The harness killed it (it outlived --client-timeout or the kernel's predicted end plus a margin). */
  timedOut: boolean;
  stdoutTail: string;
  stderrTail: string;
  /** When the fault struck (mid-connection faults), ms from the client's start, and why then. */
  struck?: { atMs: number; firedMs: number; why: string };
  /** What the kernel does to a connection under this fault. */
  prediction: ConnectionPrediction;
  /** Each connection to the target, its explanation, and the window the kernel ends it in (see Explained.windowMs). */
  connections: (ClientConnection & { explanation: string; endedBy: string; windowMs?: [number, number | null] })[];
  /** One line: what the client did, against the kernel. */
  summary: string;
}

export interface Answer {
  question: string;
  /** "closed its side 0.4 ms after the client's close (LAST_ACK)", "held CLOSE_WAIT until the end (…)". */
  answer: string;
  /** 'leaves' or 'holds'. */
  outcome: 'leaves' | 'holds' | 'unseen';
  /** When it left, ms from the step the question counts from (as the watcher saw it). */
  afterMs?: number;
}

export interface Check {
  name: string;
  expected: unknown;
  actual: unknown;
  pass: boolean;
  /** A timing check that failed only because its event came after the window's end: by how much. */
  lateByMs?: number;
}

/**
 * pass: every check held. fail: the kernel did something the model says it does not.
 * error: the run itself broke (see `error`). inconclusive: a check failed while the machine was
 * too loaded to tell the kernel from a late wake-up (`calibration.loaded`): re-run on a quieter
 * machine; CLI exit code 4.
 */
export type Verdict = 'pass' | 'fail' | 'error' | 'inconclusive';

export interface Result {
  version: 1;
  runId: string;
  /** The plan entry's name (runs from `--plan`). */
  name?: string;
  scenario: string;
  params: Record<string, unknown>;
  target: { name: string; backend: 'netns' | 'container'; address: string; port: number };
  sysctls: SidedSysctls;
  /** `blocking`: the probe's connect/read/write/close blocked (`--blocking`); absent: non-blocking + epoll. */
  api?: 'blocking';
  /** How late the machine woke the probe, and how much that widened the windows (see harness/model/calibration.ts). */
  calibration?: CalibrationReport;
  steps: StepResult[];
  /**
   * The built-in server's own syscalls (the probe's `server`: accept, read, write, close), same
   * shape as `steps`, on the same clock; absent for a server that does not report them.
   */
  serverSteps?: StepResult[];
  /** What the server did, where the scenario asks (close-wait on your server: did it close, and when). */
  answers?: Answer[];
  states: Record<Side, StateSample[]>;
  counters: Record<Side, Counters>;
  fault: {
    rulesHit: Record<string, number>;
    applied: string[];
    /** When a trigger changed the fault mid-run (rules in force, removed), ms on the steps' axis. */
    marks?: { describe: string; tMs: number }[];
    /** What the fault's own processes (the delayer) reported when stopped. */
    processes?: { describe: string; report: Record<string, unknown> | undefined }[];
  };
  expected: Expectation;
  checks: Check[];
  verdict: Verdict;
  /** Set when the run itself broke (verdict "error"), with the stage of the pipeline it broke in. */
  error?: { code: string; message: string; stage?: string };
  /** The first capture's file (kept for readers of version 1); `captures` has every side's. */
  pcap?: string;
  /** `--pcap`: one file per namespace, with the packets of the scenario it holds. */
  captures?: { side: string; file: string; packets: number }[];
  /** The user's own client (a client command instead of the probe's script), explained. */
  client?: ClientResult;
  /**
   * Wall time of the run's parts, ms: setup (target … fault), the scenario (the client), teardown
   * (collect … revert); and each stage's own time, the revert included (where a run's overhead goes).
   * In a batch, setup counts from the run's admission; queuedMs is how long it waited for a set-up
   * slot before.
   */
  timing: { setupMs: number; scenarioMs: number; teardownMs: number; stagesMs?: Record<string, number>; queuedMs?: number };
  revert: { reverted: number; failed: { describe: string; error: string }[] };
}
