/** Serialises image builders (two vitest workers, two terminals) with an O_EXCL lock file. */
import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BuildError } from './build-step.js';

const WAIT_LIMIT_MS = 30 * 60_000; // a first debootstrap plus three builds takes a few minutes
const POLL_MS = 500;

/** Takes the lock at `path` (waiting while a live process holds it); returns its release. */
export async function acquireLock(path: string, log: (msg: string) => void): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + WAIT_LIMIT_MS;
  let announced = false;
  for (;;) {
    try {
      const fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
        await rm(path, { force: true }); // stale: its owner died
        continue;
      }
      if (Date.now() > deadline) throw new BuildError(`image build lock ${path} held by pid ${pid} for ${WAIT_LIMIT_MS / 60_000} min`);
      if (!announced) log(`waiting for another image build (pid ${pid}, lock ${path})`);
      announced = true;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
