/** Built-in targets, by name. `--target` picks one (or one from the config file). */
import { builtinContainerTargets } from './container.js';
import { builtinTarget } from './netns.js';
import type { TargetSpec } from './target.js';

export const DEFAULT_TARGET = 'builtin';

export const builtinTargets: Record<string, TargetSpec> = {
  builtin: builtinTarget('builtin', "the probe's server in the mode the fault wants (echo unless the fault needs another)"),
  echo: builtinTarget('echo', 'echoes every byte back', 'echo'),
  'no-accept': builtinTarget('no-accept', 'listens with the given backlog and never accepts', 'no-accept'),
  'no-close': builtinTarget('no-close', 'accepts and reads, never closes', 'no-close'),
  sink: builtinTarget('sink', 'accepts, never reads, never closes', 'sink'),
  // Container targets (nginx, redis, probe-echo, probe-container): need Docker and `harness images build`.
  ...builtinContainerTargets(),
};
