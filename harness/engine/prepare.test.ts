import { describe, expect, it } from 'vitest';
import { UsageError } from '../core/errors.js';
import { prepare } from './prepare.js';

/** prepare() refuses a target a fault cannot mean anything on before it touches anything (no root needed to get there). */
async function refusal(req: Parameters<typeof prepare>[0]): Promise<UsageError> {
  const err = await prepare(req).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UsageError);
  return err as UsageError;
}

describe('prepare: targets a fault refuses', () => {
  it('addr-in-use on redis: --target, exit 2, why, and the targets it runs on', async () => {
    const e = await refusal({ scenario: 'addr-in-use', target: 'redis' });
    expect(e.flag).toBe('--target');
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^--target: addr-in-use cannot run on target redis: it needs a server that closes first/);
    expect(e.hint).toBe('targets it runs on: builtin, nginx, probe-container');
  });
  it('addr-in-use on nginx with an old-server option nginx does not have: the --set parameter is named', async () => {
    const e = await refusal({ scenario: 'addr-in-use', target: 'nginx', params: { serverReuseaddr: 'false' } });
    expect(e.flag).toBe('--set');
    expect(e.message).toMatch(/^--set: addr-in-use: serverReuseaddr: false on target nginx, whose listener sets SO_REUSEADDR/);
    // With that value only the built-in servers can play the old server.
    expect(e.hint).toBe('targets it runs on with that value: builtin, probe-container');
  });
  it('nagle-delack on a target forced to echo, or on redis', async () => {
    expect((await refusal({ scenario: 'nagle-delack', target: 'echo' })).message).toMatch(/built-in echo mode/);
    expect((await refusal({ scenario: 'nagle-delack', target: 'redis' })).hint).toBe('targets it runs on: builtin, nginx, probe-container');
  });
  it('bad parameter values name --set and the parameter', async () => {
    const e = await refusal({ scenario: 'addr-in-use', params: { reuse: 'always' } });
    expect(e.flag).toBe('--set');
    expect(e.message).toMatch(/addr-in-use: reuse: /);
    const n = await refusal({ scenario: 'nagle-delack', params: { requests: '0' } });
    expect(n.message).toMatch(/nagle-delack: requests: /);
  });
});
