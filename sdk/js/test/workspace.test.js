// SPDX-License-Identifier: Apache-2.0
// The workspace helper: globs with include/exclude, reading, writing, snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStage } from '../src/testing.js';

const { defineStage, report, checkPattern, matches, ConfigError } = await import('../src/index.js');

/** Runs `f(ctx.workspace)` in a stage and returns its result (or the stage error). */
function inWorkspace(files, f, opts = {}) {
  let out;
  const r = runStage(defineStage({ name: 'w', version: '1', run(ctx) { out = f(ctx.workspace, ctx); return report('ok'); } }), { workspace: files, ...opts });
  return r.ok ? out : r.error;
}

const FILES = {
  'package.json': '{}',
  'web/package.json': '{}',
  'web/node_modules/x/package.json': 'not json',
  '.git/package.json': '{}',
  'src/a.js': '',
  'src/b.ts': '',
  'src/deep/c.js': '',
  'src/.hidden.js': '',
  'docs/[draft].md': '',
};

test('globs: * within a directory, ** across, include and exclude', () => {
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('src/*.js')), ['src/.hidden.js', 'src/a.js']);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('src/**/*.js')), ['src/.hidden.js', 'src/a.js', 'src/deep/c.js']);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find(['src/*.js', 'src/*.ts'], { exclude: ['**/.*'] })), ['src/a.js', 'src/b.ts']);
  assert.deepEqual(
    inWorkspace(FILES, (ws) => ws.find('**/package.json', { exclude: ['**/node_modules/**', '**/.*/**'] })),
    ['package.json', 'web/package.json'],
  );
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('**/package.json')).length, 4);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('./src/a.js')), ['src/a.js']);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('docs/[[]draft].md')), ['docs/[draft].md']);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find('src/?.js')), ['src/a.js']);
  assert.deepEqual(inWorkspace(FILES, (ws) => ws.find(['missing/*.xml', 'nope.txt', 'src'])), []);
});

test('patterns that leave the workspace or are not globs are config errors', () => {
  for (const bad of ['/etc/passwd', '../x.xml', 'a/../../x', '', 'a/[b.xml', 'a**']) {
    assert.throws(() => checkPattern('with.files', bad), (e) => e instanceof ConfigError && e.message.startsWith('with.files: '), bad);
  }
  const e = inWorkspace(FILES, (ws) => ws.find('../*'));
  assert.equal(e.kind, 'invalid-config');
  assert.ok(matches('**/*.js', 'a/b/c.js'));
  assert.ok(!matches('*.js', 'a/b.js'));
});

test('reading files; missing files and bad JSON name the file', () => {
  assert.equal(inWorkspace({ 'a.txt': 'hi' }, (ws) => ws.readText('a.txt')), 'hi');
  assert.deepEqual(inWorkspace({ 'a.json': '{"x":1}' }, (ws) => ws.readJson('a.json')), { x: 1 });
  assert.equal(inWorkspace({}, (ws) => ws.exists('a.txt')), false);
  assert.deepEqual(inWorkspace({}, (ws) => ws.readText('a.txt')), { kind: 'failed', message: 'a.txt: no such file in the workspace' });
  assert.match(inWorkspace({ 'a.json': '{' }, (ws) => ws.readJson('a.json')).message, /^a\.json: not valid JSON/);
});

test('without a workspace grant: denied workspace-read', () => {
  const e = inWorkspace(null, (ws) => ws.find('**/*'));
  assert.deepEqual(e, { kind: 'denied', message: 'denied: grant `workspace: read`', capability: { tag: 'workspace-read' } });
  assert.equal(inWorkspace(null, (ws) => ws.readText('a')).kind, 'denied');
});

test('writing needs workspace: write', () => {
  assert.deepEqual(inWorkspace({}, (ws) => ws.write('out/a.txt', 'x')), { kind: 'denied', message: 'denied: grant `workspace: write`', capability: { tag: 'workspace-write' } });
  let host;
  const r = runStage(defineStage({ name: 'w', version: '1', run(ctx) { ctx.workspace.write('out/a.txt', 'x'); return 'ok'; } }), { workspace: {}, workspaceAccess: 'write' });
  host = r.host;
  assert.ok(r.ok);
  assert.equal(host.workspaceFile('out/a.txt'), 'x');
});

test('snapshots tell new and changed files from old ones', () => {
  const changed = inWorkspace({ 'r/a.xml': 'a', 'r/b.xml': 'b' }, (ws) => {
    const snap = ws.snapshot('r/*.xml');
    ws.write('r/a.xml', 'changed');
    ws.write('r/c.xml', 'new');
    return [snap.isFresh('r/b.xml'), snap.isFresh('r/a.xml'), snap.changed()];
  }, { workspaceAccess: 'write' });
  assert.deepEqual(changed, [false, true, ['r/a.xml', 'r/c.xml']]);
});

test('a workspace read from a directory on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-stage-'));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'x.md'), 'TODO');
  assert.deepEqual(inWorkspace(dir, (ws) => [ws.find('**/*.md'), ws.readText('sub/x.md')]), [['sub/x.md'], 'TODO']);
});
