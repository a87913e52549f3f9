// SPDX-License-Identifier: Apache-2.0
/**
 * The stage log, with levels and structured fields, and progress. The
 * runner tags every record with the stage and the run, redacts secrets, and
 * shows `info` and above in the console (`--verbose`: everything).
 * @module
 */
import { host } from './host.js';

/** @typedef {'trace' | 'debug' | 'info' | 'warn' | 'error'} Level */

/** Fields as the WIT wants them: `[key, value]` strings, in insertion order. */
function pairs(fields) {
  if (!fields) return [];
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)]);
}

/**
 * Writes one log record. `fields` (an object) are kept as data in `--json`
 * events and shown as `key=value` in the console; values are converted to
 * strings (objects as JSON).
 * @param {Level} level
 * @param {string} message one line
 * @param {Record<string, unknown>} [fields]
 */
export function write(level, message, fields) {
  host().log(level, String(message), pairs(fields));
}

/** Logging by level: `log.info('checked', { files: 3 })`. */
export const log = Object.freeze({
  /** @param {string} message @param {Record<string, unknown>} [fields] */
  trace: (message, fields) => write('trace', message, fields),
  /** @param {string} message @param {Record<string, unknown>} [fields] */
  debug: (message, fields) => write('debug', message, fields),
  /** @param {string} message @param {Record<string, unknown>} [fields] */
  info: (message, fields) => write('info', message, fields),
  /** @param {string} message @param {Record<string, unknown>} [fields] */
  warn: (message, fields) => write('warn', message, fields),
  /** @param {string} message @param {Record<string, unknown>} [fields] */
  error: (message, fields) => write('error', message, fields),
  /** Any level. @param {Level} level @param {string} message @param {Record<string, unknown>} [fields] */
  write,
});

/**
 * Says how far the stage has got: `done` of `total` units (`total`
 * undefined when unknown) and what it is doing. Shown next to the stage's
 * elapsed time; `--json` emits `stage_progress` events (rate-limited by the
 * runner, so calling it per item is fine).
 * @param {number} done
 * @param {number | undefined} total
 * @param {string} message
 */
export function progress(done, total, message) {
  const n = (x) => BigInt(Math.max(0, Math.floor(Number(x) || 0)));
  host().progress(n(done), total === undefined || total === null ? undefined : n(total), String(message));
}
