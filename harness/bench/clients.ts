/**
 * `npm run clients`: what real clients do under each fault, measured on this machine and written
 * into README.md between the `clients` markers (`--write-readme`). Each client is a small
 * request/response program in its own language's standard library (or curl), run as the user's
 * client command against nginx (a container target: real HTTP); the cell says how it ended and who ended it (the
 * client's own timeout, or the kernel), from the harness's own explanation.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { replaceSection } from '../commands/readme.js';
import { assertRoot, execute, prepare } from '../engine/runner.js';
import type { ClientSpec } from '../engine/client-spec.js';
import type { Result } from '../verdict/result.js';

/**
 * Each client makes two HTTP/1.1 requests, 500 ms apart (the second on the same connection where
 * the client keeps one alive, on a new one where it opens one per request): the mid-connection
 * faults strike 300 ms after the client started (`--strike at:300ms`), between the two, so the
 * first exchange shows the client works and the second meets the fault, as a pooled connection
 * (or a new one) meets a host that died between two requests. (Striking when a connection is
 * ESTABLISHED would miss the clients whose connections last a few ms: a fault that never struck
 * proves nothing.)
 */
const STRIKE_AT_MS = 300;
const REQ = 'GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n';

/** A reply is counted by its status line: one answer may come in several reads (headers, then body). */
const NODE_NET = `const s=require('net').connect(+process.argv[2],process.argv[1]);let n=0,got='';
TIMEOUT
s.on('connect',()=>s.write('${REQ}'));
s.on('data',(d)=>{got+=d;const k=got.split('HTTP/1.').length-1;if(k===n)return;n=k;if(n===1)setTimeout(()=>s.write('${REQ}'),500);else{console.log('2 replies');process.exit(0)}});
s.on('end',()=>{console.log('EOF after '+n);process.exit(1)});
s.on('error',e=>{console.log(e.code+' after '+n);process.exit(1)});`;

const PY_SOCKET = `import socket,sys,time
n=0
got=b''
try:
  s=socket.create_connection((sys.argv[1], int(sys.argv[2]))TIMEOUT)
  for i in range(2):
    if i: time.sleep(0.5)
    s.sendall(b'${REQ}')
    while got.count(b'HTTP/1.') <= n:
      d=s.recv(4096)
      if not d: print('EOF after', n); sys.exit(1)
      got+=d
    n+=1
  print('2 replies')
except Exception as e:
  print(type(e).__name__, getattr(e,'errno','') or '', 'after', n); sys.exit(1)`;

const PY_URLLIB = `import urllib.request,sys,time
n=0
try:
  for i in range(2):
    if i: time.sleep(0.5)
    urllib.request.urlopen('http://%s:%s/' % (sys.argv[1], sys.argv[2]), timeout=3).read(); n+=1
  print('2 replies')
except Exception as e:
  r=getattr(e,'reason',e); print(type(r).__name__, getattr(r,'errno','') or '', 'after', n); sys.exit(1)`;

const NODE_FETCH = `(async()=>{let n=0;const u='http://'+process.argv[1]+':'+process.argv[2]+'/';
try{for(let i=0;i<2;i++){if(i)await new Promise(r=>setTimeout(r,500));await (await fetch(u)).text();n++}console.log('2 replies')}
catch(e){console.log((e.cause?.code??e.name)+' after '+n);process.exit(1)}})()`;

export const CLIENTS: { name: string; argv: string[] }[] = [
  { name: "Node `net` (no timeout)", argv: ['node', '-e', NODE_NET.replace('TIMEOUT', ''), '{host}', '{port}'] },
  { name: "Node `net`, `socket.setTimeout(3000)`", argv: ['node', '-e', NODE_NET.replace('TIMEOUT', "s.setTimeout(3000,()=>{console.log('timeout after '+n);process.exit(1)});"), '{host}', '{port}'] },
  { name: 'Node `fetch` (undici defaults)', argv: ['node', '-e', NODE_FETCH, '{host}', '{port}'] },
  { name: 'Python `socket.create_connection` (no timeout)', argv: ['python3', '-c', PY_SOCKET.replace('TIMEOUT', ''), '{host}', '{port}'] },
  { name: 'Python `socket.create_connection(timeout=2)`', argv: ['python3', '-c', PY_SOCKET.replace('TIMEOUT', ', timeout=2'), '{host}', '{port}'] },
  { name: 'Python `urllib.request.urlopen(timeout=3)`', argv: ['python3', '-c', PY_URLLIB, '{host}', '{port}'] },
  // `--rate 2/s`: the second transfer 500 ms after the first, on the same connection.
  { name: 'curl (defaults), `--rate 2/s`', argv: ['curl', '-sS', '-o', '/dev/null', '-o', '/dev/null', '--rate', '2/s', 'http://{host}:{port}/', 'http://{host}:{port}/'] },
  { name: 'curl `--max-time 3 --rate 2/s`', argv: ['curl', '-sS', '-o', '/dev/null', '-o', '/dev/null', '--rate', '2/s', '--max-time', '3', 'http://{host}:{port}/', 'http://{host}:{port}/'] },
];

/** The table's columns: a scenario, its parameters, and whether it strikes mid-connection. */
export const COLUMNS: { name: string; scenario: string; params?: Record<string, string>; strikes?: true }[] = [
  { name: 'syn-drop', scenario: 'syn-drop' },
  { name: 'host-crash', scenario: 'host-crash', strikes: true },
  { name: 'app-crash', scenario: 'app-crash', strikes: true },
  { name: 'reject', scenario: 'reject' },
  // A firewall that starts refusing between two requests: a pooled connection's next request meets a RST, a new one is refused.
  { name: 'reject mid-connection (RST)', scenario: 'reject', params: { with: 'tcp-reset', when: 'established' }, strikes: true },
];

/** One cell: what the client printed or its exit, when, and who ended its connection. */
export function cell(r: Result): string {
  if (r.verdict === 'error' || !r.client) return `error: ${r.error?.code ?? '?'}`;
  const c = r.client;
  const said = (c.stdoutTail.trim().split('\n').pop() || c.stderrTail.trim().split('\n').pop() || '').replace(/\|/g, '\\|').slice(0, 60);
  const ends = new Set(c.connections.map((k) => k.endedBy));
  // The most telling of its connections' ends: the kernel's or the client's doing over the rest.
  const order: [string, string][] = [
    ['kernel', 'ended by the kernel'],
    ['client', 'ended by the client'],
    ['other', 'not as the kernel allows'],
    ['held', 'still open'],
    ['brief', 'too brief for the fault to hold'],
    ['before-fault', 'over before the fault struck'],
  ];
  const who = c.connections.length === 0 ? 'no connection seen' : (order.find(([k]) => ends.has(k))?.[1] ?? [...ends].join(', '));
  const n = c.connections.length > 1 ? ` (${c.connections.length} connections)` : '';
  const end = c.timedOut ? 'killed by the harness' : `exit ${c.exitCode ?? c.signal}`;
  const untouched = r.checks.some((k) => /the fault fired/.test(k.name) && !k.pass);
  const mark = r.verdict === 'pass' ? '' : untouched ? ' — the fault never touched it' : ' ✗';
  return `${said ? `${said}, ` : ''}${end} after ${(c.durationMs / 1000).toFixed(1)} s — ${who}${n}${mark}`;
}

async function main(): Promise<void> {
  await assertRoot();
  const jobs = CLIENTS.flatMap((client) => COLUMNS.map((column) => ({ client, column })));
  const results = new Map<string, Result>();
  // Four at a time: eight state watchers keep well inside two cores.
  for (let i = 0; i < jobs.length; i += 4) {
    await Promise.all(
      jobs.slice(i, i + 4).map(async ({ client, column }) => {
        const spec: ClientSpec = { argv: client.argv, timeoutMs: 30_000, ...(column.strikes ? { strike: { kind: 'at', ms: STRIKE_AT_MS } } : {}) };
        const r = await execute(await prepare({ scenario: column.scenario, ...(column.params ? { params: column.params } : {}), target: 'nginx', client: spec }));
        results.set(`${client.name}|${column.name}`, r);
        process.stderr.write(`${column.name.padEnd(11)} ${client.name}: ${cell(r)}\n`);
      }),
    );
  }
  const head = `| client | ${COLUMNS.map((c) => c.name).join(' | ')} |\n|---|${COLUMNS.map(() => '---').join('|')}|`;
  const rows = CLIENTS.map((c) => `| ${c.name} | ${COLUMNS.map((col) => cell(results.get(`${c.name}|${col.name}`)!)).join(' | ')} |`);
  const table = `${head}\n${rows.join('\n')}`;
  process.stdout.write(`${table}\n`);
  if (process.argv.includes('--write-readme')) {
    const text = await readFile('README.md', 'utf8');
    await writeFile('README.md', replaceSection(text, 'clients', table));
    process.stderr.write('README.md: clients table regenerated\n');
  }
}

await main();
