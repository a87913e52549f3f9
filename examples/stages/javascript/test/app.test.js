// SPDX-License-Identifier: Apache-2.0
// The package.json policy natively, with the SDK's fake host
// (`node --test` here). The component is tested through the real binary by
// tests/tests/e2e/stage_languages.rs (javascript_package_policy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadStage, runStage } from '../sluice-stage/testing.js';

const { plugin } = await loadStage(new URL('../app.js', import.meta.url));

const workspace = {
  'package.json': '{ "name": "app", "version": "1.0.0", "license": "MIT",\n  "dependencies": { "left-pad": "^1.3.0", "express": "4.19.2" } }',
  'web/package.json': '{ "name": "web", "version": "0.1.0" }',
  'node_modules/x/package.json': 'not even JSON',
};

test('violations become findings, metrics, a gate and a report artifact', () => {
  const r = runStage(plugin, { config: { 'forbidden-dependencies': ['left-*'], 'pin-versions': true }, workspace });
  assert.ok(r.ok, r.error?.message);
  assert.equal(r.metric('policy.files'), 2);
  assert.equal(r.metric('policy.violations'), 3);
  assert.equal(r.gate('package-policy').verdict, 'fail');
  assert.deepEqual(r.report.findings.map((f) => [f.ruleId, f.location.path, f.location.startLine]), [
    ['forbidden-dependency', 'package.json', 2],
    ['unpinned', 'package.json', 2],
    ['required-field', 'web/package.json', 0],
  ]);
  assert.deepEqual(JSON.parse(r.artifact('policy-report.json')).files, ['package.json', 'web/package.json']);
  assert.deepEqual(r.report.artifacts[0].annotations, [['policy.enforce', 'true']]);
});

test('enforce: false warns', () => {
  const r = runStage(plugin, { config: { enforce: false, 'required-fields': [] }, workspace: { 'package.json': '{"dependencies": {"a": "^1"}}' }, });
  assert.equal(r.gate('package-policy').verdict, 'pass');
  const w = runStage(plugin, { config: { enforce: false, 'pin-versions': true }, workspace: { 'package.json': '{"name":"a","version":"1","license":"MIT","dependencies": {"a": "^1"}}' } });
  assert.equal(w.gate('package-policy').verdict, 'warn');
  assert.equal(w.report.findings[0].level, 'warning');
});

test('a listed file that is missing or not JSON is a violation, not a crash', () => {
  const r = runStage(plugin, { config: { files: ['missing/package.json', 'node_modules/x/package.json'] }, workspace });
  assert.deepEqual(r.report.findings.map((f) => f.ruleId), ['unreadable', 'unreadable']);
  assert.ok(r.logs.some((l) => l.level === 'error' && l.message.startsWith('missing/package.json: cannot read or parse')));
});

test('bad config, no workspace, cancellation', () => {
  assert.match(runStage(plugin, { config: { 'pin-version': true }, workspace }).error.message, /^with\.pin-version: unknown key; did you mean `pin-versions`\?/);
  assert.equal(runStage(plugin, { config: { enforce: 'yes' }, workspace }).error.message, 'with.enforce: expected true or false, got string "yes"');
  assert.deepEqual(runStage(plugin, {}).error.capability, { tag: 'workspace-read' });
  assert.deepEqual(runStage(plugin, { workspace, cancelled: true }).error, { kind: 'failed', message: 'cancelled after 0 of 2 file(s)' });
});
