/**
 * Freezing a target that runs as a process group of the harness's (the built-in server, a
 * `process` target): SIGSTOP to the group, journaled as a thaw first. Container targets use the
 * cgroup freezer instead (`docker pause`, targets/container.ts).
 */
import { EnvironmentError } from '../harness/core/errors.js';
import { continueGroup, listenerInodes, socketOwners, stopGroup } from '../harness/core/freeze.js';
import type { Journal } from '../harness/core/journal.js';
import type { FreezeReport, StartedTarget } from './target.js';

/**
 * freezeServer/thawServer for the process group led by `pid` (started at `startTicks`), the
 * server of target `name` listening on `port`. After the SIGSTOP the processes that hold the
 * listening socket must be stopped too: a server that daemonized (setsid) left the group and
 * would go on accepting — then the freeze is undone and refused (exit 3).
 */
export function groupFreezer(journal: Journal, name: string, pid: number, startTicks: string | undefined, port: number): Pick<StartedTarget, 'freezeServer' | 'thawServer'> {
  return {
    async freezeServer(): Promise<FreezeReport> {
      const t0 = performance.now();
      if (startTicks === undefined) throw new EnvironmentError('E_FREEZE', `cannot freeze target ${name}: its process (pid ${pid}) was gone when it started`);
      await journal.record(`freeze target ${name}: SIGSTOP to process group ${pid}`, { kind: 'thaw', pid, startTicks });
      const r = await stopGroup(pid, startTicks);
      if (!r.ok) {
        // Whatever part of it stopped runs again now; the journal's thaw stays for the revert.
        await continueGroup(pid, startTicks);
        throw new EnvironmentError('E_FREEZE', `cannot freeze target ${name}: ${r.why}`, 'a server that daemonizes (leaves the process group it was started in) cannot be frozen: run it in the foreground');
      }
      const owners = await socketOwners(pid, await listenerInodes(pid, port));
      const running = owners.filter((o) => o.state !== 'T' && o.state !== 't');
      if (owners.length === 0 || running.length) {
        await continueGroup(pid, startTicks);
        const who = running.map((o) => o.pid).join(', ');
        throw new EnvironmentError(
          'E_FREEZE',
          `cannot freeze target ${name}: ${owners.length === 0 ? `no process of it holds its listening socket on port ${port}` : `the process listening on port ${port} (pid ${who}) is not in its process group: it left it (setsid, a daemon)`}; nothing was left frozen`,
          'run the server in the foreground (no daemonizing), so that stopping the command you configured stops the server',
        );
      }
      return { describe: `SIGSTOP to the process group of ${name} (pid ${pid}, ${r.members} process${r.members === 1 ? '' : 'es'})`, durationMs: performance.now() - t0 };
    },
    async thawServer() {
      if (startTicks !== undefined) await continueGroup(pid, startTicks);
    },
  };
}
