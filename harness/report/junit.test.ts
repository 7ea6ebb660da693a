import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import type { Result } from '../verdict/result.js';
import { junitXml, testName } from './junit.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const SCHEMA = readFileSync(join(FIXTURES, 'junit.xsd'), 'utf8');

function fixture(name: string): Result {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.result.json`), 'utf8')) as Result;
}

/** libxml2's XSD validation (xmllint, compiled to WebAssembly): the check CI systems' readers agree with. */
async function validate(xml: string): Promise<string[]> {
  const r = await validateXML({ xml: [{ fileName: 'junit.xml', contents: xml }], schema: [{ fileName: 'junit.xsd', contents: SCHEMA }] });
  return r.errors.map((e) => e.message);
}

describe('junitXml', () => {
  const pass = fixture('syn-drop');
  const fail = fixture('synack-drop');
  fail.verdict = 'fail';
  fail.checks[4] = { name: 'connect duration', expected: '0.0..1000.0 ms', actual: '1234.5 ms', pass: false };
  const broken = fixture('syn-drop');
  broken.verdict = 'error';
  broken.error = { code: 'E_TCPDUMP', message: 'tcpdump exited: <oops> ]]> \u0007bell', stage: 'observe' };

  test('one testcase per run; a failed verdict is a <failure> naming each failed check with expected and actual; a broken run an <error>', async () => {
    const xml = junitXml([pass, fail, broken], { timestamp: new Date('2026-01-02T03:04:05Z') });
    expect(await validate(xml)).toEqual([]);
    expect(xml).toMatch(/<testsuites name="harness" tests="3" failures="1" errors="1" skipped="0">/);
    expect(xml.match(/<testcase /g)).toHaveLength(3);
    expect(xml).toContain('<testcase classname="harness.syn-drop" name="syn-drop on echo" time=');
    expect(xml).toContain('<failure message="1 of 27 checks failed: connect duration: expected 0.0..1000.0 ms, got 1234.5 ms" type="verdict">');
    expect(xml).toContain('✗ connect duration: expected 0.0..1000.0 ms, got 1234.5 ms');
    // Markup escaped, a control character replaced, "]]>" kept out of the CDATA section (valid per the schema check above).
    expect(xml).toContain('<error message="E_TCPDUMP: tcpdump exited: &lt;oops> ]]> ?bell" type="E_TCPDUMP"><![CDATA[the run broke at stage observe: tcpdump exited: <oops> ]] > ?bell]]></error>');
    // The text report rides along for whoever opens the test in CI.
    expect(xml).toContain('PASS  syn-drop');
  });

  test('the schema check can fail: a testcase without a name, or a count that is not a number, is refused', async () => {
    const xml = junitXml([pass]);
    expect(await validate(xml.replace(/ name="syn-drop on echo"/, ''))).not.toEqual([]);
    expect(await validate(xml.replace(/tests="1"/g, 'tests="one"'))).not.toEqual([]);
  });

  test('test names are stable across runs (no run id) and carry the parameters', () => {
    expect(testName(pass)).toBe('syn-drop on echo');
    expect(testName({ ...pass, params: { variant: 'keepalive', bytes: 10 } })).toBe('syn-drop [variant=keepalive bytes=10] on echo');
    // A plan entry's name leads; your own client's command is named (not its arguments: a temp path may change).
    expect(testName({ ...pass, name: 'slow-syns' })).toBe('slow-syns (syn-drop on echo)');
    const client = { argv: ['/usr/bin/python3', '-c', 'x'], exitCode: 1, signal: null, durationMs: 1, timedOut: false, stdoutTail: '', stderrTail: '', prediction: { state: 'SYN_SENT', from: 'enter', because: '' }, connections: [], summary: '' } as const;
    expect(testName({ ...pass, client: { ...client, argv: [...client.argv], connections: [] } })).toBe('syn-drop on echo with python3');
    expect(testName({ ...pass, client: { ...client, argv: ['redis-cli'], image: 'harness/redis:local', connections: [] } })).toBe('syn-drop on echo with harness/redis:local: redis-cli');
  });
});
