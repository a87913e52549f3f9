// SPDX-License-Identifier: Apache-2.0
/**
 * Cancellation: the runner cancels a stage under fail-fast, on SIGINT or
 * SIGTERM, and at its deadline; a cancelled stage has its grace period to
 * put things back and return. Check between units of work.
 * @module
 */
import { host } from './host.js';
import { Cancelled } from './errors.js';

/** Whether the stage has been cancelled. Cheap. @returns {boolean} */
export function isCancelled() {
  return host().isCancelled();
}

/**
 * Throws {@link Cancelled} (a `failed` stage error) with `message` when the
 * stage has been cancelled.
 * @param {string} [message] what was left undone, e.g. `cancelled after 3 of 9 files`
 */
export function checkCancelled(message) {
  if (host().isCancelled()) throw new Cancelled(message);
}
