import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Result } from '../verdict/result.js';
import { loadSequence, renderIndex, renderRunPage, writeIndex, writeRunPage } from './html.js';
import { stateSpans } from './timeline-svg.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

/** A fixture Result whose capture paths point at the fixture files. */
function fixture(name: string): Result {
  const r = JSON.parse(readFileSync(join(FIXTURES, `${name}.result.json`), 'utf8')) as Result;
  r.captures = r.captures!.map((c) => ({ ...c, file: join(FIXTURES, c.file) }));
  return r;
}

function count(html: string, re: RegExp): number {
  return html.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

describe('a run page', () => {
  test('syn-drop: self-contained (no script, nothing fetched), six lost SYN arrows, SYN_SENT and the predicted window on one axis', async () => {
    const r = fixture('syn-drop');
    const { seq, warnings } = await loadSequence(r);
    expect(warnings).toEqual([]);
    const html = renderRunPage(r, seq);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=|url\(http/i);
    expect(count(html, /<g class="seg"/)).toBe(6);
    expect(count(html, /<g class="seg"[^>]*data-flags="SYN" data-lost="true"/)).toBe(6);
    expect(count(html, /data-retrans="true"/)).toBe(5);
    expect(html).toMatch(/<rect [^>]*class="predicted predicted-step" data-kind="step" data-label="connect" data-lo-ms="7000" data-hi-ms="7200"/);
    expect(html).toMatch(/<g class="state" data-side="client" data-state="SYN_SENT"/);
    // Checks, the model's words, the sysctls, the rule and its hits.
    expect(html).toContain('syn retries 2 + 4 linear timeouts');
    expect(html).toContain('net.ipv4.tcp_syn_retries');
    expect(html).toMatch(/drop-syn<\/td><td>server INPUT<\/td>.*<td class="num">6<\/td><td class="num">6<\/td>/);
    expect(count(html, /<td class="ok">✓<\/td>/)).toBe(r.checks.length);
  });

  test('whatever a Result holds is text, never markup', () => {
    const r = fixture('syn-drop');
    r.verdict = 'error';
    r.error = { code: 'E_X', message: '<script>alert(1)</script>', stage: 'client' };
    r.checks[0] = { name: '<b>x</b>', expected: '"&', actual: "'", pass: false };
    const html = renderRunPage(r, { serverAddr: r.target.address, segments: [], rules: [], alignment: { method: 'none', pcapUs: 0, atMs: 0 }, otherPackets: 0 });
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).toContain('no packets between client and server');
    expect(count(html, /<td class="bad">✗<\/td>/)).toBe(1);
  });

  test('a Result without captures still gets a page, and says why the diagram is empty', async () => {
    const r = fixture('syn-drop');
    delete r.captures;
    const { seq, warnings } = await loadSequence(r);
    expect(seq.segments).toEqual([]);
    expect(warnings.join(' ')).toMatch(/no packet capture/);
    expect(renderRunPage(r, seq, { warnings })).toContain('class="warning"');
  });

  test('written to a directory: the page links its captures relative to itself; the index links every page', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-report-'));
    try {
      const a = fixture('syn-drop');
      const b = fixture('synack-drop');
      b.verdict = 'fail';
      b.checks[2] = { ...b.checks[2]!, pass: false };
      const page = await writeRunPage(dir, a);
      expect(page).toBe(join(dir, `syn-drop-${a.runId}.html`));
      const html = await readFile(page, 'utf8');
      expect(html).toMatch(/<a href="(\.\.\/)+[^"]*syn-drop-client\.pcap">/);
      const index = await readFile(await writeIndex(dir, [a, b]), 'utf8');
      expect(index).toContain(`href="syn-drop-${a.runId}.html"`);
      expect(index).toContain(`href="synack-drop-${b.runId}.html"`);
      expect(index).toContain('2 scenario runs, 1 pass, 1 do not');
      expect(index).toContain(b.checks[2]!.name);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('renderIndex with nothing in it is still a page', () => {
    expect(renderIndex([])).toContain('0 scenario runs');
  });
});

describe('stateSpans', () => {
  test('one span per visit: repeated samples merge, GONE ends a span, a socket never seen leaving is held', () => {
    const s = (tMs: number, state: string, port = 1) => ({ tMs, state, local: `a:${port}`, remote: 'b:9' });
    const spans = stateSpans([s(0, 'SYN_SENT'), s(5, 'SYN_SENT'), s(10, 'ESTABLISHED'), s(20, 'GONE'), s(3, 'TIME_WAIT', 2)]);
    expect(spans.get('a:1 b:9')).toEqual([
      { socket: 'a:1 b:9', state: 'SYN_SENT', fromMs: 0, toMs: 10, next: 'ESTABLISHED' },
      { socket: 'a:1 b:9', state: 'ESTABLISHED', fromMs: 10, toMs: 20, next: 'GONE' },
    ]);
    expect(spans.get('a:2 b:9')).toEqual([{ socket: 'a:2 b:9', state: 'TIME_WAIT', fromMs: 3 }]);
  });
});
