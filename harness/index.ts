/**
 * The library: run scenarios from code, define faults and targets of your own.
 *
 *   import { runScenario } from '@netfault/harness';
 *   const r = await runScenario({ scenario: 'syn-drop' });            // the probe's own script
 *   const c = await runScenario({                                     // your client under the fault
 *     scenario: 'syn-drop',
 *     client: { argv: ['curl', '-sS', '--connect-timeout', '2', 'http://{host}:{port}/'] },
 *   });
 *   c.client?.exitCode; c.client?.connections[0]?.endedBy;          // 28, 'client'
 *
 * For vitest: '@netfault/harness/testing' (a fixture that always reverts, and matchers).
 */
export { runScenario, prepare, execute, newRunId, type RunRequest, type RunEnv, type PreparedRun } from './engine/runner.js';
export { Session } from './core/session.js';
export type { Result, StepResult, StateSample, Check, Verdict, ClientResult } from './verdict/result.js';
export type { ClientSpec, Strike } from './engine/client-spec.js';
export type { ClientExpect } from './verdict/client.js';
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
export type { TargetSpec, StartedTarget, TargetContext, TargetTraits } from '../targets/target.js';
export * as model from './model/tcp.js';
export { asBlocking, type ClientStep } from './core/probe.js';
export type { Calibration, CalibrationReport } from './model/calibration.js';
export { writeRunPage, writeIndex, renderRunPage, loadSequence } from './report/html.js';
export { junitXml, writeJunit } from './report/junit.js';
