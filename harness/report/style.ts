/** The report pages' one stylesheet, inlined into each page (a page must open with no network). */

/** A colour per TCP state, so the same state looks the same in both drawings and on every page. */
const STATE_COLOURS: Record<string, string> = {
  LISTEN: '#6b8fd6',
  SYN_SENT: '#f0a030',
  SYN_RECV: '#e6c229',
  ESTABLISHED: '#4caf50',
  FIN_WAIT1: '#9c6ade',
  FIN_WAIT2: '#c39bf0',
  CLOSING: '#e58fc0',
  TIME_WAIT: '#9e9e9e',
  CLOSE_WAIT: '#a1785c',
  LAST_ACK: '#e57368',
  CLOSE: '#616161',
  // Not a TCP state: the watcher no longer sees the socket.
  GONE: '#ffffff',
};

const stateRules = Object.entries(STATE_COLOURS)
  .map(([s, c]) => `.st-${s}{fill:${c}}`)
  .join('');

export const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:960px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
.summary{margin:2px 0}.meta{color:#555;margin:2px 0}.caption{color:#444;margin:4px 0 8px;font-size:13px}
.verdict{font-size:13px;padding:2px 8px;border-radius:4px;color:#fff;vertical-align:middle}
.verdict-pass{background:#2e7d32}.verdict-fail{background:#c62828}.verdict-error{background:#6a1b9a}
.error{color:#b71c1c;font-weight:600}.warning{color:#8a6d00}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#2e7d32;font-weight:700}td.bad,.bad{color:#c62828;font-weight:700}
table.checks tr:has(td.bad){background:#fdecea}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#f7f7f7;padding:8px;overflow:auto}
.figure{overflow-x:auto;border:1px solid #e5e5e5;border-radius:4px;background:#fff}
svg text{font:12px system-ui,sans-serif;fill:#222}
.lifeline{stroke:#444;stroke-width:2}.lifeline-title{font-weight:700;font-size:14px}.lifeline-addr{fill:#666;font-size:11px}
.time-label{fill:#666;font-size:11px;font-variant-numeric:tabular-nums}
.arrow{stroke:#1f4e8c;stroke-width:1.6}.head{fill:#1f4e8c}
.arrow.lost{stroke:#d32f2f;stroke-dasharray:6 4}.cross{stroke:#d32f2f;stroke-width:2.5}
.seg-label{font-size:12px}.lost-label{fill:#c62828;font-size:11px}.retrans-label{fill:#e65100;font-size:11px;font-weight:600}
.st-label{font-size:11px;fill:#111}.step-label{font-size:11px;fill:#1b5e20}.step-label.failed{fill:#b71c1c;font-weight:600}.note{fill:#666;font-style:italic}
.st{stroke:#0003;stroke-width:.5}.st-GONE{stroke:#555;stroke-dasharray:3 2;stroke-width:1}.st.held{stroke-dasharray:3 2}${stateRules}
.axis{stroke:#999}.grid{stroke:#eee}.axis-label{fill:#666;font-size:11px}
.lane-label{font-size:11px;fill:#333}.lane-label.muted{fill:#999}.bar-label{font-size:10px;fill:#111}
.step-bar{fill:#8bc34a}.step-bar.failed{fill:#ef9a9a}
.tick-line{stroke:#1f4e8c;stroke-width:1.5}.tick-line.lost{stroke:#d32f2f;stroke-width:2}
.predicted{fill:#1e88e5;fill-opacity:.12;stroke:#1e88e5;stroke-dasharray:4 3;stroke-width:1}
.predicted-state-left,.predicted-span,.predicted-connection{fill-opacity:.25}.predicted.open{stroke-dasharray:none;stroke-opacity:.4}
.strike-line{stroke:#c62828;stroke-width:1.5;stroke-dasharray:5 3}.strike-label{fill:#c62828;font-size:10px;font-weight:600}.band-label{fill:#1565c0;font-size:10px}
.legend{font-size:12px;color:#444}.legend .key{margin-right:12px;white-space:nowrap}
footer{margin-top:32px;color:#999;font-size:12px}
`;
