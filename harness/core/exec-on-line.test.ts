/** run()'s onLine: every line reaches the callback as it arrives, and the result is unchanged. */
import { describe, expect, test } from 'vitest';
import { run } from './exec.js';

const SCRIPT = ['sh', '-c', 'echo one; echo err >&2; printf "two\\r\\nthree"; exit 4'];

describe('run onLine', () => {
  test('shows each line of each stream, in order, without its newline', async () => {
    const seen: string[] = [];
    await run(SCRIPT, { reject: false, onLine: (line, stream) => seen.push(`${stream}:${line}`) });
    expect(seen.filter((s) => s.startsWith('stdout:'))).toEqual(['stdout:one', 'stdout:two', 'stdout:three']);
    expect(seen.filter((s) => s.startsWith('stderr:'))).toEqual(['stderr:err']);
  });

  test('the result is byte for byte what it is without onLine (no newline added to the last line)', async () => {
    const plain = await run(SCRIPT, { reject: false });
    const tapped = await run(SCRIPT, { reject: false, onLine: () => undefined });
    expect(plain).toEqual({ stdout: 'one\ntwo\r\nthree', stderr: 'err\n', exitCode: 4, failed: true });
    expect(tapped).toEqual(plain);
  });
});
