// SPDX-License-Identifier: Apache-2.0
/**
 * Lets Node.js load a stage natively: registers `loader.js`, which resolves
 * the component-only `sluice:*` and `wasi:*` imports to stand-ins.
 * `testing.js` imports it; to import a stage statically in a test file,
 * run `node --import ./sluice-stage/register.js --test`.
 * @module
 */
import { register } from 'node:module';

register('./loader.js', import.meta.url);
