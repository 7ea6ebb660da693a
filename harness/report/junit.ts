/**
 * `--junit FILE`: the runs as a JUnit XML report, the format every CI system reads (Jenkins,
 * GitLab, GitHub Actions' reporters, Azure). One <testcase> per scenario run; a failed verdict is
 * a <failure> whose message names the failed checks with expected and actual; a run that broke is
 * an <error>; the text report goes to <system-out>. Built with junit-report-builder (made for
 * exactly this, on xmlbuilder, so escaping and element order are its job, not ours).
 */
import { writeFile } from 'node:fs/promises';
import * as junitReportBuilder from 'junit-report-builder';
import type { Builder } from 'junit-report-builder';
import type { Check, Result } from '../verdict/result.js';
import { formatResult, runName } from './text.js';
import { fmtValue } from './markup.js';

// Its types describe an ES default export; under Node's ESM the CommonJS module.exports (the
// builder itself) is the namespace's `default`.
const junit = (junitReportBuilder as unknown as { default: Builder }).default;

/** XML 1.0 allows no control characters but tab and newlines (attributes and text alike). */
function xmlSafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '?');
}

/** Text for a CDATA section, which cannot hold "]]>" (xmlbuilder refuses it): a space breaks it. */
function cdataSafe(s: string): string {
  return xmlSafe(s).replace(/]]>/g, ']] >');
}

function checkLine(c: Check): string {
  return `${c.name}: expected ${fmtValue(c.expected)}, got ${fmtValue(c.actual)}`;
}

/** The test's name: the run's own name (text.ts), stable across CI runs so CI can track its history. */
export const testName = runName;

export function junitXml(results: readonly Result[], opts: { timestamp?: Date } = {}): string {
  const builder = junit.newBuilder().name('harness');
  const suite = builder.testSuite().name('harness run').timestamp(opts.timestamp ?? new Date());
  let totalMs = 0;
  for (const r of results) {
    const ms = r.timing.setupMs + r.timing.scenarioMs + r.timing.teardownMs;
    totalMs += ms;
    const tc = suite
      .testCase()
      .className(`harness.${r.scenario}`)
      .name(xmlSafe(testName(r)))
      .time(Math.round(ms) / 1000)
      .standardOutput(cdataSafe(formatResult(r)));
    const failed = r.checks.filter((c) => !c.pass);
    if (r.verdict === 'error') {
      const e = r.error ?? { code: 'E_UNKNOWN', message: 'the run broke' };
      tc.error(xmlSafe(`${e.code}: ${e.message}`), e.code, cdataSafe([`the run broke${r.error?.stage ? ` at stage ${r.error.stage}` : ''}: ${e.message}`, ...failed.map(checkLine)].join('\n')));
    } else if (r.verdict === 'fail') {
      const message = `${failed.length} of ${r.checks.length} checks failed: ${failed.map(checkLine).join('; ')}`;
      const body = [...failed.map((c) => `✗ ${checkLine(c)}`), '', 'the model:', ...(r.expected.because ?? []).map((b) => `  ${b}`)].join('\n');
      tc.failure(xmlSafe(message), 'verdict').stacktrace(cdataSafe(body));
    }
  }
  suite.time(Math.round(totalMs) / 1000);
  return builder.build();
}

export async function writeJunit(file: string, results: readonly Result[]): Promise<void> {
  await writeFile(file, junitXml(results));
}
