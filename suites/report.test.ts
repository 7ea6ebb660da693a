/**
 * `--report` and `--junit` as a user runs them, and the pages opened in a real browser (Debian's
 * chromium, headless, driven by playwright-core): syn-drop's page shows one lost arrow per SYN
 * the model predicts, the client's SYN_SENT on the same time axis as the predicted window, and no
 * console error; `--all` writes an index and a page per scenario, and a JUnit file listing every
 * run. Screenshots go to suites/artifacts/.
 *
 * Without chromium the browser tests fail in CI (CI=true) with the install command, and are
 * skipped elsewhere (a workstation without a browser can still run the rest of the suites).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { chromium, type Browser, type Page } from 'playwright-core';
import { validateXML } from 'xmllint-wasm';
import { faults } from '../faults/index.js';
import { kernelFacts } from '../harness/core/kernel.js';
import { predictSynTimeout, synSysctlsFrom } from '../harness/model/tcp.js';
import { watchLagMs } from '../harness/model/watch.js';
import { loadSequence } from '../harness/report/html.js';
import type { Result } from '../harness/verdict/result.js';
import { afterAll, beforeAll } from 'vitest';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const INSTALL_HINT = `chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (bash scripts/setup.sh installs it)`;
const haveChromium = existsSync(CHROMIUM);
const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
const CLI = resolve(import.meta.dirname, '..', 'dist', 'harness', 'cli.js');

const harness = (args: string[]) => execa('node', [CLI, ...args], { reject: false });

async function launch(): Promise<Browser> {
  if (!haveChromium) throw new Error(INSTALL_HINT);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Opens a page from disk and records every console error, page error and request it makes. */
async function open(browser: Browser, file: string): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  return { page, errors, requests };
}

const runBrowser = haveChromium || Boolean(process.env.CI);

describe.skipIf(!isRoot)('run reports', { tags: ['netns'] }, () => {
  let dir: string;
  let browser: Browser | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'harness-report-'));
    await mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test.skipIf(!runBrowser)('syn-drop --report out/ --junit out/junit.xml: the dropped SYNs and SYN_SENT against the predicted window, in headless Chromium', async () => {
    browser ??= await launch();
    const out = join(dir, 'syn-drop');
    const run = await harness(['run', 'syn-drop', '--report', out, '--junit', join(out, 'junit.xml'), '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    // --json: results only on stdout, one line, and no progress line anywhere (not a terminal anyway).
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as Result;
    expect(r.captures?.map((c) => c.side).sort()).toEqual(['client', 'server']);
    const page = join(out, `syn-drop-${r.runId}.html`);
    expect((await readdir(out)).sort()).toEqual(['junit.xml', 'pcap', `syn-drop-${r.runId}.html`]);

    // What the model predicts, recomputed from the sysctls the run read back and the wake-up
    // lateness its calibration measured (the windows' upper edges allow for it).
    const { hz } = await kernelFacts();
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), { hz, ...(r.calibration ? { lateMs: r.calibration.before.maxMs } : {}) });

    const { page: tab, errors, requests } = await open(browser, page);
    expect(errors).toEqual([]);
    expect(requests).toEqual([`file://${page}`]);
    const arrows = tab.locator('#sequence g.seg');
    expect(await arrows.count()).toBe(p.synsSent);
    const lostSyns = tab.locator('#sequence g.seg[data-flags="SYN"][data-lost="true"]');
    expect(await lostSyns.count()).toBe(p.synsSent);
    expect(await tab.locator('#sequence g.seg[data-retrans="true"]').count()).toBe(p.retransmits);
    for (const cross of await lostSyns.locator('path.cross').all()) expect(await cross.isVisible()).toBe(true);
    expect(await tab.locator('#verdict').textContent()).toBe('PASS');

    // The client's SYN_SENT bar and the predicted window of connect() on one axis: the bar ends
    // where its end time falls on the scale the band defines.
    const band = tab.locator('#timeline rect.predicted[data-kind="step"][data-label="connect"]');
    const bar = tab.locator('#timeline g.state[data-side="client"][data-state="SYN_SENT"]');
    expect(await bar.count()).toBe(1);
    const [lo, hi] = [Number(await band.getAttribute('data-lo-ms')), Number(await band.getAttribute('data-hi-ms'))];
    // The band is the run's own prediction (the page writes ms to two decimals), and that is the
    // model's for the sysctls and lateness.
    const w = r.expected.steps.connect!.windowMs!;
    expect(lo).toBeCloseTo(w[0], 1);
    expect(hi).toBeCloseTo(w[1], 1);
    expect(lo).toBeCloseTo(p.windowMs[0], 1);
    expect(hi).toBeCloseTo(p.windowMs[1], 1);
    const toMs = Number(await bar.getAttribute('data-to-ms'));
    const b = (await band.boundingBox())!;
    const s = (await bar.locator('rect').boundingBox())!;
    const pxPerMs = b.width / (hi - lo);
    expect(Math.abs(s.x + s.width - (b.x + (toMs - lo) * pxPerMs))).toBeLessThan(1.5);
    // The bar is the watcher's record: it ends at the first sample without the socket. (That
    // sample can come a few ms before connect() returns: the kernel drops the socket, then epoll
    // wakes the probe.) connect() itself ended inside the window: the run passed.
    expect(toMs).toBe(r.states.client.find((x) => x.state === 'GONE')!.tMs);
    expect(r.steps.find((x) => x.label === 'connect')!.endMs).toBeInWindow(p.windowMs);
    await tab.screenshot({ path: join(ARTIFACTS, 'report-syn-drop.png'), fullPage: true });

    // Capture time on the run's axis. The watcher sees retransmission k only after it left (its
    // counter goes up after the transmit), so a correct alignment puts every capture time at or
    // before the watcher's sample; and the alignment's own error (the SYN leaves a little after
    // connect() starts) is a floor under every gap, so the smallest gap bounds it: within the
    // watcher's lag. (Single gaps can exceed that lag on a loaded machine; the smallest cannot
    // unless the axes disagree.)
    const { seq } = await loadSequence(r);
    const syns = seq.segments.filter((x) => x.label === 'SYN');
    const gapsMs = [];
    for (let k = 1; k <= p.retransmits; k++) gapsMs.push(r.states.client.find((x) => (x.retrans ?? 0) >= k)!.tMs - syns[k]!.sentMs!);
    await writeFile(join(ARTIFACTS, 'report-syn-drop-alignment.json'), `${JSON.stringify({ runId: r.runId, gapsMs }, null, 1)}\n`);
    expect(Math.min(...gapsMs)).toBeGreaterThanOrEqual(0);
    expect(Math.min(...gapsMs)).toBeLessThanOrEqual(watchLagMs(await kernelFacts()));

    // The JUnit file: one testcase, valid.
    const xml = await readFile(join(out, 'junit.xml'), 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(1);
    expect(xml).toContain('name="syn-drop on echo"');
    await expectValidJunit(xml);
  });

  test.skipIf(!runBrowser)('your own client (a Python reconnect under host-crash) --report: its bar, the strike and each connection\'s kernel window to scale, and its own section', async () => {
    browser ??= await launch();
    const out = join(dir, 'own-client');
    const reconnect = [
      'import socket,sys,time',
      'a=(sys.argv[1], int(sys.argv[2]))',
      's=socket.create_connection(a); time.sleep(0.3); s.close()',
      'time.sleep(0.2)',
      'try:',
      '  socket.create_connection(a, timeout=2)',
      'except Exception as e:',
      '  print(type(e).__name__); sys.exit(1)',
    ].join('\n');
    const run = await harness(['run', 'host-crash', '--strike', 'established+100ms', '--report', out, '--json', '--', 'python3', '-c', reconnect, '{host}', '{port}']);
    expect(run.exitCode, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout.trim()) as Result;
    const c = r.client!;
    expect(c.connections).toHaveLength(2);
    const page = join(out, `host-crash-${r.runId}.html`);
    const { page: tab, errors, requests } = await open(browser, page);
    expect(errors).toEqual([]);
    expect(requests).toEqual([`file://${page}`]);

    // The axis: the client's bar runs from its start (0) to its exit, so it gives the scale.
    const clientBar = (await tab.locator('#timeline g.client-run rect').boundingBox())!;
    const pxPerMs = clientBar.width / c.durationMs;
    const at = (ms: number) => clientBar.x + ms * pxPerMs;
    const strike = (await tab.locator('#timeline g.strike line').boundingBox())!;
    expect(Math.abs(strike.x + strike.width / 2 - at(c.struck!.atMs))).toBeLessThan(1.5);
    // The reconnect's window (the SYN schedule from its SYN_SENT, seconds after the client gave
    // up) starts where the model puts it, on the lane of its SYN_SENT bar.
    const again = c.connections[1]!;
    expect(again.windowMs![0]).toBeGreaterThan(7000);
    const band = (await tab.locator(`#timeline rect[data-kind="connection"][data-label="client:${again.local}"]`).boundingBox())!;
    expect(Math.abs(band.x - at(again.windowMs![0]))).toBeLessThan(1.5);
    const synSent = (await tab.locator('#timeline g.state[data-side="client"][data-state="SYN_SENT"] rect').boundingBox())!;
    expect(Math.abs(band.y + band.height / 2 - (synSent.y + synSent.height / 2))).toBeLessThan(2);

    // The section: one row per connection with its explanation, before the checks.
    const section = tab.locator('section#client-section');
    expect(await section.isVisible()).toBe(true);
    const rows = section.locator('table.connections tbody tr');
    expect(await rows.count()).toBe(c.connections.length);
    for (const [i, k] of c.connections.entries()) expect(await rows.nth(i).textContent()).toContain(k.explanation);
    const ids = await tab.locator('body > section').evaluateAll((ss) => ss.map((x) => x.id));
    expect(ids.indexOf('client-section')).toBeLessThan(ids.indexOf('checks-section'));
    await tab.screenshot({ path: join(ARTIFACTS, 'report-own-client.png'), fullPage: true });
  });

  test.skipIf(!runBrowser)('--all: an index and a page per scenario, each opens without a console error; the JUnit file lists every run', async () => {
    browser ??= await launch();
    const out = join(dir, 'all');
    const run = await harness(['run', '--all', '--report', out, '--junit', join(out, 'junit.xml')]);
    // A verdict may fail under load on a shared machine; the report must be complete either way.
    expect([0, 1], run.stderr).toContain(run.exitCode);
    const names = Object.keys(faults);
    const pages = (await readdir(out)).filter((f) => f.endsWith('.html') && f !== 'index.html');
    expect(pages.map((f) => f.replace(/-[a-z0-9]{6}\.html$/, '')).sort()).toEqual([...names].sort());
    const xml = await readFile(join(out, 'junit.xml'), 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(names.length);
    for (const n of names) expect(xml).toContain(`classname="harness.${n}"`);
    await expectValidJunit(xml);

    const index = await open(browser, join(out, 'index.html'));
    const hrefs = await index.page.locator('table.index a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect([...hrefs].sort()).toEqual([...pages].sort());
    await index.page.screenshot({ path: join(ARTIFACTS, 'report-index.png'), fullPage: true });
    expect(index.errors).toEqual([]);
    for (const f of pages) {
      const { page, errors, requests } = await open(browser, join(out, f));
      expect(errors, f).toEqual([]);
      expect(requests, f).toEqual([`file://${join(out, f)}`]);
      // Every page draws its run: at least the handshake or the SYN it tried.
      expect(await page.locator('#sequence g.seg').count(), f).toBeGreaterThan(0);
      await page.close();
    }
  });

  test('bad --report and --junit paths: exit 2 before anything runs, the flag named', async () => {
    const file = join(dir, 'a-file');
    await execa('touch', [file]);
    for (const [args, says] of [
      [['--report', file], /--report: .* is not a directory/],
      [['--report', '/proc/harness-report'], /--report: .*pseudo file system/],
      [['--junit', join(dir, 'missing', 'junit.xml')], /--junit: directory .*missing does not exist/],
      [['--junit', dir], /--junit: .* exists and is not a regular file/],
    ] as const) {
      const r = await harness(['run', 'syn-drop', ...args]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(says);
      expect(r.stderr).toMatch(/fix: /);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });
});

async function expectValidJunit(xml: string): Promise<void> {
  const schema = await readFile(resolve(import.meta.dirname, '..', 'harness', 'report', 'fixtures', 'junit.xsd'), 'utf8');
  const v = await validateXML({ xml: [{ fileName: 'junit.xml', contents: xml }], schema: [{ fileName: 'junit.xsd', contents: schema }] });
  expect(v.errors.map((e) => e.message)).toEqual([]);
}
