import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Result } from '../verdict/result.js';
import { loadSequence, renderIndex, renderRunPage, writeIndex, writeRunPage } from './html.js';
import { stateSpans } from './timeline-svg.js';
import { esc, fmtMs, round } from './markup.js';

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

  test("your own client (a reconnect under host-crash): its bar, the strike, each connection's kernel window on its lane, and a section of its own", async () => {
    const r = fixture('host-crash-reconnect');
    const c = r.client!;
    const { seq, warnings } = await loadSequence(r);
    expect(warnings).toEqual([]);
    const html = renderRunPage(r, seq);
    // The timeline: the client as one bar to its exit, the strike as a line at its time.
    expect(html).toContain('>your client<');
    expect(html).toMatch(new RegExp(`<g class="client-run" data-end-ms="${c.durationMs}"`));
    expect(html).toContain('>exit 1<');
    expect(html).toMatch(new RegExp(`<g class="strike" data-at-ms="${c.struck!.atMs}"`));
    // One band per connection judged against a window, on that connection's lane: open-ended for
    // the struck one (only tcp_retries2 after its next write ends it), the SYN schedule for the reconnect.
    const bands = [...html.matchAll(/<rect [^>]*class="predicted predicted-connection[^"]*" data-kind="connection" data-label="client:([^"]+)" data-lo-ms="([^"]+)" data-hi-ms="([^"]+)"/g)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(bands).toEqual(c.connections.map((k) => [k.local, round(k.windowMs![0]), k.windowMs![1] === null ? 'none' : String(round(k.windowMs![1]))]));
    expect(bands[1]![1]).toBeGreaterThan(7000);
    const lane = (local: string, what: RegExp) => {
      // The band and the connection's state bar share a lane: the same y (bands 2 px above the bar's 2 px inset is y, bar y + 2).
      const band = new RegExp(`<rect x="[^"]+" y="([\\d.]+)"[^>]*data-label="client:${local}"`).exec(html);
      const bar = new RegExp(`<title>client ${local} [^<]*${what.source}[^<]*</title><rect x="[^"]+" y="([\\d.]+)"`).exec(html);
      return [Number(band?.[1]), Number(bar?.[1]) - 2];
    };
    for (const k of c.connections) {
      const [bandY, barY] = lane(k.local, new RegExp(k.states[0]!.state));
      expect(bandY).toBeGreaterThan(0);
      expect(bandY).toBe(barY);
    }
    // The section: the command, how it ended, the strike, the summary, a row per connection with its explanation.
    expect(html).toContain('id="client-section"');
    expect(html).toContain(esc(c.argv.join(' ')));
    expect(html).toContain(`exit 1 after ${fmtMs(c.durationMs)}`);
    expect(html).toContain(esc(c.summary));
    expect(count(html, /<table class="connections">/)).toBe(1);
    for (const k of c.connections) expect(html).toContain(esc(k.explanation));
    expect(html).toContain('its stdout (the end)');
    expect(html).not.toContain("The client's steps");
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
      expect(index).toContain(`href="syn-drop-${a.runId}.html">syn-drop on echo</a>`);
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
