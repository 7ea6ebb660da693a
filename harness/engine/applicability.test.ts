import { describe, expect, it } from 'vitest';
import { faults } from '../../faults/index.js';
import type { FaultDefinition } from '../../faults/define.js';
import { builtinTargets } from '../../targets/index.js';
import { processTarget } from '../../targets/process.js';
import type { TargetSpec } from '../../targets/target.js';
import { assertPlayable, canPlay, NotPlayable, onYourServer } from './applicability.js';
import { UsageError } from '../core/errors.js';
import type { z } from 'zod';

const fault = (name: keyof typeof faults) => faults[name] as unknown as FaultDefinition<z.ZodObject>;
const own: TargetSpec = processTarget({ name: 'my-bin', argv: ['/bin/true'], cwd: '/', port: 7000 });
const all = { ...builtinTargets, 'my-bin': own };
const refuse = (name: keyof typeof faults, raw: Record<string, unknown>, target: TargetSpec) => {
  const f = fault(name);
  try {
    assertPlayable(f, f.params.parse(raw), raw, target, all);
    return undefined;
  } catch (e) {
    return e;
  }
};

describe('what a target can play', () => {
  it('every fault declares what it needs, and the built-in target can play every scenario', () => {
    for (const f of Object.values(faults) as unknown as FaultDefinition<z.ZodObject>[]) {
      const need = f.needs(f.params.parse({}));
      expect(need === 'any' || need === 'freeze' || need === 'kill' || typeof need.mode === 'string').toBe(true);
      expect(canPlay(builtinTargets.builtin!.plays!, need), f.name).toBe(true);
    }
  });

  it('a server of its own plays network faults, a freeze and a kill, but no built-in mode', () => {
    expect(refuse('syn-drop', {}, own)).toBeUndefined();
    expect(refuse('accept-queue-full', {}, own)).toBeUndefined();
    expect(refuse('app-hang', {}, own)).toBeUndefined();
    expect(refuse('app-crash', {}, own)).toBeUndefined();
    const e = refuse('rst-close', {}, own);
    expect(e).toBeInstanceOf(NotPlayable);
    expect((e as UsageError).exitCode).toBe(2);
    expect((e as UsageError).message).toBe(
      "--target: rst-close cannot be played on target my-bin: it needs the built-in server in mode echo (writes back every byte it reads; closes after the peer's FIN): the client closes with the server's echo of its bytes unread (or read back, for linger0), and my-bin is a server of its own",
    );
    // Which targets can: those that run the probe's server in that mode.
    expect((e as UsageError).hint).toMatch(/^targets that can play it: builtin, echo, probe-echo, probe-container;/);
  });

  it('a variant is named in the refusal, and a variant that works anywhere is not refused', () => {
    expect((refuse('synack-drop', { write: 'before' }, own) as Error).message).toMatch(/^--target: synack-drop \(write=before\) cannot be played on target my-bin: it needs the built-in server in mode no-close/);
    expect(refuse('rst-close', { how: 'linger' }, own)).toBeUndefined();
    expect(refuse('app-crash', { variant: 'unread' }, own)).toBeUndefined();
  });

  it('a forced-mode target plays its own mode only', () => {
    expect(refuse('rst-close', {}, builtinTargets.echo!)).toBeUndefined();
    expect((refuse('rst-close', { side: 'server' }, builtinTargets.echo!) as Error).message).toMatch(/mode close-unread .*and echo runs the built-in server in mode echo/);
  });

  it('a backlog on a server that chose its own contradicts the target: --set, exit 2', () => {
    const e = refuse('accept-queue-full', { backlog: '5' }, own);
    expect(e).toBeInstanceOf(UsageError);
    expect(e).not.toBeInstanceOf(NotPlayable);
    expect((e as UsageError).message).toBe('--set: accept-queue-full: backlog configures the built-in server, but target my-bin chose its own (the harness reads it from its listening socket)');
    expect((e as UsageError).hint).toMatch(/--sysctl server:net.core.somaxconn=N/);
    expect(refuse('accept-queue-full', { backlog: '5' }, builtinTargets.builtin!)).toBeUndefined();
  });

  it('a target that cannot be frozen cannot play app-hang', () => {
    const rigid: TargetSpec = { ...own, name: 'rigid', plays: { modes: [], freeze: false, kill: true } };
    expect((refuse('app-hang', {}, rigid) as Error).message).toMatch(/it needs to freeze the server's processes .*, and rigid cannot be frozen/);
  });

  it('the "on your server" column, variants included', () => {
    expect(onYourServer(fault('syn-drop'))).toBe('yes');
    expect(onYourServer(fault('app-hang'))).toBe('yes, frozen (SIGSTOP / docker pause)');
    expect(onYourServer(fault('app-crash'))).toBe('yes, killed; variant=unread: yes, frozen (SIGSTOP / docker pause)');
    expect(onYourServer(fault('synack-drop'))).toBe('yes; write=before: no: needs built-in mode no-close');
    expect(onYourServer(fault('rst-close'))).toBe('no: needs built-in mode echo; side=server: no: needs built-in mode close-unread; how=linger: yes');
  });
});
