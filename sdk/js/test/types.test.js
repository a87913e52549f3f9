// SPDX-License-Identifier: Apache-2.0
// The TypeScript types: the WIT declarations in src/wit-types/ are what
// scripts/gen-types.mjs generates from wit/v0.2 today, and index.d.ts
// type-checks a stage (and refuses wrong ones). Uses jco and tsc from the
// guest toolchain (examples/stages/javascript, or $SLUICE_JS_TOOLCHAIN).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const sdk = fileURLToPath(new URL('..', import.meta.url));
const toolchain = process.env.SLUICE_JS_TOOLCHAIN ?? join(sdk, '..', '..', 'examples', 'stages', 'javascript');
const tsc = join(toolchain, 'node_modules', '.bin', 'tsc');

function typecheck(file) {
  assert.ok(existsSync(tsc), `${tsc} is missing: run scripts/setup-guest-toolchains.sh`);
  return spawnSync(tsc, ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'esnext', '--module', 'nodenext', '--moduleResolution', 'nodenext', join(sdk, 'test', 'fixtures', file)], { encoding: 'utf8' });
}

test('src/wit-types/ is generated from wit/v0.2 and current', () => {
  const r = spawnSync(process.execPath, [join(sdk, 'scripts', 'gen-types.mjs'), '--check'], { encoding: 'utf8', env: { ...process.env, SLUICE_JS_TOOLCHAIN: toolchain } });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('a stage type-checks against index.d.ts', () => {
  const r = typecheck('typed-stage.ts');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('wrong types are refused where the fixture says so', () => {
  const r = typecheck('typed-stage-errors.ts');
  const lines = readFileSync(join(sdk, 'test', 'fixtures', 'typed-stage-errors.ts'), 'utf8').split('\n');
  const expected = lines.flatMap((l, i) => (l.includes('// error:') ? [i + 1] : []));
  const got = [...new Set([...r.stdout.matchAll(/typed-stage-errors\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])))];
  assert.deepEqual(got, expected, r.stdout);
});
