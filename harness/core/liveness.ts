/**
 * Is a process the one we think it is? A pid alone is not an identity: pids are reused. The start
 * time in clock ticks since boot (field 22 of /proc/PID/stat) together with the pid is, for as long
 * as the machine is up. Journals, private temp dirs and temp files are named or stamped with both,
 * so `harness gc` never takes a live run for dead, nor kills a process that merely reused a pid.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Start time of a process in clock ticks since boot, or undefined if it is gone. */
export async function processStartTicks(pid: number): Promise<string | undefined> {
  try {
    return startTicksOf(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Field 22 of a /proc/PID/stat line (the command name, field 2, may hold spaces and parens). */
export function startTicksOf(stat: string): string | undefined {
  const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return ticks && /^\d+$/.test(ticks) ? ticks : undefined;
}

/** `<pid>-<startTicks>` of this process. */
export function selfIdentity(): string {
  const ticks = startTicksOf(readFileSync('/proc/self/stat', 'utf8'));
  return `${process.pid}-${ticks ?? '0'}`;
}

/** Parses `<pid>-<startTicks>` (at the start of `s`). */
export function parseIdentity(s: string): { pid: number; startTicks: string } | undefined {
  const m = /^(\d{1,10})-(\d{1,20})(?:$|[^\d])/.exec(s);
  return m ? { pid: Number(m[1]), startTicks: m[2]! } : undefined;
}

/** Whether process `pid` runs and started at `startTicks` (a zombie counts as gone). */
export async function isAlive(pid: number, startTicks: string): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  if (/\) Z /.test(stat)) return false;
  return startTicksOf(stat) === startTicks;
}
