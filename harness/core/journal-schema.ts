/**
 * The shapes of a journal, exactly as the engine writes them, so that `harness gc` replays only
 * those. A revert is one of:
 *
 *   argv    `nsenter --net=<ns> -- iptables -w N -D|-X …` or `… -- sysctl -q -w net.KEY=NUMBERS`,
 *           where <ns> is one of the run's own namespaces (`/run/netns/harness-<runId>-t|c`) or a
 *           container's (`/proc/<pid>/ns/net`), and an iptables revert only touches the run's chain
 *           or a rule carrying the run's comment (faults/iptables.ts planRules, core/sysctl.ts);
 *   netns   delete `harness-<runId>-t|c|n` (targets/netns.ts);
 *   kill    SIGKILL a pid, only while its start time still matches (observers, targets);
 *   thaw    SIGCONT the process group of a frozen server, only while its leader's start time still
 *           matches or the leader is gone (targets/freeze.ts);
 *   docker  remove `harness-<runId>-pod|target|client` or the network `harness-<runId>`, or
 *           (`op: 'unpause'`) unpause the run's target container after a freeze (targets/container.ts).
 *
 * Anything else, or a name of another run, makes the whole journal refused: a hand-edited or
 * planted journal is reported, never run. A new kind of revert in the engine needs its shape here.
 */
import { z } from 'zod';
import { CONTAINER_ROLES, dockerObjectName, RUN_ID } from './names.js';

const argvRevert = z.strictObject({
  kind: z.literal('argv'),
  argv: z.array(z.string().max(512)).min(1).max(64),
  /** Regex on the revert's stderr that means "already undone". */
  absent: z.string().max(300).optional(),
  /** The change is moot once this namespace is gone. */
  netnsPath: z.string().max(200).optional(),
  /** Standard input of the revert (an iptables-restore batch: checked line by line below). */
  input: z.string().max(65_536).optional(),
});
const netnsRevert = z.strictObject({ kind: z.literal('netns'), name: z.string().max(64) });
const killRevert = z.strictObject({
  kind: z.literal('kill'),
  pid: z.number().int().min(2).max(4_194_304),
  /** Clock ticks since boot (/proc/PID/stat field 22) when the pid was recorded: required. */
  startTicks: z.string().regex(/^\d{1,20}$/, 'a kill needs the start time of the process it means'),
});
/**
 * A frozen server (targets/freeze.ts): SIGCONT to the process group whose leader is `pid`, sent
 * only while that pid still has this start time, or when it is gone (members of its group may
 * remain, stopped: the number stays their group id, so it cannot have been reused).
 */
const thawRevert = z.strictObject({
  kind: z.literal('thaw'),
  pid: z.number().int().min(2).max(4_194_304),
  startTicks: z.string().regex(/^\d{1,20}$/, 'a thaw needs the start time of the process group leader it means'),
});
const dockerRevert = z.strictObject({
  kind: z.literal('docker'),
  object: z.enum(['container', 'network']),
  id: z.string().max(128),
  /** Absent: remove the object. `unpause`: thaw the run's frozen target container (docker pause). */
  op: z.literal('unpause').optional(),
});

export const revertSchema = z.discriminatedUnion('kind', [argvRevert, netnsRevert, killRevert, thawRevert, dockerRevert]);

/** How to undo one change. Each kind knows when there is nothing left to undo. */
export type Revert = z.infer<typeof revertSchema>;

export const journalEntrySchema = z.strictObject({
  seq: z.number().int().min(0),
  describe: z.string().max(1000),
  revert: revertSchema,
  done: z.boolean(),
});
export type JournalEntry = z.infer<typeof journalEntrySchema>;

export const journalFileSchema = z
  .strictObject({
    version: z.literal(1),
    runId: z.string().regex(RUN_ID, 'not a runId the harness makes'),
    pid: z.number().int().min(1),
    /** Start time of the writer (absent in journals of older versions). */
    startTicks: z.string().regex(/^\d{1,20}$/).optional(),
    startedAt: z.string().max(40),
    entries: z.array(journalEntrySchema).max(2000),
  })
  .superRefine((f, ctx) => {
    f.entries.forEach((e, i) => {
      const problem = revertProblem(e.revert, f.runId);
      if (problem) ctx.addIssue({ code: 'custom', path: ['entries', i, 'revert'], message: problem });
    });
  });
export type JournalFile = z.infer<typeof journalFileSchema>;

const IPTABLES_OPS = new Set(['-D', '-X']);
const SYSCTL_KEY = /^net\.[a-z0-9_]+(\.[a-z0-9_-]+)+$/;
const SYSCTL_VALUE = /^-?\d+( -?\d+)*$/;

/** Why `revert` is not a shape the engine writes for run `runId`, or undefined. Pure. */
export function revertProblem(revert: Revert, runId: string): string | undefined {
  switch (revert.kind) {
    case 'netns':
      return new RegExp(`^harness-${runId}-[tcn]$`).test(revert.name) ? undefined : `namespace "${revert.name}" is not one of run ${runId}'s`;
    case 'kill':
    case 'thaw':
      return undefined;
    case 'docker': {
      if (revert.op === 'unpause') {
        const target = dockerObjectName(runId, 'target');
        return revert.object === 'container' && revert.id === target ? undefined : `docker unpause of "${revert.id}": only run ${runId}'s target container (${target}) is ever paused`;
      }
      const ours = revert.object === 'network' ? [dockerObjectName(runId, 'network')] : CONTAINER_ROLES.map((r) => dockerObjectName(runId, r));
      return ours.includes(revert.id) ? undefined : `docker ${revert.object} "${revert.id}" is not one of run ${runId}'s`;
    }
    case 'argv':
      return argvProblem(revert, runId);
  }
}

function argvProblem(revert: z.infer<typeof argvRevert>, runId: string): string | undefined {
  const ns = revert.netnsPath;
  if (!ns) return 'an argv revert must name the namespace it acts in (netnsPath)';
  if (!new RegExp(`^/run/netns/harness-${runId}-[tc]$`).test(ns) && !/^\/proc\/\d{1,10}\/ns\/net$/.test(ns)) {
    return `namespace path "${ns}" is neither one of run ${runId}'s nor a container's`;
  }
  const [nsenter, net, dashes, cmd, ...args] = revert.argv;
  if (nsenter !== 'nsenter' || net !== `--net=${ns}` || dashes !== '--') return `argv must start with: nsenter --net=${ns} --`;
  if (revert.absent !== undefined) {
    try {
      new RegExp(revert.absent);
    } catch {
      return '"absent" is not a regular expression';
    }
  }
  if (revert.input !== undefined && cmd !== 'iptables-restore') return 'only an iptables-restore revert has input';
  if (cmd === 'sysctl') {
    // core/sysctl.ts applySysctls: one revert restores every key a side changed.
    const [q, w, ...kvs] = args;
    if (q !== '-q' || w !== '-w' || kvs.length === 0) return 'a sysctl revert is: sysctl -q -w KEY=VALUE…';
    for (const kv of kvs) {
      const eq = kv.indexOf('=');
      if (eq < 0) return 'a sysctl revert is: sysctl -q -w KEY=VALUE…';
      if (!SYSCTL_KEY.test(kv.slice(0, eq))) return `sysctl key "${kv.slice(0, eq)}" is not a net.* key`;
      if (!SYSCTL_VALUE.test(kv.slice(eq + 1))) return `sysctl value "${kv.slice(eq + 1)}" is not numeric`;
    }
    return undefined;
  }
  if (cmd === 'iptables-restore') return restoreProblem(args, revert.input, runId);
  if (cmd === 'tc') {
    // faults/tc.ts planQdiscs: deleting the root qdisc the run added on an interface of its namespace.
    const [q, del, dev, ifname, root, handle, h, ...more] = args;
    const ok = q === 'qdisc' && del === 'del' && dev === 'dev' && /^[A-Za-z0-9_.@-]{1,15}$/.test(ifname ?? '') && root === 'root' && handle === 'handle' && /^[0-9a-f]{1,4}:$/.test(h ?? '') && more.length === 0;
    return ok ? undefined : 'a tc revert is: tc qdisc del dev IFACE root handle N:';
  }
  if (cmd === 'iptables') {
    const [w, wait, op, chain, ...spec] = args;
    if (w !== '-w' || !/^\d{1,3}$/.test(wait ?? '') || !IPTABLES_OPS.has(op ?? '')) return 'an iptables revert is: iptables -w N -D|-X …';
    const runChains = [`harness-${runId}-in`, `harness-${runId}-out`];
    if (op === '-X') return spec.length === 0 && runChains.includes(chain ?? '') ? undefined : `iptables -X may only delete run ${runId}'s chains`;
    if (!['INPUT', 'OUTPUT', ...runChains].includes(chain ?? '')) return `iptables -D in chain "${chain}" is not one the run uses`;
    const c = spec.indexOf('--comment');
    const comment = c >= 0 ? spec[c + 1] ?? '' : '';
    if (comment !== `harness:${runId}` && !comment.startsWith(`harness:${runId}:`)) return `iptables -D of a rule without run ${runId}'s comment`;
    return undefined;
  }
  return `command "${cmd}" is not one the harness reverts with`;
}

/**
 * faults/iptables.ts batchRules' revert: `iptables-restore -w N --noflush` whose input only
 * deletes the run's jumps and flushes and deletes the run's chains.
 */
function restoreProblem(args: readonly string[], input: string | undefined, runId: string): string | undefined {
  const [w, wait, noflush, ...more] = args;
  if (w !== '-w' || !/^\d{1,3}$/.test(wait ?? '') || noflush !== '--noflush' || more.length) return 'an iptables-restore revert is: iptables-restore -w N --noflush';
  if (input === undefined) return 'an iptables-restore revert needs its input';
  const chains = [`harness-${runId}-in`, `harness-${runId}-out`];
  const lines = input.split('\n').filter((l) => l !== '');
  if (lines[0] !== '*filter' || lines.at(-1) !== 'COMMIT') return 'an iptables-restore revert is one *filter … COMMIT table';
  for (const l of lines.slice(1, -1)) {
    const jump = /^-D (INPUT|OUTPUT) -m comment --comment (\S+) -j (\S+)$/.exec(l);
    if (jump) {
      if (jump[2] !== `harness:${runId}` || !chains.includes(jump[3]!)) return `iptables-restore line "${l}" is not a jump of run ${runId}`;
      continue;
    }
    const fx = /^-[FX] (\S+)$/.exec(l);
    if (fx && chains.includes(fx[1]!)) continue;
    return `iptables-restore line "${l}" is not one a revert of run ${runId} makes`;
  }
  return undefined;
}

/** One line saying which entry is wrong and how. */
export function describeIssue(raw: unknown, err: z.ZodError): string {
  const issue = err.issues[0]!;
  const [top, index] = issue.path;
  if (top === 'entries' && typeof index === 'number') {
    const entry = (raw as { entries?: { describe?: unknown }[] }).entries?.[index];
    const what = typeof entry?.describe === 'string' ? ` (${entry.describe.slice(0, 80)})` : '';
    return `entry ${index}${what}: ${issue.path.slice(2).join('.') || 'entry'}: ${issue.message}`;
  }
  return `${issue.path.join('.') || 'file'}: ${issue.message}`;
}
