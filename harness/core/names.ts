/**
 * The exact names the harness gives what it makes (DESIGN §5). `harness gc` and the journal's
 * validator match against these, never against a loose prefix: something merely *called*
 * `harness-…` is not the harness's to delete.
 */

/** A runId: 6 base-36 characters (engine/runner.ts newRunId), short enough for 15-char interface names. */
export const RUN_ID = /^[0-9a-z]{6}$/;

/**
 * Namespaces of a run: target and client; `n`, the named nursery of earlier versions (now a
 * nameless namespace of the `harness-probe nursery` process), stays known so gc removes old leftovers.
 */
export const NETNS_ROLES = ['t', 'c', 'n'] as const;

const NETNS_NAME = /^harness-([0-9a-z]{6})-([tcn])$/;

export function isRunId(s: string): boolean {
  return RUN_ID.test(s);
}

/** The runId of a namespace name in the exact format the harness makes, or undefined. */
export function runIdOfNetns(name: string): string | undefined {
  return NETNS_NAME.exec(name)?.[1];
}

/** Docker objects of a run: containers `harness-<runId>-<role>`, the network `harness-<runId>`. */
/** `cli`: the user's own client command run from `--client-image` in the client holder's namespace. */
export const CONTAINER_ROLES = ['pod', 'target', 'client', 'cli'] as const;
export type ContainerRoleName = (typeof CONTAINER_ROLES)[number];

export function dockerObjectName(runId: string, role: ContainerRoleName | 'network'): string {
  return role === 'network' ? `harness-${runId}` : `harness-${runId}-${role}`;
}
