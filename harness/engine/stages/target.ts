/** Stages `target` and `sysctls`: bring the target up, with every side's sysctls in force before its server listens. */
import { assertNotHost } from '../../core/netns.js';
import { applySysctls, readSysctls, SIDES, type SidedSysctls } from '../../core/sysctl.js';
import type { RunState } from '../run-state.js';

export async function startTarget(s: RunState): Promise<void> {
  const { p, journal } = s;
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
      await applySysctls(journal, ns, p.sysctls[side]);
      s.configured.add(side);
    },
  });
  s.ns = { client: s.target.client, server: s.target.server };
  await Promise.all(SIDES.map((side) => assertNotHost(s.ns![side])));
}

/** A target that did not call configureNetns (a user's own TargetSpec) gets its sysctls now; then every value is read back. */
export async function configureSysctls(s: RunState): Promise<void> {
  const ns = s.ns!;
  for (const side of SIDES) if (!s.configured.has(side)) await applySysctls(s.journal, ns[side], s.p.sysctls[side]);
  const inForce = {} as SidedSysctls;
  for (const side of SIDES) {
    const keys = [...new Set([...Object.keys(s.p.sysctls[side]), ...(s.p.fault.shapedBy[side] ?? [])])];
    inForce[side] = await readSysctls(ns[side], keys);
  }
  s.sysctls = inForce;
}
