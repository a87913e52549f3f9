// SPDX-License-Identifier: Apache-2.0
/**
 * {@link defineStage}: a stage's description and `run`, as the
 * `sluice:stage/plugin@0.2.0` export.
 * @module
 */
import { StageError, toCapability } from './errors.js';
import { Context } from './context.js';
import { Report } from './report.js';
import { Schema, s } from './schema.js';
import { write } from './log.js';

const KINDS = new Set(['lint', 'test', 'scan', 'build', 'deploy', 'smoke', 'canary', 'monitor', 'remediate']);

/** The WIT `stage-kind` for `kind` (a known kind or a custom lowercase, dash-separated name). */
function toKind(kind) {
  if (KINDS.has(kind)) return { tag: kind };
  if (typeof kind === 'string' && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(kind)) return { tag: 'custom', val: kind };
  throw new TypeError(`defineStage: kind ${JSON.stringify(kind)}: use one of ${[...KINDS].join(', ')} or a lowercase, dash-separated name`);
}

/** The message of anything thrown: an Error's message (with its class unless plain `Error`), else its text. */
function messageOf(e) {
  if (e instanceof Error) return e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}

/**
 * `e` as a {@link StageError} carrying the WIT `stage-error` in `payload`,
 * which is what componentize-js lowers into the `err` of `run`'s result.
 */
function toThrowable(e) {
  let se = e;
  if (!(e instanceof StageError)) {
    se = StageError.failed(messageOf(e) || 'run threw an empty error');
    if (e instanceof Error && e.stack) {
      try {
        write('debug', 'stack of the error', { stack: e.stack });
      } catch {
        // No host to log to: the message is still returned.
      }
    }
  }
  se.payload = se.toWit();
  return se;
}

/**
 * @template C
 * @typedef {object} StageDefinition
 * @property {string} name short name, e.g. `package-policy`
 * @property {string} version the stage's own version (semver)
 * @property {string} [kind] `lint`, `test`, `scan`, `build`, `deploy`, `smoke`, `canary`, `monitor`, `remediate` or your own (default `lint`)
 * @property {string} [description] one sentence on what it does
 * @property {Schema<C>} [config] the `with:` block (default: no keys)
 * @property {Array<import('./errors.js').Capability | string>} [capabilities] what it may use: `'workspace-read'`, `'exec:git'`, ...
 * @property {(ctx: Context<C>) => Report | string} run does the work; throw a {@link StageError} (or anything) to fail
 */

/**
 * Defines a stage. Export the result as `plugin`:
 *
 * ```js
 * export const plugin = defineStage({
 *   name: 'hello', version: '0.1.0', kind: 'lint',
 *   config: s.object({ greeting: s.string().default('hello') }),
 *   capabilities: ['workspace-read'],
 *   run(ctx) {
 *     log.info(ctx.config.greeting);
 *     return report('said hello').metric('hello.count', 1);
 *   },
 * });
 * ```
 *
 * `run` gets a {@link Context} whose `config` is validated (a bad `with:`
 * fails the stage as `invalid-config` naming the key) and returns a
 * {@link Report} (or a summary string). Whatever it throws fails the stage:
 * a {@link StageError} with its kind (`Denied` → `denied(capability)`), any
 * other error as `failed` with its message.
 * @template C
 * @param {StageDefinition<C>} def
 * @returns {{ describe(): object, run(ctx: object): object }} the `plugin` export
 */
export function defineStage(def) {
  if (!def || typeof def !== 'object') throw new TypeError('defineStage: give { name, version, run, ... }');
  for (const k of ['name', 'version']) {
    if (typeof def[k] !== 'string' || def[k] === '') throw new TypeError(`defineStage: \`${k}\` must be a non-empty string`);
  }
  if (typeof def.run !== 'function') throw new TypeError('defineStage: `run` must be a function (ctx) => Report');
  const config = def.config ?? s.object({});
  if (!(config instanceof Schema) || config.type !== 'object') throw new TypeError('defineStage: `config` must be s.object({...})');
  const info = {
    name: def.name,
    version: def.version,
    kind: toKind(def.kind ?? 'lint'),
    description: def.description ?? '',
    configSchema: JSON.stringify(config.jsonSchema()),
    capabilities: (def.capabilities ?? []).map(toCapability),
  };
  return {
    describe: () => info,
    run(witCtx) {
      try {
        let raw;
        try {
          raw = JSON.parse(witCtx.config && witCtx.config.trim() ? witCtx.config : '{}');
        } catch (e) {
          throw StageError.invalidConfig(`with: is not valid JSON: ${messageOf(e)}`);
        }
        const declared = new Report('');
        const ctx = new Context(witCtx, config.parse(raw, 'with'), declared);
        let out = def.run(ctx);
        if (out && typeof out.then === 'function') {
          throw StageError.failed('run returned a Promise: a stage runs synchronously (the host calls are blocking); drop `async`');
        }
        if (typeof out === 'string') out = new Report(out);
        if (!(out instanceof Report)) throw StageError.failed('run must return a Report (report(summary)...) or a summary string');
        // Files written with ctx.writeArtifact are described unless the
        // report describes them itself.
        for (const a of declared.artifacts) {
          if (!out.artifacts.some((b) => b.path === a.path)) out.artifacts.push(a);
        }
        return out.toWit();
      } catch (e) {
        throw toThrowable(e);
      }
    },
  };
}
