/**
 * Stage `calibrate` (before the model derives its windows) and stage `judge` (after the checks):
 * how late this machine wakes the probe up, measured in a namespace of the probe's own. The first widens
 * every window by what it saw; the second, only after a failed check, looks again and turns the
 * verdict into `inconclusive` when the machine was too loaded to judge the kernel, or when every
 * failed check is an event late by no more than the lateness it measures then.
 */
import { OWN_NETNS, runProbeClient } from '../../core/probe.js';
import { CALIBRATION_SAMPLES, CALIBRATION_SLEEP_US, calibrationReport, type Calibration } from '../../model/calibration.js';
import { kernelFacts } from '../../core/kernel.js';
import { evaluateRun, type RunState } from '../run-state.js';
import { expectationOn } from './fault.js';

/**
 * The calibrate step only sleeps: it opens no socket, so the probe needs no peer and no namespace
 * of the run — it runs in one of its own (OWN_NETNS), never in the host's.
 */
const NO_PEER = { address: '127.0.0.1', port: 9 };

async function measure(s: RunState): Promise<Calibration> {
  const out = await runProbeClient(OWN_NETNS, NO_PEER.address, NO_PEER.port, [{ op: 'calibrate', samples: CALIBRATION_SAMPLES, sleepUs: CALIBRATION_SLEEP_US }], { signal: s.signal });
  const late = out.steps[0]?.late;
  if (!late || !late.samples) return { samples: 0, sleepMs: CALIBRATION_SLEEP_US / 1000, medianMs: 0, p90Ms: 0, maxMs: 0 };
  const ms = (us: number) => Math.round(us) / 1000;
  return { samples: late.samples, sleepMs: late.sleepUs / 1000, medianMs: ms(late.medianUs), p90Ms: ms(late.p90Us), maxMs: ms(late.maxUs) };
}

/**
 * Starts measuring when the run starts, while the target comes up (namespaces, veth, server, the
 * watcher): the stage `calibrate` then only waits for it. The lateness it sees includes that work
 * on the machine: if anything, windows a little wider.
 */
export function startCalibration(s: RunState): void {
  if (s.calibrating) return;
  s.calibrating = measure(s);
  // Awaited in the stage; a run that breaks before it must not leave a rejection unhandled.
  s.calibrating.catch(() => undefined);
}

export async function calibrate(s: RunState): Promise<void> {
  const before = await (s.calibrating ?? measure(s));
  s.calibration = calibrationReport(before, undefined, await kernelFacts());
  s.log.info({ calibration: s.calibration }, 'calibrated wake-up lateness');
}

/** After a failed check: was the machine too loaded to tell a kernel that is wrong from a late wake-up? */
export async function judge(s: RunState): Promise<void> {
  if (s.verdict !== 'fail' || !s.calibration) return;
  const after = await measure(s);
  s.calibration = calibrationReport(s.calibration.before, after, await kernelFacts());
  weigh(s);
}

/** The judgement itself, once the second calibration is in `s.calibration.after` (pure: unit-tested). */
export function weigh(s: RunState): void {
  const after = s.calibration?.after;
  if (!s.calibration || !after) return;
  if (s.calibration.loaded) {
    s.verdict = 'inconclusive';
    s.log.warn({ calibration: s.calibration }, 'a check failed on a machine too loaded to judge: inconclusive');
    return;
  }
  // Every failure an event that came late by no more than the wake-up lateness measured now, or
  // than the fault's own process (the delayer) released a packet late during the run: the window
  // allowed for the lateness seen at the start, the machine got slower since, and a late wake-up
  // (of the probe, or of the harness's own delayer) cannot be told from a late kernel.
  const apparatusMs = apparatusLateMs(s.processReports ?? []);
  const budgetMs = Math.max(after.maxMs, apparatusMs);
  const failed = (s.checks ?? []).filter((c) => !c.pass);
  if (failed.length && failed.every((c) => c.lateByMs !== undefined && c.lateByMs <= budgetMs)) {
    s.verdict = 'inconclusive';
    s.log.warn(
      { calibration: s.calibration, apparatusLateMs: apparatusMs, late: failed.map((c) => ({ check: c.name, lateByMs: c.lateByMs })) },
      'every failed check is late by no more than the wake-up lateness measured after it, or than the delayer released a packet late: inconclusive',
    );
    return;
  }
  // A lateness measured during the run above the one the windows allowed for: what the model says
  // on a machine that late. The delayer's late holds go into the kernel's own numbers (an RTT
  // sample, the RTO derived from it), which no window edge shows directly. If every check holds
  // then, the kernel cannot be told from the machine: inconclusive. (Never a pass: the windows
  // were widened after the fact. Runs of the user's own client are judged on their connections.)
  const allowed = s.ctx?.clock.lateMs ?? 0;
  if (!s.p.client && s.ctx && s.expected && budgetMs > allowed) {
    const { ctx, expected } = expectationOn(s, { ...s.ctx.clock, lateMs: budgetMs });
    const again = evaluateRun(s, expected, ctx);
    if (again.verdict === 'pass') {
      s.verdict = 'inconclusive';
      s.log.warn(
        { calibration: s.calibration, apparatusLateMs: apparatusMs, allowedMs: allowed, failed: failed.map((c) => c.name) },
        `every check holds for a machine ${budgetMs.toFixed(1)} ms late, as measured during the run (the windows allowed ${allowed.toFixed(1)} ms): inconclusive`,
      );
    }
  }
}

/** The latest a fault's own process (the delayer: `lateUsMax` in its stats) released a packet past its due time, ms. */
export function apparatusLateMs(reports: readonly { report?: Record<string, unknown> | undefined }[]): number {
  let ms = 0;
  for (const r of reports) {
    const late = r.report?.['lateUsMax'];
    if (typeof late === 'number' && late > 0) ms = Math.max(ms, late / 1000);
  }
  return ms;
}
