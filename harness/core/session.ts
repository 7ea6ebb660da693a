/**
 * A session holds the journals of the runs in flight, so a signal handler can revert them all.
 * The CLI makes one per process; library callers may make their own or let the runner make one.
 */
import type { Journal, RevertReport } from './journal.js';

export class Session {
  private readonly journals = new Set<Journal>();
  private reverting = new Map<Journal, Promise<RevertReport>>();
  private readonly runs = new Set<Promise<unknown>>();
  private readonly controller = new AbortController();

  /** Aborted by `interrupt()`: runs stop at their next stage and revert what they made. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ctrl-C / SIGTERM: every run in flight stops setting up, then reverts everything it journaled. */
  interrupt(reason = 'interrupted'): void {
    this.controller.abort(reason);
  }

  /** Follows a run, so that `idle()` can wait until it has reverted. */
  track<T>(run: Promise<T>): Promise<T> {
    this.runs.add(run);
    void run.finally(() => this.runs.delete(run)).catch(() => undefined);
    return run;
  }

  /** Resolves when every tracked run has ended (reverted), or after `maxMs`. */
  async idle(maxMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.runs]), new Promise((r) => (timer = setTimeout(r, maxMs)))]);
    clearTimeout(timer);
  }

  add(j: Journal): void {
    this.journals.add(j);
  }

  /** Reverts `j` once, however many callers ask at the same time (the run's finally and a signal). */
  revert(j: Journal): Promise<RevertReport> {
    let p = this.reverting.get(j);
    if (!p) {
      p = j.revertAll().finally(() => {
        this.journals.delete(j);
        this.reverting.delete(j);
      });
      this.reverting.set(j, p);
    }
    return p;
  }

  async revertAll(): Promise<RevertReport[]> {
    return Promise.all([...this.journals].map((j) => this.revert(j)));
  }

  get active(): number {
    return this.journals.size;
  }
}
