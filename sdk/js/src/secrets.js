// SPDX-License-Identifier: Apache-2.0
/**
 * Secrets granted to the stage (`grants.secrets`). The runner redacts every
 * secret value from all logs and reports; still, print them only when you
 * must.
 * @module
 */
import { host } from './host.js';
import { Denied, NotFound, capability, hostErrorCode } from './errors.js';

/**
 * The value of secret `name`.
 * @param {string} name
 * @returns {string}
 * @throws {Denied} when `name` is not in the stage's `grants.secrets` (`capability` is `secret name`)
 * @throws {NotFound} when it is granted but the runner has no value for it
 */
export function get(name) {
  try {
    return host().secretGet(name);
  } catch (e) {
    const code = hostErrorCode(e);
    if (code?.tag === 'denied') throw new Denied(capability.secret(name), `secret denied: \`${name}\` is not in the stage's grants.secrets`);
    if (code?.tag === 'not-found') throw new NotFound(`secret not found: ${code.val ?? name}`);
    throw e;
  }
}

/** `secrets.get(name)`. */
export const secrets = Object.freeze({ get });
