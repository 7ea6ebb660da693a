/**
 * What a fault predicts (its `expect()`): the vocabulary `checks.ts` interprets. Every field is
 * derived from the sysctls in force through the model in `harness/model/`.
 */
import type { Side } from '../core/sysctl.js';

export type CounterExpectation = number | { min?: number; max?: number };

export interface StepExpectation {
  ok?: boolean;
  errno?: string | null;
  /** durationMs must fall in [lo, hi] — or, with `fromStep`, the time from that step's start to this one's end. */
  windowMs?: [number, number];
  /**
   * Measure `windowMs` from the start of the step with this label (e.g. a request's first write)
   * to the end of this one (its reply): a span several steps make together.
   */
  fromStep?: string;
  timedOut?: boolean;
  /** Bytes the step moved: exactly, or a range (a write that filled the buffers). */
  bytes?: CounterExpectation;
  eof?: boolean;
  /** TCP_INFO state right after the step. */
  tcpState?: string;
  /** TCP_INFO total retransmissions right after the step. */
  totalRetrans?: number;
  /** TCP_INFO rto (µs) right after the step: the RTO a later timer chain starts from (a value, or a range). */
  rtoUs?: number | [number, number];
  /** TCP_INFO rtt (µs, the smoothed RTT) right after the step must fall in [lo, hi]. */
  rttUs?: [number, number];
  /** Other numeric TCP_INFO fields right after the step (bytesAcked, notsentBytes, sndWnd, probes…). */
  tcp?: Record<string, CounterExpectation>;
}

export interface StateLeftExpectation {
  side: Side;
  state: string;
  /** The state it must leave to ('GONE' when the socket disappears). */
  to?: string;
  fromStep?: string;
  windowMs: [number, number];
}

export interface Expectation {
  /** Keyed by step label. */
  steps: Record<string, StepExpectation>;
  /** States that must be seen on each side. */
  states?: Partial<Record<Side, string[]>>;
  /** States that must never be seen on each side. */
  statesAbsent?: Partial<Record<Side, string[]>>;
  /** Kernel counter deltas, per side. */
  counters?: Partial<Record<Side, Record<string, CounterExpectation>>>;
  /** Packet counts of the fault's rules, by rule name: the proof it fired. */
  rulesHit?: Record<string, CounterExpectation>;
  /**
   * When the first socket seen in `state` on `side` left it (to `to`, e.g. GONE or ESTABLISHED),
   * in ms from the start of step `fromStep` (default: t = 0, the first client step).
   */
  stateLeft?: StateLeftExpectation[];
  /**
   * The LISTEN socket of a side, from the watcher: the most connections its accept queue held
   * (rq), its backlog (wq); `local` picks one listener when a server has several (nginx listens
   * on 0.0.0.0:80 and [::]:80).
   */
  listen?: Partial<Record<Side, { rqMax?: CounterExpectation; wq?: number; local?: string }>>;
  /** Every socket of a side that enters a state: how many, how long it stays, how it leaves (see StateSpanExpectation). */
  spans?: StateSpanExpectation[];
  /**
   * Observed numbers that must agree with each other, for what the model cannot count in advance
   * (random losses): the sum of `left` equals the sum of `right` (e.g. every packet the loss rule
   * dropped was retransmitted once: TcpRetransSegs = the rule's hits).
   */
  same?: { name: string; left: CountRef[]; right: CountRef[] }[];
  /** Why these numbers: a line for humans, e.g. "tcp_syn_retries=2 + 4 linear timeouts". */
  because?: string[];
  /**
   * Questions the scenario asks of the server (a server of the user's own: "does it close when
   * the client closes?"), answered with times in Result.answers, each checked against the
   * documented expectation for the target.
   */
  asks?: ServerQuestion[];
  /**
   * Syscalls the built-in server must have made (Result.serverSteps): checked only where the
   * target reports them (the probe's server), e.g. a read that failed with ECONNRESET.
   */
  serverCalls?: ServerCallExpectation[];
}

/**
 * A question answered from the watcher: after step `fromStep` started, did the connection's
 * socket on `side` leave the `holding` states (e.g. ESTABLISHED, CLOSE_WAIT: the server closed
 * its side), and when — or did it hold one of them until the end?
 */
export interface ServerQuestion {
  question: string;
  side: Side;
  holding: string[];
  fromStep: string;
  /** What step `fromStep` is, in words ("the client's close"). */
  fromWhat?: string;
  /** The documented answer for this target. */
  expect: 'leaves' | 'holds';
  /** How each answer reads: "closed its side (no CLOSE_WAIT leak)", "held it until the end (a CLOSE_WAIT leak)". */
  leaves: string;
  holds: string;
}

/** A syscall of the built-in server: `op` with this outcome must be among its steps (or, `absent`, never). */
export interface ServerCallExpectation {
  op: string;
  ok?: boolean;
  errno?: string | null;
  eof?: boolean;
  absent?: boolean;
}

/** A kernel counter delta of one side, or a rule's hits. */
export type CountRef = { side: Side; counter: string } | { rule: string };

/**
 * The sockets (keyed local+remote) of `side` that enter `state`. Each one's span runs from its
 * first sample in the state to its next sample in another state (GONE when it disappeared); a
 * socket still in the state when observation ended is "held". Every socket must satisfy it.
 */
export interface StateSpanExpectation {
  side: Side;
  state: string;
  /** How many distinct sockets enter the state (default: at least one). */
  sockets?: CounterExpectation;
  /** What each does next: a state, 'GONE', or 'held' (never left while observed). */
  then?: string;
  /** How long each stays, ms (from its first sample in the state to its first sample out of it). */
  lastsMs?: [number, number];
  /** The highest idiag_retrans (icsk_retransmits) each shows while in the state. */
  retrans?: CounterExpectation;
}


/**
 * What the kernel does to a connection of *any* client under a fault (the user's own client, not
 * the probe's script): the state the fault holds it in, and when and how the kernel would end it.
 * The harness explains each connection it sees against this: ended earlier (the client's own
 * timeout), within the window (the kernel's full schedule), later or differently (a failed check).
 */
export interface ConnectionPrediction {
  /** The state a connection sits in while the fault holds it (e.g. SYN_SENT under syn-drop). */
  state: string;
  /**
   * When the kernel ends it, ms from `from`: entering `state`, or the fault's strike. Absent: the
   * kernel never ends it by itself (an idle connection to a dead host).
   */
  endsMs?: [number, number];
  from: 'enter' | 'strike';
  /** What the application sees when the kernel ends it. */
  errno?: string;
  /** What the socket turns into when the kernel ends it (GONE when it disappears). */
  then?: string;
  /** The most retransmissions the kernel makes in `state` before it gives up. */
  retrans?: number;
  /**
   * The kernel ends it faster than the state watcher polls (a refused connect): connections may
   * go unseen, and the fault's rule hits count the attempts.
   */
  fleeting?: boolean;
  /** One line: why these numbers (the sysctls and timers). */
  because: string;
  /**
   * A mid-connection fault: what the kernel does to a connection the client opens *after* the
   * strike (to a crashed host: SYN_SENT for the SYN schedule, then ETIMEDOUT). Absent: such a
   * connection is explained against the prediction above.
   */
  afterStrike?: Omit<ConnectionPrediction, 'from' | 'afterStrike'>;
}
