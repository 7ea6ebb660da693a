/**
 * Which scenarios a target can play. Each fault says what it needs from the server
 * (`needs(params)`: any server, a frozen one, a killed one, or a built-in server mode); each
 * target says what it can do (`plays`: the built-in modes it runs, whether it can be frozen and
 * killed). A scenario its target cannot play is refused before anything runs (exit 2) with the
 * scenario, the target, what it needs and which targets can play it — never a failing verdict.
 */
import type { z } from 'zod';
import type { FaultDefinition, ServerNeed } from '../../faults/define.js';
import { DEFAULT_PLAYS, type TargetPlays, type TargetSpec } from '../../targets/target.js';
import { UsageError } from '../core/errors.js';
import { SERVER_MODE_SUMMARIES } from '../core/probe.js';

type AnyFault = FaultDefinition<z.ZodObject>;

/** A scenario its target cannot play (exit 2). `harness run --all` skips these instead. */
export class NotPlayable extends UsageError {}

export function playsOf(t: TargetSpec): TargetPlays {
  return t.plays ?? DEFAULT_PLAYS;
}

/** Whether a target that `plays` can give a scenario what it `need`s. Pure. */
export function canPlay(plays: TargetPlays, need: ServerNeed): boolean {
  if (need === 'any') return true;
  if (need === 'freeze') return plays.freeze;
  if (need === 'kill') return plays.kill;
  return plays.modes === 'all' || plays.modes.includes(need.mode);
}

/** Whether the target runs the built-in server in the mode the fault wants (then its `server()` shapes the run). */
export function runsFaultMode(plays: TargetPlays, mode: string): boolean {
  return plays.modes === 'all' || plays.modes.includes(mode as never);
}

/** What a need asks of the server, in words. */
export function describeNeed(need: ServerNeed): string {
  if (need === 'any') return 'nothing of the server (network rules and sysctls)';
  if (need === 'freeze') return "to freeze the server's processes (SIGSTOP, or docker pause for a container)";
  if (need === 'kill') return "to kill the server's process";
  return `the built-in server in mode ${need.mode} (${SERVER_MODE_SUMMARIES[need.mode]})${need.why ? `: ${need.why}` : ''}`;
}

/** The `--set` values of a run that are not the defaults, for messages: "side=server, how=unread". */
function variantOf(raw: Record<string, unknown> | undefined): string {
  const e = Object.entries(raw ?? {});
  return e.length ? ` (${e.map(([k, v]) => `${k}=${String(v)}`).join(', ')})` : '';
}

/**
 * Refuses (UsageError, exit 2) a scenario its target cannot play, and `--set` values that
 * configure the built-in server on a server that chose its own. `targets` is every target the
 * user could pick (built-in and from the config file), for the list of those that can play it.
 */
export function assertPlayable(fault: AnyFault, params: Record<string, unknown>, raw: Record<string, unknown> | undefined, target: TargetSpec, targets: Record<string, TargetSpec>): void {
  const need = fault.needs(params);
  const plays = playsOf(target);
  if (!canPlay(plays, need)) {
    const able = Object.entries(targets)
      .filter(([, t]) => canPlay(playsOf(t), need))
      .map(([n]) => n);
    const own = plays.modes === 'all' || plays.modes.length ? `runs the built-in server in mode ${plays.modes === 'all' ? 'any' : plays.modes.join(', ')}` : 'is a server of its own';
    const cannot = need === 'freeze' ? 'cannot be frozen' : need === 'kill' ? 'cannot be killed' : own;
    throw new NotPlayable(
      '--target',
      `${fault.name}${variantOf(raw)} cannot be played on target ${target.name}: it needs ${describeNeed(need)}, and ${target.name} ${cannot}`,
      `targets that can play it: ${able.join(', ') || '(none)'}; harness list shows what each scenario needs ("on your server")`,
    );
  }
  const mode = fault.server(params).mode;
  const own = (fault.serverParams ?? []).filter((k) => raw && Object.hasOwn(raw, k));
  if (own.length && !runsFaultMode(plays, mode)) {
    throw new UsageError(
      '--set',
      `${fault.name}: ${own.join(', ')} configures the built-in server, but target ${target.name} chose its own${fault.readsListener ? ' (the harness reads it from its listening socket)' : ''}`,
      `drop --set ${own.join(', --set ')}${fault.readsListener ? '; to lower the backlog of a server of your own, cap it: --sysctl server:net.core.somaxconn=N' : ''}`,
    );
  }
}

/**
 * The "on your server" column of `harness list`: what the scenario does on a server of the
 * user's own, for its defaults and for each parameter value that changes the answer.
 */
export function onYourServer(fault: AnyFault): string {
  const short = (n: ServerNeed) =>
    n === 'any' ? 'yes' : n === 'freeze' ? 'yes, frozen (SIGSTOP / docker pause)' : n === 'kill' ? 'yes, killed' : `no: needs built-in mode ${n.mode}`;
  const base = fault.params.parse({}) as Record<string, unknown>;
  const baseNeed = fault.needs(base);
  const variants: string[] = [];
  for (const [key, schema] of Object.entries(fault.params.shape)) {
    for (const value of enumValues(schema)) {
      if (value === base[key]) continue;
      const p = fault.params.safeParse({ [key]: value });
      if (!p.success) continue;
      const n = fault.needs(p.data as Record<string, unknown>);
      if (short(n) !== short(baseNeed)) variants.push(`${key}=${value}: ${short(n)}`);
    }
  }
  return [short(baseNeed), ...variants].join('; ');
}

/** The values of an enum parameter (through its default/optional wrappers); [] for others. */
function enumValues(schema: unknown): string[] {
  let s = schema as { def?: { type?: string; innerType?: unknown; entries?: Record<string, string> } } | undefined;
  for (let i = 0; i < 4 && s?.def && s.def.type !== 'enum'; i++) s = s.def.innerType as typeof s;
  return s?.def?.type === 'enum' && s.def.entries ? Object.values(s.def.entries) : [];
}
