#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Regenerates src/wit-types/ (TypeScript declarations of the `sluice:stage@0.2.0`
// world `stage`, as a componentize-js guest sees its imports and exports)
// from wit/v0.2 with jco's type generator, which is what
// `jco guest-types wit/v0.2 --world-name stage -o src/wit-types` runs.
//
//   node scripts/gen-types.mjs           write src/wit-types/
//   node scripts/gen-types.mjs --check   exit 1 when src/wit-types/ is not current
//
// jco comes from $SLUICE_JS_TOOLCHAIN/node_modules (default:
// examples/stages/javascript, which scripts/setup-guest-toolchains.sh
// installs). jco 1.35's own CLI cannot read the WIT here: its type
// generator runs on a nested preview2-shim 0.26 that starts without
// preopened directories, so this script opens `/` on that shim first.
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const sdk = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(sdk, '..', '..');
const toolchain = process.env.SLUICE_JS_TOOLCHAIN ?? join(repo, 'examples', 'stages', 'javascript');
const outDir = join(sdk, 'src', 'wit-types');
const check = process.argv.includes('--check');

const transpile = join(toolchain, 'node_modules', '@bytecodealliance', 'jco-transpile', 'dist', 'index.js');
if (!existsSync(transpile)) {
  console.error(`gen-types: ${transpile} is missing; run scripts/setup-guest-toolchains.sh (or set SLUICE_JS_TOOLCHAIN)`);
  process.exit(2);
}
const req = createRequire(transpile);
const shim = await import(pathToFileURL(req.resolve('@bytecodealliance/preview2-shim/filesystem')).href);
shim._setPreopens({ '/': '/' });
const jco = await import(pathToFileURL(transpile).href);
const generated = await jco.generateGuestTypes(join(repo, 'wit', 'v0.2'), { worldName: 'stage', outDir: '' });

/** Every file under `dir`, relative to it. */
function list(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? list(join(dir, e.name), join(prefix, e.name)) : [join(prefix, e.name)]);
}

const want = new Map(Object.entries(generated).map(([name, bytes]) => [name, Buffer.from(bytes)]));
if (check) {
  const have = new Set(list(outDir));
  const stale = [];
  for (const [name, bytes] of want) {
    if (!have.has(name)) stale.push(`missing ${name}`);
    else if (!readFileSync(join(outDir, name)).equals(bytes)) stale.push(`differs ${name}`);
    have.delete(name);
  }
  for (const name of have) stale.push(`not generated ${name}`);
  if (stale.length) {
    console.error(`gen-types: ${relative(process.cwd(), outDir)} is not current (${stale.join('; ')}); run node sdk/js/scripts/gen-types.mjs`);
    process.exit(1);
  }
  console.log(`gen-types: ${want.size} files current`);
} else {
  rmSync(outDir, { recursive: true, force: true });
  for (const [name, bytes] of want) {
    mkdirSync(dirname(join(outDir, name)), { recursive: true });
    writeFileSync(join(outDir, name), bytes);
  }
  console.log(`gen-types: wrote ${want.size} files to ${relative(process.cwd(), outDir)}`);
}
