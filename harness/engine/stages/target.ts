/** Stages `target` and `sysctls`: bring the target up, with every side's sysctls in force before its server listens. */
import { assertNotHost } from '../../core/netns.js';
import { applySysctls, SIDES, type Side, type SidedSysctls } from '../../core/sysctl.js';
import type { RunState } from '../run-state.js';
import { startCalibration } from './calibrate.js';

/** The sysctls the run reads back on `side`: those it sets and those that shape the fault's model. */
function modelKeys(s: RunState, side: Side): string[] {
  return [...new Set([...Object.keys(s.p.sysctls[side]), ...(s.p.fault.shapedBy[side] ?? [])])];
}

export async function startTarget(s: RunState): Promise<void> {
  const { p, journal } = s;
  startCalibration(s);
  s.log.info({ target: p.target.name }, 'starting target');
  s.target = await p.target.start({
    runId: p.runId,
    journal,
    log: s.log,
    server: p.fault.server(p.params),
    ...(p.port !== undefined ? { port: p.port } : {}),
    // listen() reads somaxconn only then: the server side's sysctls go in before its server starts.
    configureNetns: async (side, ns) => {
      await assertNotHost(ns);
      s.inForce[side] = await applySysctls(journal, ns, p.sysctls[side], modelKeys(s, side));
    },
  });
  s.ns = { client: s.target.client, server: s.target.server };
  await Promise.all(SIDES.map((side) => assertNotHost(s.ns![side])));
}

/** A target that did not call configureNetns (a user's own TargetSpec) gets its sysctls now; every value in force is known after. */
export async function configureSysctls(s: RunState): Promise<void> {
  const read = await Promise.all(SIDES.map(async (side) => s.inForce[side] ?? (await applySysctls(s.journal, s.ns![side], s.p.sysctls[side], modelKeys(s, side)))));
  s.sysctls = Object.fromEntries(SIDES.map((side, i) => [side, read[i]!])) as SidedSysctls;
}
