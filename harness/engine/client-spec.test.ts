import { describe, expect, test } from 'vitest';
import { faults } from '../../faults/index.js';
import { checkClientSpec, fillPlaceholders, parseDuration, parseExpectExit, parseStrike } from './client-spec.js';
import type { AnyFault } from './prepare.js';

const f = (name: keyof typeof faults) => faults[name] as unknown as AnyFault;

describe('client flags', () => {
  test('durations, strikes and exit codes', () => {
    expect(parseDuration('500ms', '--x')).toBe(500);
    expect(parseDuration('1.5s', '--x')).toBe(1500);
    expect(parseDuration('2m', '--x')).toBe(120_000);
    expect(parseDuration('250', '--x')).toBe(250);
    expect(() => parseDuration('10furlongs', '--client-timeout')).toThrow(/--client-timeout: "10furlongs" is not a duration/);
    expect(parseStrike('established')).toEqual({ kind: 'established', delayMs: 0 });
    expect(parseStrike('established+200ms')).toEqual({ kind: 'established', delayMs: 200 });
    expect(parseStrike('at:2s')).toEqual({ kind: 'at', ms: 2000 });
    expect(() => parseStrike('soon')).toThrow(/--strike/);
    expect(parseExpectExit('nonzero')).toBe('nonzero');
    expect(parseExpectExit('28')).toBe(28);
    expect(() => parseExpectExit('-1')).toThrow(/--expect-exit/);
  });

  test('placeholders are filled in every argument', () => {
    expect(fillPlaceholders(['curl', 'http://{host}:{port}/', '{port}'], '198.18.0.1', 9000)).toEqual(['curl', 'http://198.18.0.1:9000/', '9000']);
  });
});

describe('checkClientSpec', () => {
  test('a good spec passes', async () => {
    await expect(checkClientSpec({ argv: ['true'] }, f('syn-drop'), 'netns')).resolves.toEqual({ argv: ['true'] });
  });

  test.each([
    [{ argv: [] }, 'syn-drop', 'netns', /^--: the client command is empty/],
    [{ argv: [''] }, 'syn-drop', 'netns', /^--: the client command is empty/],
    [{ argv: ['no-such-command-xyz'] }, 'syn-drop', 'netns', /command not found: no-such-command-xyz/],
    [{ argv: ['curl', '{hots}'] }, 'syn-drop', 'netns', /unknown placeholder \{hots\}/],
    [{ argv: ['true'], image: 'harness/redis:local' }, 'syn-drop', 'netns', /^--client-image: the target is a netns target/],
    [{ argv: ['true'], strike: { kind: 'at', ms: 1 } }, 'syn-drop', 'netns', /^--strike: syn-drop does not strike mid-connection/],
    [{ argv: ['true'] }, 'fin-drop', 'netns', /fin-drop cannot drive your own client/],
  ] as const)('refuses %j on %s (%s)', async (spec, fault, backend, msg) => {
    await expect(checkClientSpec(spec as never, f(fault), backend)).rejects.toThrow(msg);
  });
});
