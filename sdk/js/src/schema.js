// SPDX-License-Identifier: Apache-2.0
/**
 * A small schema builder for a stage's `with:` block: it validates the
 * config (errors name the key, e.g. `with.files[1]: expected a string, got
 * number 3`) and yields the JSON Schema the runner checks `with:` against
 * before the stage starts.
 *
 * ```js
 * const config = s.object({
 *   files: s.array(s.string()).optional().describe('paths to check'),
 *   'max-size': s.integer({ minimum: 0 }).default(1024),
 *   level: s.enum(['warn', 'fail']).default('fail'),
 * });
 * ```
 * Keys are handed to `run` in camelCase (`max-size` → `maxSize`).
 * @module
 */
import { ConfigError } from './errors.js';

/** `with.a.b`, `with.files[2]`, `with["odd key"]`. */
function child(path, key) {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][\w-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** `string "x"`, `number 3`, `a list`, `null`, ... for messages. */
function describeValue(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Edit distance, for "did you mean". */
function distance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

/** `max-size` → `maxSize`. @param {string} key */
export function camelCase(key) {
  return key.replace(/[-_]+([a-zA-Z0-9])/g, (_, c) => c.toUpperCase());
}

/**
 * One value's schema. Built with `s.string()` etc.; `optional()`,
 * `default(v)` and `describe(text)` return a changed copy.
 * @template T
 */
export class Schema {
  /**
   * @param {string} type the JSON Schema `type` (or `enum`)
   * @param {object} json extra JSON Schema keywords
   * @param {(v: unknown, path: string) => T} check validates and converts
   */
  constructor(type, json, check) {
    this.type = type;
    this.json = json;
    this.check = check;
    /** Whether the key may be left out. */
    this.isOptional = false;
    /** @type {{ value: T } | undefined} */
    this.defaultValue = undefined;
    /** @type {string | undefined} */
    this.description = undefined;
  }

  #copy(changes) {
    return Object.assign(new Schema(this.type, this.json, this.check), this, changes);
  }

  /** The key may be left out (it is then `undefined`). @returns {Schema<T | undefined>} */
  optional() {
    return this.#copy({ isOptional: true });
  }

  /** The value when the key is left out (checked against the schema). @param {T} value @returns {Schema<T>} */
  default(value) {
    this.check(value, '(default)');
    return this.#copy({ defaultValue: { value } });
  }

  /** A description shown in the JSON Schema (and by editors). @param {string} text @returns {Schema<T>} */
  describe(text) {
    return this.#copy({ description: text });
  }

  /** The JSON Schema (draft 2020-12) of this value. @returns {object} */
  jsonSchema() {
    const out = { ...(this.type === 'enum' ? {} : { type: this.type }), ...this.json };
    for (const [k, v] of Object.entries(out)) if (v instanceof Schema) out[k] = v.jsonSchema();
    if (this.description !== undefined) out.description = this.description;
    if (this.defaultValue !== undefined) out.default = this.defaultValue.value;
    return out;
  }

  /**
   * Validates `value` (already parsed from JSON) and returns it converted
   * (defaults filled in, object keys in camelCase).
   * @param {unknown} value
   * @param {string} [path] where it is, for messages (default `with`)
   * @returns {T}
   * @throws {ConfigError} naming the key and the problem
   */
  parse(value, path = 'with') {
    return this.check(value, path);
  }
}

function expect(ok, path, what, v) {
  if (!ok) throw new ConfigError(path, `expected ${what}, got ${describeValue(v)}`);
}

function bounds(n, path, o, unit = '') {
  if (o.minimum !== undefined && n < o.minimum) throw new ConfigError(path, `must be at least ${o.minimum}${unit}, got ${n}`);
  if (o.maximum !== undefined && n > o.maximum) throw new ConfigError(path, `must be at most ${o.maximum}${unit}, got ${n}`);
}

/**
 * A string. Options: `minLength`, `maxLength`, `pattern` (a regular
 * expression source the whole value must match).
 * @param {{ minLength?: number, maxLength?: number, pattern?: string }} [o]
 * @returns {Schema<string>}
 */
function string(o = {}) {
  const re = o.pattern === undefined ? null : new RegExp(`^(?:${o.pattern})$`, 'u');
  return new Schema('string', { ...o }, (v, path) => {
    expect(typeof v === 'string', path, 'a string', v);
    const s = /** @type {string} */ (v);
    if (o.minLength !== undefined && s.length < o.minLength) throw new ConfigError(path, `must be at least ${o.minLength} character(s) long`);
    if (o.maxLength !== undefined && s.length > o.maxLength) throw new ConfigError(path, `must be at most ${o.maxLength} character(s) long`);
    if (re && !re.test(s)) throw new ConfigError(path, `${JSON.stringify(s)} does not match ${o.pattern}`);
    return s;
  });
}

/** A number. @param {{ minimum?: number, maximum?: number }} [o] @returns {Schema<number>} */
function number(o = {}) {
  return new Schema('number', { ...o }, (v, path) => {
    expect(typeof v === 'number' && Number.isFinite(v), path, 'a number', v);
    bounds(/** @type {number} */ (v), path, o);
    return /** @type {number} */ (v);
  });
}

/** A whole number. @param {{ minimum?: number, maximum?: number }} [o] @returns {Schema<number>} */
function integer(o = {}) {
  return new Schema('integer', { ...o }, (v, path) => {
    expect(typeof v === 'number' && Number.isInteger(v), path, 'a whole number', v);
    bounds(/** @type {number} */ (v), path, o);
    return /** @type {number} */ (v);
  });
}

/** `true` or `false`. @returns {Schema<boolean>} */
function boolean() {
  return new Schema('boolean', {}, (v, path) => {
    expect(typeof v === 'boolean', path, 'true or false', v);
    return /** @type {boolean} */ (v);
  });
}

/**
 * One of `values` (strings, numbers or booleans).
 * @template {string | number | boolean} V
 * @param {readonly V[]} values
 * @returns {Schema<V>}
 */
function oneOf(values) {
  if (!Array.isArray(values) || values.length === 0) throw new TypeError('s.enum: give at least one value');
  return new Schema('enum', { enum: [...values] }, (v, path) => {
    if (!values.includes(/** @type {V} */ (v))) {
      throw new ConfigError(path, `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${describeValue(v)}`);
    }
    return /** @type {V} */ (v);
  });
}

/**
 * A list of `item`. A single value where a list is expected is refused
 * (write `[x]`).
 * @template T
 * @param {Schema<T>} item
 * @param {{ minItems?: number, maxItems?: number }} [o]
 * @returns {Schema<T[]>}
 */
function array(item, o = {}) {
  return new Schema('array', { items: item, ...o }, (v, path) => {
    expect(Array.isArray(v), path, 'a list', v);
    const list = /** @type {unknown[]} */ (v);
    if (o.minItems !== undefined && list.length < o.minItems) throw new ConfigError(path, `needs at least ${o.minItems} item(s)`);
    if (o.maxItems !== undefined && list.length > o.maxItems) throw new ConfigError(path, `takes at most ${o.maxItems} item(s)`);
    return list.map((x, i) => item.check(x, child(path, i)));
  });
}

/**
 * A mapping with exactly these keys (`additionalProperties: false`): an
 * unknown key is an error that names the known ones. A key is required
 * unless its schema is `optional()` or has a `default(...)`.
 * @param {Record<string, Schema<any>>} fields
 * @returns {Schema<Record<string, any>>}
 */
function object(fields) {
  const keys = Object.keys(fields);
  const required = keys.filter((k) => !fields[k].isOptional && fields[k].defaultValue === undefined);
  const json = {
    additionalProperties: false,
    properties: Object.fromEntries(keys.map((k) => [k, fields[k].jsonSchema()])),
    ...(required.length ? { required } : {}),
  };
  return new Schema('object', json, (v, path) => {
    expect(v !== null && typeof v === 'object' && !Array.isArray(v), path, 'a mapping', v);
    const obj = /** @type {Record<string, unknown>} */ (v);
    for (const k of Object.keys(obj)) {
      if (Object.hasOwn(fields, k)) continue;
      const near = keys.filter((x) => distance(x, k) <= 2).sort((a, b) => distance(a, k) - distance(b, k))[0];
      const hint = near ? `did you mean \`${near}\`? ` : '';
      throw new ConfigError(child(path, k), `unknown key; ${hint}${keys.length ? `known keys: ${keys.join(', ')}` : 'this block takes no keys'}`);
    }
    const out = {};
    for (const k of keys) {
      const f = fields[k];
      let val;
      if (Object.hasOwn(obj, k) && obj[k] !== undefined) val = f.check(obj[k], child(path, k));
      else if (f.defaultValue !== undefined) val = structuredCopy(f.defaultValue.value);
      else if (!f.isOptional) throw new ConfigError(child(path, k), `missing (required${f.description ? `: ${f.description}` : ''})`);
      out[camelCase(k)] = val;
    }
    return out;
  });
}

/** A copy of a default, so that a stage changing it does not change the next run's. */
function structuredCopy(v) {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/** The schema builders: `s.object({ name: s.string() })`. */
export const s = Object.freeze({ string, number, integer, boolean, enum: oneOf, array, object });
