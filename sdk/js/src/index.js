// SPDX-License-Identifier: Apache-2.0
/**
 * sluice-stage: write sluice pipeline stages in JavaScript.
 *
 * ```js
 * import { defineStage, s, report, Gate, finding, log } from './sluice-stage/index.js';
 *
 * export const plugin = defineStage({
 *   name: 'todo-check', version: '0.1.0', kind: 'lint',
 *   description: 'Counts TODO markers.',
 *   config: s.object({ include: s.array(s.string()).default(['**\/*.md']) }),
 *   capabilities: ['workspace-read'],
 *   run(ctx) {
 *     const files = ctx.workspace.find(ctx.config.include);
 *     log.info('checking', { files: files.length });
 *     return report(`${files.length} file(s)`).metric('todo.files', files.length);
 *   },
 * });
 * ```
 *
 * Build it into a component with componentize-js against WIT
 * `sluice:stage@0.2.0` (world `stage`); test its logic natively with
 * `testing.js` (a fake host).
 * @module
 */
// The component's host (the WIT imports); a native test replaces it.
import './wit-host.js';

export { defineStage } from './stage.js';
export { Context, INPUTS_DIR, OUTPUTS_DIR } from './context.js';
export { s, Schema, camelCase } from './schema.js';
export { Report, report, Gate, Finding, finding, role, toRole, MAX_FINDINGS } from './report.js';
export { log, progress } from './log.js';
export { isCancelled, checkCancelled } from './cancel.js';
export { exec, run, spawn, output, tee, commandLine, ExecOutput, ExitStatus, Process, OutputReader } from './exec.js';
export { secrets } from './secrets.js';
export { Workspace, Snapshot, checkPattern, matches, WORKSPACE_DIR } from './workspace.js';
export {
  StageError, Denied, ConfigError, NotFound, ExecError, ExecFailed, Cancelled, capability, toCapability, grantFor,
} from './errors.js';
