// SPDX-License-Identifier: Apache-2.0
/**
 * Node.js module hooks for native tests: `sluice:*` and `wasi:*` imports
 * (which only exist inside a component) resolve to stand-ins whose
 * functions and classes throw when used, so a stage's module graph loads
 * under `node --test`; `testing.js` then installs a fake host for the SDK.
 * The names each interface exports are read from the generated
 * declarations in `wit-types/`. Registered by `register.js`.
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';

const PREFIX = 'sluice-wit:';

/** @type {Map<string, { functions: Set<string>, classes: Set<string> }> | null} */
let interfaces = null;

/** Every interface's exported functions and classes, from `wit-types/interfaces/*.d.ts`. */
function exportsOf(spec) {
  if (!interfaces) {
    interfaces = new Map();
    const dir = new URL('./wit-types/interfaces/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      for (const block of text.split(/^declare module /m).slice(1)) {
        const name = /^'([^']+)'/.exec(block)?.[1];
        if (!name) continue;
        const functions = new Set([...block.matchAll(/^ {2}export function (\w+)/gm)].map((m) => m[1]));
        const classes = new Set([...block.matchAll(/^ {2}export class (\w+)/gm)].map((m) => m[1]));
        interfaces.set(name, { functions, classes });
      }
    }
  }
  return interfaces.get(spec) ?? { functions: new Set(), classes: new Set() };
}

/** Resolves `sluice:` and `wasi:` specifiers to stand-ins. */
export async function resolve(specifier, context, next) {
  if (/^(sluice|wasi):/.test(specifier)) return { url: PREFIX + specifier, shortCircuit: true };
  return next(specifier, context);
}

/** Loads a stand-in: a throwing function or class per export of the interface. */
export async function load(url, context, next) {
  if (!url.startsWith(PREFIX)) return next(url, context);
  const spec = url.slice(PREFIX.length);
  const { functions, classes } = exportsOf(spec);
  const why = (name) => JSON.stringify(`${spec}#${name} exists only inside a sluice component; test the stage with runStage() from sluice-stage/testing.js`);
  const source = [
    ...[...functions].map((n) => `export function ${n}() { throw new Error(${why(n)}); }`),
    ...[...classes].map((n) => `export class ${n} { constructor() { throw new Error(${why(n)}); } }`),
  ].join('\n');
  return { format: 'module', source, shortCircuit: true };
}
