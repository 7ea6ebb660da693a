/**
 * The library: run scenarios from code, define faults and targets of your own.
 *
 *   import { runScenario } from 'harness';
 *   const r = await runScenario({ scenario: 'syn-drop' });
 */
export { runScenario, prepare, execute, newRunId, type RunRequest, type RunEnv, type PreparedRun } from './engine/runner.js';
export { Session } from './core/session.js';
export type { Result, StepResult, StateSample, Check, Verdict } from './verdict/result.js';
export { evaluate } from './verdict/checks.js';
export { HarnessError, UsageError, EnvironmentError, CommandError } from './core/errors.js';
export { createLogger } from './core/log.js';
export { gcCommand as gc } from './commands/gc.js';
export { doctorChecks } from './commands/doctor.js';
export { faults, type FaultName } from '../faults/index.js';
export { defineFault, type FaultDefinition, type Expectation, type FaultContext, type Trigger } from '../faults/define.js';
export { planRules, ruleSpec, type Rule } from '../faults/iptables.js';
export { faultContext } from '../faults/context.js';
export { builtinTargets } from '../targets/index.js';
export type { TargetSpec, StartedTarget, TargetContext } from '../targets/target.js';
export * as model from './model/tcp.js';
export { asBlocking, type ClientStep } from './core/probe.js';
export type { Calibration, CalibrationReport } from './model/calibration.js';
