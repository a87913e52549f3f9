// SPDX-License-Identifier: Apache-2.0
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { s } from '../src/schema.js';
import { ConfigError } from '../src/errors.js';

const config = s.object({
  name: s.string().describe('who'),
  retries: s.integer({ minimum: 0, maximum: 10 }).default(3),
  ratio: s.number().optional(),
  mode: s.enum(['warn', 'fail']).default('fail'),
  'pin-versions': s.boolean().default(false),
  files: s.array(s.string()).optional(),
  nested: s.object({ depth: s.integer() }).optional(),
});

/** The message of the ConfigError `f` throws. */
function problem(f) {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
    assert.equal(e.kind, 'invalid-config');
    return e.message;
  }
  assert.fail('no error');
}

test('valid config: defaults filled in, keys in camelCase', () => {
  assert.deepEqual(config.parse({ name: 'x', 'pin-versions': true, files: ['a'] }), {
    name: 'x', retries: 3, ratio: undefined, mode: 'fail', pinVersions: true, files: ['a'], nested: undefined,
  });
});

test('bad types name the key and what was given', () => {
  assert.equal(problem(() => config.parse({ name: 3 })), 'with.name: expected a string, got number 3');
  assert.equal(problem(() => config.parse({ name: 'x', retries: 'x' })), 'with.retries: expected a whole number, got string "x"');
  assert.equal(problem(() => config.parse({ name: 'x', retries: 1.5 })), 'with.retries: expected a whole number, got number 1.5');
  assert.equal(problem(() => config.parse({ name: 'x', 'pin-versions': 'yes' })), 'with.pin-versions: expected true or false, got string "yes"');
  assert.equal(problem(() => config.parse({ name: 'x', files: 'a.json' })), 'with.files: expected a list, got string "a.json"');
  assert.equal(problem(() => config.parse({ name: 'x', files: ['a', 3] })), 'with.files[1]: expected a string, got number 3');
  assert.equal(problem(() => config.parse({ name: 'x', nested: { depth: null } })), 'with.nested.depth: expected a whole number, got null');
  assert.equal(problem(() => config.parse([])), 'with: expected a mapping, got a list');
});

test('ranges and enums', () => {
  assert.equal(problem(() => config.parse({ name: 'x', retries: 11 })), 'with.retries: must be at most 10, got 11');
  assert.equal(problem(() => config.parse({ name: 'x', mode: 'loud' })), 'with.mode: must be one of "warn", "fail", got string "loud"');
});

test('unknown keys are refused with a suggestion and the known keys', () => {
  const m = problem(() => config.parse({ name: 'x', 'pin-version': true }));
  assert.match(m, /^with\.pin-version: unknown key; did you mean `pin-versions`\? known keys: name, retries/);
  assert.match(problem(() => s.object({}).parse({ a: 1 })), /with\.a: unknown key; this block takes no keys/);
});

test('missing required keys', () => {
  assert.equal(problem(() => config.parse({})), 'with.name: missing (required: who)');
  assert.equal(problem(() => config.parse({ name: 'x', nested: {} })), 'with.nested.depth: missing (required)');
});

test('a bad default is refused when the schema is built', () => {
  assert.throws(() => s.integer().default('x'), /expected a whole number/);
});

test('JSON Schema: additionalProperties false, required, defaults, descriptions', () => {
  const j = config.jsonSchema();
  assert.equal(j.type, 'object');
  assert.equal(j.additionalProperties, false);
  assert.deepEqual(j.required, ['name']);
  assert.deepEqual(j.properties.name, { type: 'string', description: 'who' });
  assert.deepEqual(j.properties.retries, { type: 'integer', minimum: 0, maximum: 10, default: 3 });
  assert.deepEqual(j.properties.mode, { enum: ['warn', 'fail'], default: 'fail' });
  assert.deepEqual(j.properties.files, { type: 'array', items: { type: 'string' } });
  assert.equal(j.properties.nested.additionalProperties, false);
  assert.deepEqual(j.properties.nested.required, ['depth']);
});

test('defaults are copied, not shared between runs', () => {
  const c = s.object({ list: s.array(s.string()).default(['a']) });
  const first = c.parse({});
  first.list.push('b');
  assert.deepEqual(c.parse({}).list, ['a']);
});
