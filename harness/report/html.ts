/**
 * `--report DIR`: one self-contained HTML page per run (styles inline, drawings as inline SVG, no
 * script, nothing fetched: a Content-Security-Policy of `default-src 'none'` proves it in any
 * browser), and an index when several scenarios ran. A page puts what happened next to what was
 * predicted: the sequence diagram from both namespaces' captures, the socket-state timeline with
 * the model's windows, the checks, the model's explanation, the sysctls and the fault's rules.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { faults, isFaultName } from '../../faults/index.js';
import type { Result } from '../verdict/result.js';
import { el, esc, fmtMs, fmtValue, text } from './markup.js';
import { readPcap, type Packet } from '../core/pcap-file.js';
import { buildSequence, type CaptureSide, type Sequence } from './segments.js';
import { sequenceSvg } from './sequence-svg.js';
import { timelineSvg } from './timeline-svg.js';
import { runName } from './text.js';
import { STYLE } from './style.js';

/** The captures of a Result, read and paired; a file that cannot be read is a warning on the page, not a failed report. */
export async function loadSequence(r: Result): Promise<{ seq: Sequence; warnings: string[] }> {
  const packets: Partial<Record<CaptureSide, Packet[]>> = {};
  const warnings: string[] = [];
  for (const c of r.captures ?? []) {
    if (c.side !== 'client' && c.side !== 'server') continue;
    try {
      packets[c.side] = readPcap(await readFile(c.file));
    } catch (e) {
      warnings.push(`capture ${c.file} could not be read: ${(e as Error).message}`);
    }
  }
  if (!r.captures?.length) warnings.push('no packet capture in this Result: the sequence diagram is empty (run with --report or --pcap)');
  for (const side of ['client', 'server'] as const) {
    if (r.captures?.length && !packets[side]) warnings.push(`no ${side} capture: segments it would have seen are drawn from the other side only`);
  }
  return { seq: buildSequence(r, packets), warnings };
}

export function pageFileName(r: Result): string {
  return `${r.scenario}-${r.runId}.html`;
}

const VERDICT_TEXT: Record<Result['verdict'], string> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', inconclusive: 'INCONCLUSIVE' };

function table(head: string[], rows: string[][], cls = ''): string {
  return el(
    'table',
    cls ? { class: cls } : {},
    el('thead', {}, el('tr', {}, ...head.map((h) => text('th', {}, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells))),
  );
}

function section(id: string, title: string, ...body: string[]): string {
  return el('section', { id }, text('h2', {}, title), ...body);
}

function alignmentNote(seq: Sequence): string {
  switch (seq.alignment.method) {
    case 'first-syn':
      return `Capture times are placed on the run's axis by the client's first SYN, sent inside the first connect() (at ${fmtMs(seq.alignment.atMs)}).`;
    case 'first-packet':
      return 'No connect() step and SYN to align on: the first captured packet is placed at t = 0 (times are approximate).';
    default:
      return '';
  }
}

export interface PageOptions {
  /** Links to the capture files, relative to the page. */
  captures?: { side: string; href: string; file: string; packets: number }[];
  warnings?: string[];
}

export function renderRunPage(r: Result, seq: Sequence, opts: PageOptions = {}): string {
  const fault = isFaultName(r.scenario) ? faults[r.scenario] : undefined;
  const failed = r.checks.filter((c) => !c.pass);
  const title = `${r.scenario} ${VERDICT_TEXT[r.verdict]} — harness run ${r.runId}`;
  const lost = seq.segments.filter((s) => s.lost).length;
  const retrans = seq.segments.filter((s) => s.retrans).length;

  const header = el(
    'header',
    {},
    el('h1', {}, esc(r.scenario), ' ', text('span', { class: `verdict verdict-${r.verdict}`, id: 'verdict' }, VERDICT_TEXT[r.verdict])),
    fault ? text('p', { class: 'summary' }, `${fault.summary}. Expected: ${fault.observes}.`) : '',
    text(
      'p',
      { class: 'meta' },
      `run ${r.runId} · target ${r.target.name} (${r.target.backend}) ${r.target.address}:${r.target.port} · ` +
        `${r.checks.length - failed.length}/${r.checks.length} checks pass · setup ${fmtMs(r.timing.setupMs)}, scenario ${fmtMs(r.timing.scenarioMs)}, teardown ${fmtMs(r.timing.teardownMs)}`,
    ),
    r.error ? text('p', { class: 'error' }, `The run broke${r.error.stage ? ` at stage ${r.error.stage}` : ''}: ${r.error.code}: ${r.error.message}`) : '',
    ...(opts.warnings ?? []).map((w) => text('p', { class: 'warning' }, w)),
    r.revert.failed.length ? text('p', { class: 'error' }, `NOT REVERTED: ${r.revert.failed.map((f) => f.describe).join('; ')} — run harness gc`) : '',
  );

  const seqSection = section(
    'sequence-section',
    'What went over the wire',
    text(
      'p',
      { class: 'caption' },
      `${seq.segments.length} segments between client and server, from the captures of both namespaces: ${lost} lost (red, crossed), ${retrans} retransmissions (↻). ` +
        'A segment the receiver\'s INPUT rules dropped reached its interface (both captures hold it) and is drawn lost by the rule that took it; ' +
        `seq/ack are relative to each side's initial sequence number. ${alignmentNote(seq)} Rows are in order, not to scale; hover an arrow for details.`,
    ),
    el('div', { class: 'figure' }, sequenceSvg(r, seq)),
  );

  const timeline = section(
    'timeline-section',
    'Socket states against the prediction',
    text(
      'p',
      { class: 'caption' },
      'Drawn to scale. Each lane is a socket the state watchers saw (sampled every few ms), coloured by state; the shaded bands with dashed edges are the windows the model predicts from the sysctls in force. ' +
        'A band across every lane is when a step should end; one on a socket\'s lane is when that socket should leave its state.',
    ),
    el('div', { class: 'figure' }, timelineSvg(r, seq)),
    legend(r),
  );

  const checks = section(
    'checks-section',
    `Checks (${r.checks.length - failed.length} of ${r.checks.length} pass)`,
    table(
      ['', 'check', 'expected', 'actual'],
      r.checks.map((c) => [
        el('td', { class: c.pass ? 'ok' : 'bad' }, c.pass ? '✓' : '✗'),
        text('td', {}, c.name),
        text('td', {}, fmtValue(c.expected)),
        text('td', {}, fmtValue(c.actual)),
      ]),
      'checks',
    ),
  );

  const model = section(
    'model-section',
    'Why the model predicts this',
    el('ul', {}, ...(r.expected.because ?? ['(the fault gave no explanation)']).map((b) => text('li', {}, b))),
    el('details', {}, text('summary', {}, 'the whole expectation'), text('pre', {}, JSON.stringify(r.expected, null, 2))),
  );

  const sysctlRows = (['client', 'server'] as const).flatMap((side) => Object.entries(r.sysctls[side]).map(([k, v]) => [text('td', {}, side), text('td', {}, k), text('td', {}, v)]));
  const sysctls = section('sysctls-section', 'Sysctls in force (read back from each namespace)', sysctlRows.length ? table(['side', 'key', 'value'], sysctlRows) : text('p', {}, 'none set: kernel defaults'));

  const ruleRows = seq.rules.map((v) => [
    text('td', {}, v.rule.name),
    text('td', {}, `${v.rule.side} ${v.rule.hook}`),
    el('td', {}, text('code', {}, v.rule.spec)),
    text('td', { class: 'num' }, v.hits),
    text('td', { class: 'num' }, v.lost),
    text('td', {}, v.note),
  ]);
  const fault_ = section(
    'fault-section',
    'The fault: what was changed, and what its rules hit',
    el('ul', {}, ...r.fault.applied.map((a) => el('li', {}, text('code', {}, a)))),
    ruleRows.length ? table(['rule', 'where', 'iptables', 'hits', 'drawn lost', ''], ruleRows, 'rules') : text('p', {}, 'no iptables rules'),
  );

  const counters = el(
    'details',
    {},
    text('summary', {}, 'kernel counters (deltas over the run)'),
    table(
      ['side', 'counter', 'delta'],
      (['client', 'server'] as const).flatMap((side) =>
        Object.entries(r.counters[side])
          .filter(([, v]) => v !== 0)
          .map(([k, v]) => [text('td', {}, side), text('td', {}, k), text('td', { class: 'num' }, v)]),
      ),
    ),
  );
  // Your own client ran instead of the probe: what it was, how it ended, and each of its connections against the kernel.
  const steps = r.client ? clientSection(r.client, counters) : section(
    'steps-section',
    'The client\'s steps',
    table(
      ['step', 'op', 'result', 'start', 'end', 'duration', 'TCP_INFO after'],
      r.steps.map((s) => [
        text('td', {}, s.label ?? ''),
        text('td', {}, s.op),
        text('td', { class: s.ok ? '' : 'bad' }, s.ok ? (s.bytes ? `ok, ${s.bytes} B${s.eof ? ', EOF' : ''}` : 'ok') : s.timedOut ? 'still waiting' : (s.errno ?? 'failed')),
        text('td', { class: 'num' }, fmtMs(s.startMs)),
        text('td', { class: 'num' }, fmtMs(s.endMs)),
        text('td', { class: 'num' }, fmtMs(s.durationMs)),
        text('td', {}, s.tcp ? `${s.tcp.state}, ${s.tcp.totalRetrans} retransmitted, rto ${s.tcp.rtoUs / 1000} ms` : ''),
      ]),
    ),
    counters,
  );

  const caps = opts.captures?.length
    ? section(
        'captures-section',
        'Packet captures',
        el('ul', {}, ...opts.captures.map((c) => el('li', {}, el('a', { href: c.href }, esc(basename(c.file))), esc(` — ${c.side} namespace, ${c.packets} packets (open in Wireshark)`)))),
      )
    : '';

  // Your own client's section right after the pictures: it is what the run is about.
  const order = r.client ? [header, seqSection, timeline, steps, checks, model, sysctls, fault_, caps] : [header, seqSection, timeline, checks, model, sysctls, fault_, steps, caps];
  return document(title, order.join('\n'));
}

/** Your own client: its command and end, the strike, each connection explained against the kernel, its output. */
function clientSection(c: NonNullable<Result['client']>, counters: string): string {
  const how = c.timedOut ? `killed by the harness after ${fmtMs(c.durationMs)}` : `${c.exitCode !== null ? `exit ${c.exitCode}` : `signal ${c.signal}`} after ${fmtMs(c.durationMs)}`;
  const rows = c.connections.map((k, i) => [
    text('td', { class: 'num' }, i + 1),
    el('td', {}, text('code', {}, k.local)),
    text('td', {}, k.states.map((s) => `${s.state} ${fmtMs(s.tMs)}`).join(' → ') + (k.end.how === 'gone' ? ` → GONE ${fmtMs(k.end.tMs)}` : ' (held)')),
    text('td', {}, k.windowMs ? (k.windowMs[1] === null ? `${fmtMs(k.windowMs[0])} or later` : `${fmtMs(k.windowMs[0])} .. ${fmtMs(k.windowMs[1])}`) : ''),
    text('td', { class: k.endedBy === 'other' ? 'bad' : '' }, k.endedBy),
    text('td', {}, k.explanation),
  ]);
  const output = (name: string, tail: string) => (tail.trim() ? el('details', {}, text('summary', {}, name), text('pre', {}, tail)) : '');
  return section(
    'client-section',
    'Your client under the fault',
    el('p', {}, text('code', {}, `${c.image ? `[${c.image}] ` : ''}${c.argv.join(' ')}`), esc(`: ${how}.`)),
    c.struck ? text('p', {}, `The fault struck ${fmtMs(c.struck.atMs)} after the client started: ${c.struck.why}.`) : '',
    text('p', { class: 'summary' }, c.summary),
    rows.length ? table(['#', 'connection', 'states seen (ms from the client\'s start)', 'the kernel ends it', 'ended by', 'explanation'], rows, 'connections') : text('p', {}, 'no connection to the target was seen'),
    text('p', { class: 'caption' }, `What the kernel does to a connection under this fault: ${c.prediction.because}${c.prediction.afterStrike ? `; a connection opened after the strike: ${c.prediction.afterStrike.because}` : ''}.`),
    output('its stdout (the end)', c.stdoutTail),
    output('its stderr (the end)', c.stderrTail),
    counters,
  );
}

function legend(r: Result): string {
  const states = [...new Set([...r.states.client, ...r.states.server].map((s) => s.state).filter((s) => s !== 'GONE'))];
  return el(
    'p',
    { class: 'legend' },
    ...states.map((s) => el('span', { class: 'key' }, el('svg', { width: 14, height: 10 }, el('rect', { width: 14, height: 10, class: `st st-${s}` })), esc(` ${s}`))),
    el('span', { class: 'key' }, el('svg', { width: 14, height: 10 }, el('rect', { width: 14, height: 10, class: 'predicted predicted-step' })), ' predicted window'),
  );
}

function document(title: string, body: string): string {
  // No script, no external anything: the page opens from a CI artifact or a mail attachment.
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<footer>${esc('generated by harness — the fault-injection test harness')}</footer>
</body>
</html>
`;
}

export interface IndexEntry {
  result: Result;
  /** The page, relative to the index. */
  href: string;
}

export function renderIndex(entries: readonly IndexEntry[]): string {
  const pass = entries.filter((e) => e.result.verdict === 'pass').length;
  const rows = entries.map(({ result: r, href }) => {
    const ok = r.checks.filter((c) => c.pass).length;
    const lost = Object.values(r.fault.rulesHit).reduce((a, b) => a + b, 0);
    return [
      el('td', {}, el('a', { href }, esc(runName(r)))),
      el('td', {}, text('span', { class: `verdict verdict-${r.verdict}` }, VERDICT_TEXT[r.verdict])),
      text('td', { class: 'num' }, `${ok}/${r.checks.length}`),
      text('td', { class: 'num' }, fmtMs(r.timing.scenarioMs)),
      text('td', { class: 'num' }, lost),
      text('td', {}, `${r.target.name} (${r.target.backend})`),
      text('td', {}, r.runId),
      text('td', {}, r.checks.find((c) => !c.pass)?.name ?? r.error?.message ?? ''),
    ];
  });
  return document(
    `harness report: ${pass}/${entries.length} pass`,
    [
      el('header', {}, text('h1', {}, 'harness report'), text('p', { class: 'meta', id: 'summary' }, `${entries.length} scenario runs, ${pass} pass, ${entries.length - pass} do not`)),
      table(['run', 'verdict', 'checks', 'scenario time', 'rule hits', 'target', 'run id', 'first failed check'], rows, 'index'),
    ].join('\n'),
  );
}

/** Writes the page of one run into `dir` (made if missing) and returns its path. */
export async function writeRunPage(dir: string, r: Result): Promise<string> {
  await mkdir(dir, { recursive: true });
  const { seq, warnings } = await loadSequence(r);
  const captures = (r.captures ?? []).map((c) => ({ ...c, href: relative(dir, c.file).split('\\').join('/') }));
  const file = join(dir, pageFileName(r));
  await writeFile(file, renderRunPage(r, seq, { captures, warnings }));
  return file;
}

export async function writeIndex(dir: string, results: readonly Result[]): Promise<string> {
  const file = join(dir, 'index.html');
  await writeFile(file, renderIndex(results.map((result) => ({ result, href: pageFileName(result) }))));
  return file;
}
