/**
 * The TCP sequence diagram, as the seeds draw it by hand: client and server lifelines, one arrow
 * per segment in the order it went over the wire, each with its flags, relative seq/ack and time;
 * lost segments end in a red cross before the receiver, retransmissions are marked; the socket
 * states the watchers saw and the client's syscalls sit on the lifelines at their moments.
 * Rows are ordinal (one per event), not to scale: a 131 s run with six SYNs stays readable.
 * The time column says when; the timeline below is the one drawn to scale.
 */
import type { Result, StateSample } from '../verdict/result.js';
import { el, esc, fmtMs, text } from './markup.js';
import type { Segment, Sequence } from './segments.js';

const W = 900;
const X_TIME = 8;
const X_CLIENT = 300;
const X_SERVER = 760;
const TOP = 56;
const ROW_SEG = 34;
const ROW_NOTE = 24;
/** Beyond this many rows the diagram stops (the captures hold the rest). */
export const MAX_ROWS = 1500;

type Row =
  | { kind: 'seg'; tMs: number; seg: Segment }
  | { kind: 'state'; tMs: number; side: 'client' | 'server'; state: string; socket: string }
  | { kind: 'step'; tMs: number; label: string; ok: boolean };

/** State changes per socket (consecutive samples in the same state are one visit). */
export function stateChanges(samples: readonly StateSample[]): { tMs: number; state: string; socket: string }[] {
  const last = new Map<string, string>();
  const out: { tMs: number; state: string; socket: string }[] = [];
  for (const s of samples) {
    const socket = `${s.local} ${s.remote}`;
    if (last.get(socket) === s.state) continue;
    last.set(socket, s.state);
    out.push({ tMs: s.tMs, state: s.state, socket });
  }
  return out;
}

const SILENT_OPS = new Set(['sleep', 'tcpinfo', 'barrier']);

function rowsOf(r: Result, seq: Sequence): Row[] {
  const rows: Row[] = seq.segments.map((seg) => ({ kind: 'seg', tMs: seg.tMs, seg }));
  for (const side of ['client', 'server'] as const) {
    for (const c of stateChanges(r.states[side])) rows.push({ kind: 'state', tMs: c.tMs, side, state: c.state, socket: c.socket });
  }
  for (const s of r.steps) {
    if (SILENT_OPS.has(s.op)) continue;
    const what = s.ok ? (s.bytes ? `${s.bytes} B` : 'ok') : s.timedOut ? 'still waiting' : (s.errno ?? 'failed');
    rows.push({ kind: 'step', tMs: s.endMs, label: `${s.label ?? s.op}() → ${what}${s.durationMs >= 1 ? ` after ${fmtMs(s.durationMs)}` : ''}`, ok: s.ok });
  }
  // Stable by time; at the same instant a segment goes before the state it causes.
  const order = { seg: 0, step: 1, state: 2 } as const;
  return rows.sort((a, b) => a.tMs - b.tMs || order[a.kind] - order[b.kind]);
}

function segLabel(s: Segment, multi: boolean): string {
  const t = s.packet.tcp;
  const parts = [multi && s.clientPort !== undefined ? `:${s.clientPort}` : '', s.label];
  if (t) {
    parts.push(`seq=${s.seqRel}`);
    if (s.ackRel !== undefined) parts.push(`ack=${s.ackRel}`);
    if (t.len) parts.push(`len=${t.len}`);
  }
  return parts.filter(Boolean).join(' ');
}

function segTitle(s: Segment): string {
  const p = s.packet;
  const lines = [
    `${p.src}${p.tcp ? `:${p.tcp.sport}` : ''} → ${p.dst}${p.tcp ? `:${p.tcp.dport}` : ''}  ${s.label}`,
    p.tcp ? `seq ${p.tcp.seq} ack ${p.tcp.ack} win ${p.tcp.win} len ${p.tcp.len} (IP id ${p.ipId})` : `IP id ${p.ipId}`,
    s.sentMs !== undefined ? `left the ${s.dir === 'c2s' ? 'client' : 'server'} at ${fmtMs(s.sentMs)}` : `not in the ${s.dir === 'c2s' ? 'client' : 'server'}'s capture`,
    s.recvMs !== undefined ? `arrived at the ${s.dir === 'c2s' ? 'server' : 'client'}'s interface at ${fmtMs(s.recvMs)}` : `not in the ${s.dir === 'c2s' ? 'server' : 'client'}'s capture`,
  ];
  if (s.retrans) lines.push('retransmission');
  if (s.lost) lines.push(`LOST: ${s.lost.why}`);
  return lines.join('\n');
}

function segRow(s: Segment, y: number, multi: boolean): string {
  const [x1, x2] = s.dir === 'c2s' ? [X_CLIENT, X_SERVER] : [X_SERVER, X_CLIENT];
  const lost = Boolean(s.lost);
  const span = x2 - x1;
  // A lost segment stops short of the receiver's lifeline, with a cross where it died.
  const xe = lost ? x1 + span * 0.86 : x2;
  const ye = y + 12;
  const mid = (x1 + x2) / 2;
  const parts = [
    el('title', {}, esc(segTitle(s))),
    el('line', { x1, y1: y, x2: xe, y2: lost ? y + 12 * 0.86 : ye, class: lost ? 'arrow lost' : 'arrow', 'marker-end': lost ? undefined : 'url(#seq-head)' }),
    text('text', { x: mid, y: y - 4, class: 'seg-label', 'text-anchor': 'middle' }, segLabel(s, multi)),
  ];
  if (lost) {
    const yx = y + 12 * 0.86;
    parts.push(el('path', { d: `M${xe - 6} ${yx - 6} L${xe + 6} ${yx + 6} M${xe - 6} ${yx + 6} L${xe + 6} ${yx - 6}`, class: 'cross' }));
    parts.push(text('text', { x: mid, y: y + 24, class: 'lost-label', 'text-anchor': 'middle' }, `lost: ${s.lost!.why}`));
  }
  if (s.retrans) {
    const bx = s.dir === 'c2s' ? x1 + 14 : x1 - 14;
    parts.push(text('text', { x: bx, y: y - 4, class: 'retrans-label', 'text-anchor': s.dir === 'c2s' ? 'start' : 'end' }, '↻ retrans'));
  }
  return el(
    'g',
    {
      class: 'seg',
      'data-i': s.i,
      'data-dir': s.dir,
      'data-flags': s.label,
      'data-lost': String(lost),
      'data-retrans': String(s.retrans),
      'data-t-ms': s.tMs,
      ...(s.lost?.rule ? { 'data-rule': s.lost.rule } : {}),
    },
    ...parts,
  );
}

const STATE_BOX_W = 92;

function stateRow(row: Extract<Row, { kind: 'state' }>, y: number): string {
  const x = row.side === 'client' ? X_CLIENT : X_SERVER;
  return el(
    'g',
    { class: 'state-note', 'data-side': row.side, 'data-state': row.state },
    el('title', {}, esc(`${row.side} socket ${row.socket}: ${row.state} at ${fmtMs(row.tMs)}`)),
    el('rect', { x: x - STATE_BOX_W / 2, y: y - 9, width: STATE_BOX_W, height: 18, rx: 4, class: `st st-${row.state}` }),
    text('text', { x, y: y + 4, 'text-anchor': 'middle', class: 'st-label' }, row.state),
  );
}

function stepRow(row: Extract<Row, { kind: 'step' }>, y: number): string {
  return el(
    'g',
    { class: 'step-note' },
    // Right of the client's lifeline: the row has no arrow, and the time column stays clear.
    text('text', { x: X_CLIENT + 10, y: y + 4, class: row.ok ? 'step-label' : 'step-label failed' }, row.label),
  );
}

/** The diagram as an <svg> element (its own id, so several could share a page). */
export function sequenceSvg(r: Result, seq: Sequence): string {
  const all = rowsOf(r, seq);
  const rows = all.slice(0, MAX_ROWS);
  const multi = new Set(seq.segments.map((s) => s.clientPort)).size > 1;
  let y = TOP;
  const body: string[] = [];
  let prevMs: number | undefined;
  for (const row of rows) {
    const h = row.kind === 'seg' ? ROW_SEG + (row.seg.lost ? 10 : 0) : ROW_NOTE;
    y += row.kind === 'seg' ? 16 : 10;
    const gap = prevMs !== undefined && row.tMs - prevMs >= 100 ? ` (+${fmtMs(row.tMs - prevMs)})` : '';
    body.push(text('text', { x: X_TIME, y: y + 4, class: 'time-label' }, `${fmtMs(row.tMs)}${gap}`));
    body.push(row.kind === 'seg' ? segRow(row.seg, y, multi) : row.kind === 'state' ? stateRow(row, y) : stepRow(row, y));
    y += h - (row.kind === 'seg' ? 16 : 10);
    prevMs = row.tMs;
  }
  if (all.length > rows.length) {
    y += 16;
    body.push(text('text', { x: W / 2, y, 'text-anchor': 'middle', class: 'note' }, `… ${all.length - rows.length} more rows not drawn: open the captures`));
  }
  if (!seq.segments.length) {
    y += 20;
    body.push(text('text', { x: W / 2, y, 'text-anchor': 'middle', class: 'note' }, 'no packets between client and server in the captures'));
  }
  const height = y + 24;
  const head = [
    el('defs', {}, el('marker', { id: 'seq-head', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' }, el('path', { d: 'M0 0 L10 5 L0 10 z', class: 'head' }))),
    text('text', { x: X_CLIENT, y: 20, 'text-anchor': 'middle', class: 'lifeline-title' }, 'client'),
    text('text', { x: X_CLIENT, y: 36, 'text-anchor': 'middle', class: 'lifeline-addr' }, seq.clientAddr ?? ''),
    text('text', { x: X_SERVER, y: 20, 'text-anchor': 'middle', class: 'lifeline-title' }, `server (${r.target.name})`),
    text('text', { x: X_SERVER, y: 36, 'text-anchor': 'middle', class: 'lifeline-addr' }, `${seq.serverAddr}:${r.target.port}`),
    text('text', { x: X_TIME, y: 36, class: 'lifeline-addr' }, 't (ms from the first step)'),
    el('line', { x1: X_CLIENT, y1: TOP - 12, x2: X_CLIENT, y2: height - 8, class: 'lifeline' }),
    el('line', { x1: X_SERVER, y1: TOP - 12, x2: X_SERVER, y2: height - 8, class: 'lifeline' }),
  ];
  return el(
    'svg',
    { id: 'sequence', xmlns: 'http://www.w3.org/2000/svg', width: W, height, viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': 'TCP sequence diagram' },
    ...head,
    ...body,
  );
}
