/**
 * Markup as strings, escaped in one place. The pages are generated once, at report time, from
 * data the harness holds (scenario names, rule specs, error messages from the kernel's tools): every
 * text and attribute goes through `esc`, so nothing in a Result can inject markup or script.
 */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export type Attrs = Record<string, string | number | boolean | undefined>;

function attrs(a: Attrs): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? ` ${k}` : ` ${k}="${esc(typeof v === 'number' ? round(v) : v)}"`))
    .join('');
}

/** Coordinates to two decimals: enough for a screen, and stable text for tests. */
export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** An element: `children` are markup already (from `el` or `esc`), joined as they are. */
export function el(tag: string, a: Attrs = {}, ...children: string[]): string {
  return `<${tag}${attrs(a)}>${children.join('')}</${tag}>`;
}

/** A text element with escaped content. */
export function text(tag: string, a: Attrs, content: unknown): string {
  return el(tag, a, esc(content));
}

/** "7142.5 ms" below 10 s, "131.2 s" above. */
export function fmtMs(ms: number): string {
  if (Math.abs(ms) < 10_000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(Math.abs(ms) < 100_000 ? 2 : 1)} s`;
}

/** A value of a check or an expectation, as a person reads it. */
export function fmtValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
