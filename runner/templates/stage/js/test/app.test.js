// The stage's logic, natively (`node --test`): the SDK's fake host gives it
// a config, a workspace and grants, and captures its report and logs. The
// component itself is tested with `sluice stage test` (see README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadStage, runStage } from '../sluice-stage/testing.js';

// Loaded after testing.js, which lets Node resolve the component's imports.
const { plugin, scanText } = await loadStage(new URL('../app.js', import.meta.url));
const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
const workspace = fileURLToPath(new URL('./workspace', import.meta.url));

test('counts the markers of the test workspace', () => {
  const r = runStage(plugin, { config, workspace });
  assert.ok(r.ok, r.error?.message);
  assert.equal(r.report.summary, '2 marker(s) in 2 file(s)');
  assert.equal(r.metric('{{name}}.files'), 2);
  assert.equal(r.metric('{{name}}.markers'), 2);
  assert.equal(r.gate('{{name}}').verdict, 'pass');
  assert.equal(r.output('markers'), '2');
  assert.deepEqual(
    r.report.findings.map((f) => `${f.location.path}:${f.location.startLine}`),
    ['src/app.py:2', 'src/util.py:2'],
  );
  assert.match(r.artifact('markers.txt'), /^src\/app\.py:2: # TODO/);
});

test('the gate fails above max', () => {
  const r = runStage(plugin, { config: { max: 1 }, workspace: { 'a.py': '# TODO\n# FIXME\n' } });
  assert.equal(r.gate('{{name}}').verdict, 'fail');
});

test('finds markers line by line', () => {
  assert.deepEqual(scanText('a\n  # FIXME later\n', ['TODO', 'FIXME']), [{ line: 2, word: 'FIXME', text: '# FIXME later' }]);
});

test('unknown keys in with: are refused', () => {
  const r = runStage(plugin, { config: { incude: [] }, workspace });
  assert.equal(r.error?.kind, 'invalid-config');
  assert.match(r.error.message, /with\.incude: unknown key; did you mean `include`\?/);
});

test('without a workspace grant the stage is denied', () => {
  const r = runStage(plugin, { config });
  assert.deepEqual(r.error?.capability, { tag: 'workspace-read' });
});
