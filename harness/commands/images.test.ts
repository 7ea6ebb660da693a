/** `harness images build`: bad input is a usage error (exit 2) found before Docker is asked anything. */
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { UsageError } from '../core/errors.js';
import { imagesBuildCommand } from './images.js';

const DYNAMIC_PROBE = resolve(import.meta.dirname, '../../probe/build/harness-probe');

function io() {
  const out: string[] = [];
  return { out, io: { write: (s: string) => void out.push(s), log: () => undefined, env: {} } };
}

describe('harness images build: usage errors', () => {
  test('an unknown image names IMAGE and lists the images; nothing is written', async () => {
    const { out, io: i } = io();
    const err = await imagesBuildCommand({ only: ['probe', 'postgres'] }, i).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ exitCode: 2, flag: 'IMAGE', message: 'IMAGE: unknown image "postgres"' });
    expect((err as UsageError).hint).toContain('nginx (harness/nginx:local)');
    expect(out).toEqual([]);
  });

  test('--probe-binary must be a static executable', async () => {
    const { io: i } = io();
    await expect(imagesBuildCommand({ probeBinary: DYNAMIC_PROBE }, i)).rejects.toMatchObject({
      exitCode: 2,
      flag: '--probe-binary',
      message: expect.stringContaining('dynamically linked'),
    });
    await expect(imagesBuildCommand({ probeBinary: '/nonexistent/probe' }, i)).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('ENOENT') });
  });

  test('HARNESS_PROBE_STATIC is checked the same way, and named', async () => {
    const { io: i } = io();
    await expect(imagesBuildCommand({}, { ...i, env: { HARNESS_PROBE_STATIC: DYNAMIC_PROBE } })).rejects.toMatchObject({ exitCode: 2, flag: 'HARNESS_PROBE_STATIC' });
  });
});
