/**
 * A session holds the journals of the runs in flight, so a signal handler can revert them all.
 * The CLI makes one per process; library callers may make their own or let the runner make one.
 */
import type { Journal, RevertReport } from './journal.js';

export class Session {
  private readonly journals = new Set<Journal>();
  private reverting = new Map<Journal, Promise<RevertReport>>();

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
