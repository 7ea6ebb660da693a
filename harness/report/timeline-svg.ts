/**
 * The socket-state timeline, to scale: the client's steps, the packets on the wire, and one lane
 * per socket of each side coloured by the state the watchers saw, with the model's predicted
 * windows drawn on the same axis, so "SYN_SENT ended inside the predicted window" is something
 * you see. What the model predicts and where it is placed:
 *  - a step's window (`expected.steps[label].windowMs`, from the step's start): when the step
 *    ends, as a band across every lane;
 *  - `stateLeft` (from `fromStep`'s start, or t = 0): when the side's first socket in the state
 *    leaves it, on that socket's lane;
 *  - `spans[].lastsMs` (a duration): from the moment each socket of the side entered the state;
 *  - your own client's run: the window the kernel ends each of its connections in
 *    (`client.connections[].windowMs`, from the strike or from entering the state the fault holds
 *    it in), on that connection's lane; the client itself as a bar, and the strike as a line.
 */
import type { Result, StateSample } from '../verdict/result.js';
import { el, esc, fmtMs, text } from './markup.js';
import type { Sequence } from './segments.js';

const W = 900;
const X0 = 190;
const X1 = 880;
const LANE = 22;
/** Sockets drawn per side; the rest are counted. */
export const MAX_SOCKET_LANES = 24;

export interface StateSpan {
  socket: string;
  state: string;
  fromMs: number;
  /** When the next sample showed another state (or GONE); undefined: still in it when observation ended. */
  toMs?: number;
  next?: string;
}

/** Each socket's visits to states, from the samples (a span ends at the first sample out of it). */
export function stateSpans(samples: readonly StateSample[]): Map<string, StateSpan[]> {
  const bySocket = new Map<string, StateSpan[]>();
  for (const s of samples) {
    const socket = `${s.local} ${s.remote}`;
    const spans = bySocket.get(socket) ?? [];
    const open = spans[spans.length - 1];
    if (open && open.toMs === undefined) {
      if (open.state === s.state) continue;
      open.toMs = s.tMs;
      open.next = s.state;
    }
    if (s.state !== 'GONE') spans.push({ socket, state: s.state, fromMs: s.tMs });
    bySocket.set(socket, spans);
  }
  return bySocket;
}

function niceStep(range: number): number {
  const raw = range / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

interface Band {
  kind: 'step' | 'state-left' | 'span' | 'connection';
  loMs: number;
  hiMs: number;
  label: string;
  /** Lanes it is drawn on: 'all' or socket keys of a side. */
  lanes: 'all' | { side: 'client' | 'server'; sockets: string[] };
  dataLabel: string;
}

function predictedBands(r: Result, spans: Record<'client' | 'server', Map<string, StateSpan[]>>): Band[] {
  const bands: Band[] = [];
  const stepStart = (label: string | undefined) => (label === undefined ? 0 : r.steps.find((s) => s.label === label)?.startMs);
  for (const [label, e] of Object.entries(r.expected.steps)) {
    if (!e.windowMs) continue;
    const start = stepStart(label);
    if (start === undefined) continue;
    bands.push({ kind: 'step', loMs: start + e.windowMs[0], hiMs: start + e.windowMs[1], label: `${label}() ends: predicted ${fmtMs(e.windowMs[0])}..${fmtMs(e.windowMs[1])} after its start`, lanes: 'all', dataLabel: label });
  }
  for (const e of r.expected.stateLeft ?? []) {
    const from = stepStart(e.fromStep);
    if (from === undefined) continue;
    const first = [...spans[e.side].values()].flat().filter((s) => s.state === e.state).sort((a, b) => a.fromMs - b.fromMs)[0];
    bands.push({
      kind: 'state-left',
      loMs: from + e.windowMs[0],
      hiMs: from + e.windowMs[1],
      label: `${e.side} leaves ${e.state}${e.to ? ` → ${e.to}` : ''}: predicted ${fmtMs(e.windowMs[0])}..${fmtMs(e.windowMs[1])} from ${e.fromStep ? `${e.fromStep}()` : 't = 0'}`,
      lanes: { side: e.side, sockets: first ? [first.socket] : [] },
      dataLabel: `${e.side}:${e.state}`,
    });
  }
  for (const e of r.expected.spans ?? []) {
    if (!e.lastsMs) continue;
    for (const s of [...spans[e.side].values()].flat().filter((x) => x.state === e.state)) {
      bands.push({
        kind: 'span',
        loMs: s.fromMs + e.lastsMs[0],
        hiMs: s.fromMs + e.lastsMs[1],
        label: `${e.side} ${e.state} lasts: predicted ${fmtMs(e.lastsMs[0])}..${fmtMs(e.lastsMs[1])}${e.then ? `, then ${e.then}` : ''}`,
        lanes: { side: e.side, sockets: [s.socket] },
        dataLabel: `${e.side}:${e.state}`,
      });
    }
  }
  for (const c of r.client?.connections ?? []) {
    if (!c.windowMs) continue;
    const [lo, hi] = c.windowMs;
    bands.push({
      kind: 'connection',
      loMs: lo,
      // No end the kernel sets (null): open to the end of the picture.
      hiMs: hi ?? Infinity,
      label: `the kernel ends ${c.local}: predicted ${hi === null ? `${fmtMs(lo)} or later` : `${fmtMs(lo)}..${fmtMs(hi)}`}`,
      lanes: { side: 'client', sockets: [`${c.local} ${c.remote}`] },
      dataLabel: `client:${c.local}`,
    });
  }
  return bands;
}

export function timelineSvg(r: Result, seq: Sequence): string {
  const spans = { client: stateSpans(r.states.client), server: stateSpans(r.states.server) };
  const bands = predictedBands(r, spans);
  // A listener opened during setup (seconds before t = 0 when many runs start at once) would
  // squeeze the scenario into a corner: the axis starts at the scenario, and earlier bars are cut.
  const seen = [
    0,
    ...r.steps.flatMap((s) => [s.startMs, s.endMs]),
    ...r.states.client.map((s) => s.tMs),
    ...r.states.server.map((s) => s.tMs),
    ...seq.segments.map((s) => s.tMs),
    ...(r.client ? [r.client.durationMs, ...(r.client.struck ? [r.client.struck.atMs] : [])] : []),
  ];
  // A socket still in its state when observation ended is drawn to there, not to a window beyond it.
  const observedEndMs = Math.max(...seen);
  const endMs = Math.max(observedEndMs, ...bands.flatMap((b) => [b.loMs, b.hiMs]).filter(Number.isFinite));
  const lo = Math.min(0, ...seq.segments.map((s) => s.tMs), ...r.steps.map((s) => s.startMs)) - Math.max(1, endMs * 0.01);
  const hi = endMs + Math.max(1, (endMs - lo) * 0.03);
  const x = (ms: number) => X0 + ((Math.max(lo, ms) - lo) / (hi - lo)) * (X1 - X0);
  const out: string[] = [];
  const labels: string[] = [];
  let y = 40;

  // Lanes: steps, packets, then each side's sockets.
  type Lane = { y: number; side?: 'client' | 'server'; socket?: string };
  const lanes: Lane[] = [];
  const laneLabel = (label: string, ly: number, cls = 'lane-label') => labels.push(text('text', { x: X0 - 8, y: ly + 15, 'text-anchor': 'end', class: cls }, label));

  laneLabel(r.client ? 'your client' : 'client steps', y);
  const stepsY = y;
  lanes.push({ y });
  y += LANE + 6;
  laneLabel('packets (▲ to server, ▼ to client)', y);
  const packetsY = y;
  lanes.push({ y });
  y += LANE + 10;
  const hidden: Record<string, number> = {};
  for (const side of ['client', 'server'] as const) {
    const sockets = [...spans[side].keys()];
    for (const socket of sockets.slice(0, MAX_SOCKET_LANES)) {
      // Ports tell the sockets apart (the addresses are in the header and in each bar's tooltip).
      const [local, remote] = socket.split(' ').map((a) => a.slice(a.lastIndexOf(':')));
      const listening = remote === ':0';
      laneLabel(listening ? `${side} ${local} (listener)` : side === 'client' ? `client ${local} → ${remote}` : `server ${local} ← ${remote}`, y);
      lanes.push({ y, side, socket });
      y += LANE;
    }
    if (sockets.length > MAX_SOCKET_LANES) hidden[side] = sockets.length - MAX_SOCKET_LANES;
    if (!sockets.length) {
      laneLabel(`${side}: no socket seen`, y, 'lane-label muted');
      y += LANE;
    }
    y += 8;
  }
  const bottom = y;

  // Predicted windows under everything else.
  for (const b of bands) {
    const targets = b.lanes === 'all' ? [{ y: 40, h: bottom - 40 }] : lanes.filter((l) => l.side === (b.lanes as { side: string }).side && (b.lanes as { sockets: string[] }).sockets.includes(l.socket!)).map((l) => ({ y: l.y, h: LANE - 4 }));
    for (const t of targets) {
      out.push(
        el(
          'rect',
          {
            x: x(b.loMs),
            y: t.y,
            width: Math.max(2, x(Math.min(b.hiMs, hi)) - x(b.loMs)),
            height: t.h,
            class: `predicted predicted-${b.kind}${Number.isFinite(b.hiMs) ? '' : ' open'}`,
            'data-kind': b.kind,
            'data-label': b.dataLabel,
            'data-lo-ms': b.loMs,
            'data-hi-ms': Number.isFinite(b.hiMs) ? b.hiMs : 'none',
          },
          el('title', {}, esc(b.label)),
        ),
      );
    }
    if (b.kind === 'step') {
      // Beside the band, on whichever side has room (a window at the end of the run is the common case).
      const right = x(b.hiMs) + 130 < W;
      out.push(text('text', { x: right ? x(b.hiMs) + 3 : x(b.loMs) - 3, y: 38, 'text-anchor': right ? 'start' : 'end', class: 'band-label' }, `${b.dataLabel}() predicted`));
    }
  }

  // Steps: a bar from start to end, its outcome after it.
  for (const s of r.steps) {
    if (s.op === 'sleep' || s.op === 'tcpinfo') continue;
    const what = s.ok ? 'ok' : s.timedOut ? 'waiting' : (s.errno ?? 'failed');
    out.push(
      el(
        'g',
        { class: 'step', 'data-label': s.label ?? s.op, 'data-start-ms': s.startMs, 'data-end-ms': s.endMs },
        el('title', {}, esc(`${s.label ?? s.op}(): ${what}, ${fmtMs(s.startMs)} → ${fmtMs(s.endMs)}`)),
        el('rect', { x: x(s.startMs), y: stepsY + 3, width: Math.max(2, x(s.endMs) - x(s.startMs)), height: LANE - 8, class: s.ok ? 'step-bar' : 'step-bar failed' }),
      ),
    );
  }
  if (r.client) {
    // Your own client: one bar from its start to its end, how it ended after it; the strike a line across every lane.
    const c = r.client;
    const failed = c.timedOut || c.exitCode !== 0;
    const how = c.timedOut ? 'killed by the harness' : c.exitCode !== null ? `exit ${c.exitCode}` : `signal ${c.signal}`;
    out.push(
      el(
        'g',
        { class: 'client-run', 'data-end-ms': c.durationMs },
        el('title', {}, esc(`${c.argv.join(' ')}: ${how} after ${fmtMs(c.durationMs)}`)),
        el('rect', { x: x(0), y: stepsY + 3, width: Math.max(2, x(c.durationMs) - x(0)), height: LANE - 8, class: failed ? 'step-bar failed' : 'step-bar' }),
      ),
      text('text', { x: Math.min(x(c.durationMs) + 4, X1 - 60), y: stepsY + 14, class: 'bar-label' }, how),
    );
    if (c.struck) {
      out.push(
        el(
          'g',
          { class: 'strike', 'data-at-ms': c.struck.atMs },
          el('title', {}, esc(`the fault struck at ${fmtMs(c.struck.atMs)}: ${c.struck.why}`)),
          el('line', { x1: x(c.struck.atMs), y1: 34, x2: x(c.struck.atMs), y2: bottom, class: 'strike-line' }),
        ),
        text('text', { x: x(c.struck.atMs) + 3, y: 38, class: 'strike-label' }, 'fault struck'),
      );
    }
  }
  const failedSteps = r.steps.filter((s) => !s.ok && s.op !== 'sleep');
  for (const s of failedSteps.slice(0, 4)) out.push(text('text', { x: Math.min(x(s.endMs) + 4, X1 - 60), y: stepsY + 14, class: 'bar-label' }, s.errno ?? 'failed'));

  // Packets: a tick per segment, up for client → server, down for the other way; a cross when lost.
  for (const s of seq.segments) {
    const px = x(s.tMs);
    const mid = packetsY + LANE / 2;
    const [y1, y2] = s.dir === 'c2s' ? [mid + 1, packetsY + 1] : [mid - 1, packetsY + LANE - 1];
    out.push(
      el(
        'g',
        { class: 'tick', 'data-lost': String(Boolean(s.lost)), 'data-flags': s.label },
        el('title', {}, esc(`${fmtMs(s.tMs)} ${s.dir === 'c2s' ? 'client → server' : 'server → client'} ${s.label}${s.retrans ? ' (retransmission)' : ''}${s.lost ? ` LOST: ${s.lost.why}` : ''}`)),
        el('line', { x1: px, y1, x2: px, y2, class: s.lost ? 'tick-line lost' : 'tick-line' }),
      ),
    );
  }

  // Sockets: one bar per visit to a state.
  for (const lane of lanes) {
    if (!lane.side) continue;
    for (const s of spans[lane.side].get(lane.socket!) ?? []) {
      const held = s.toMs === undefined;
      const to = s.toMs ?? observedEndMs;
      const w = Math.max(1.5, x(to) - x(s.fromMs));
      out.push(
        el(
          'g',
          { class: 'state', 'data-side': lane.side, 'data-state': s.state, 'data-from-ms': s.fromMs, 'data-to-ms': to, 'data-held': String(held) },
          el('title', {}, esc(`${lane.side} ${s.socket}: ${s.state} from ${fmtMs(s.fromMs)} ${held ? 'until observation ended' : `to ${fmtMs(to)}, then ${s.next}`}`)),
          el('rect', { x: x(s.fromMs), y: lane.y + 2, width: w, height: LANE - 6, class: `st st-${s.state}${held ? ' held' : ''}` }),
          w > 64 ? text('text', { x: x(s.fromMs) + 4, y: lane.y + 14, class: 'bar-label' }, s.state) : '',
        ),
      );
    }
  }
  for (const [side, n] of Object.entries(hidden)) {
    labels.push(text('text', { x: X0, y: bottom + 12, class: 'note' }, `+${n} more ${side} sockets not drawn`));
  }

  // Axis on top.
  const axis: string[] = [el('line', { x1: X0, y1: 30, x2: X1, y2: 30, class: 'axis' })];
  const step = niceStep(hi - lo);
  for (let k = Math.ceil(lo / step); k * step <= hi; k++) {
    // Multiples of the step, not a running sum: no 0.30000000000000004 on the axis.
    const t = Number((k * step).toPrecision(12));
    axis.push(el('line', { x1: x(t), y1: 26, x2: x(t), y2: bottom, class: 'grid' }));
    axis.push(text('text', { x: x(t), y: 20, 'text-anchor': 'middle', class: 'axis-label' }, step >= 1000 ? `${Number((t / 1000).toPrecision(12))} s` : `${t} ms`));
  }
  const height = bottom + 24;
  return el(
    'svg',
    { id: 'timeline', xmlns: 'http://www.w3.org/2000/svg', width: W, height, viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': 'socket states over time with the predicted windows' },
    ...axis,
    ...out,
    ...labels,
  );
}
