/**
 * The generated list of server modes agrees with the probe it was generated from. The probe's
 * MODES table is the one place a mode is named; a drift here means server-modes.ts was edited by
 * hand or not regenerated after the table changed (run `npm run build`, commit the file).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { run } from './exec.js';
import { SERVER_MODE_SUMMARIES, SERVER_MODES } from './server-modes.js';

// This tree's probe, not $HARNESS_PROBE: the test is about the table in this checkout.
const PROBE = resolve(import.meta.dirname, '../../probe/build/harness-probe');

describe('server modes', () => {
  test('server-modes.ts lists exactly what `harness-probe server --list-modes` prints, in order', async () => {
    // `npm ci` (prepare) and `npm run build` both build the probe; without it there is nothing to compare.
    expect(existsSync(PROBE), `${PROBE} is missing: run make -C probe`).toBe(true);
    const r = await run([PROBE, 'server', '--list-modes']);
    const fromProbe = JSON.parse(r.stdout) as { name: string; summary: string }[];
    expect([...SERVER_MODES]).toEqual(fromProbe.map((m) => m.name));
    expect(SERVER_MODE_SUMMARIES).toEqual(Object.fromEntries(fromProbe.map((m) => [m.name, m.summary])));
  });

  test('the probe refuses a mode outside the list, naming every mode', async () => {
    const r = await run([PROBE, 'server', '--mode', 'not-a-mode', '--listen', '127.0.0.1:0'], { reject: false, timeoutMs: 5000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`unknown mode 'not-a-mode' (known: ${SERVER_MODES.join(', ')})`);
  });
});
