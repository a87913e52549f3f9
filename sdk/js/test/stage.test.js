// SPDX-License-Identifier: Apache-2.0
// defineStage through the fake host: what the runner would receive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStage, FakeHost } from '../src/testing.js';

// After testing.js: the SDK's component imports resolve to stand-ins.
const sdk = await import('../src/index.js');
const { defineStage, s, report, Gate, finding, log, progress, exec, secrets, checkCancelled, StageError, Denied, ExecFailed, NotFound, capability } = sdk;

const stage = (run, extra = {}) => defineStage({ name: 't', version: '0.1.0', kind: 'test', config: s.object({ n: s.integer().default(1) }), run, ...extra });

test('describe: name, kind, schema, capabilities', () => {
  const p = stage(() => 'ok', { capabilities: ['workspace-read', 'exec:git', capability.secret('TOKEN')], description: 'd' });
  const info = p.describe();
  assert.deepEqual(info.kind, { tag: 'test' });
  assert.deepEqual(info.capabilities, [{ tag: 'workspace-read' }, { tag: 'exec', val: 'git' }, { tag: 'secret', val: 'TOKEN' }]);
  assert.deepEqual(JSON.parse(info.configSchema).properties.n, { type: 'integer', default: 1 });
  assert.deepEqual(defineStage({ name: 'x', version: '1', kind: 'my-kind', run: () => 'ok' }).describe().kind, { tag: 'custom', val: 'my-kind' });
});

test('defineStage refuses a bad definition at once', () => {
  assert.throws(() => defineStage({ name: '', version: '1', run() {} }), /`name` must be a non-empty string/);
  assert.throws(() => defineStage({ name: 'x', version: '1' }), /`run` must be a function/);
  assert.throws(() => defineStage({ name: 'x', version: '1', run() {}, kind: 'Bad Kind' }), /kind "Bad Kind"/);
  assert.throws(() => defineStage({ name: 'x', version: '1', run() {}, capabilities: ['exec'] }), /capability "exec"/);
});

test('a report with metrics, gates, outputs, findings and logs', () => {
  const p = stage((ctx) => {
    log.info('hello', { n: ctx.config.n, list: [1, 2], skip: undefined });
    log.debug('detail');
    progress(1, 2, 'half');
    progress(2, undefined, 'done');
    return report('all good')
      .metric('x.count', ctx.config.n, 'files')
      .gate(Gate.warn('g', 'careful').observed(3).threshold(2))
      .output('o', 7)
      .findings([finding.error('R1', 'bad').at('src/a.js', 3).columns(2, 5).endLine(4).fingerprint('fp').helpUri('https://example.com/r1'), finding.note('R2', 'fyi')]);
  });
  const r = runStage(p, { config: { n: 5 } });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.report.summary, 'all good');
  assert.deepEqual(r.report.metrics, [{ name: 'x.count', value: 5, unit: 'files' }]);
  assert.deepEqual(r.gate('g'), { name: 'g', verdict: 'warn', observed: 3, threshold: 2, message: 'careful' });
  assert.equal(r.output('o'), '7');
  assert.deepEqual(r.report.findings[0], {
    ruleId: 'R1', level: 'error', message: 'bad', location: { path: 'src/a.js', startLine: 3, startColumn: 2, endColumn: 5, endLine: 4 }, fingerprint: 'fp', helpUri: 'https://example.com/r1',
  });
  assert.equal(r.report.findings[1].location, undefined);
  assert.deepEqual(r.logs, [
    { level: 'info', message: 'hello', fields: { n: '5', list: '[1,2]' } },
    { level: 'debug', message: 'detail', fields: {} },
  ]);
  assert.deepEqual(r.host.progress, [{ done: 1, total: 2, message: 'half' }, { done: 2, total: undefined, message: 'done' }]);
});

test('no findings reported is different from none found', () => {
  assert.equal(runStage(stage(() => report('x'))).report.findings, undefined);
  assert.deepEqual(runStage(stage(() => report('x').findings([]))).report.findings, []);
});

test('config errors fail the stage as invalid-config', () => {
  const p = stage(() => 'ok');
  assert.deepEqual(runStage(p, { config: { n: 'two' } }).error, { kind: 'invalid-config', message: 'with.n: expected a whole number, got string "two"' });
  assert.match(runStage(p, { config: { m: 1 } }).error.message, /^with\.m: unknown key; did you mean `n`\?/);
  assert.match(runStage(p, { config: '{not json' }).error.message, /^with: is not valid JSON/);
  assert.ok(runStage(p, { config: '' }).ok);
  const required = defineStage({ name: 'r', version: '1', config: s.object({ url: s.string() }), run: () => 'ok' });
  assert.deepEqual(runStage(required, { config: {} }).error, { kind: 'invalid-config', message: 'with.url: missing (required)' });
});

test('a thrown error fails the stage with its message', () => {
  assert.deepEqual(runStage(stage(() => { throw new Error('disk on fire'); })).error, { kind: 'failed', message: 'disk on fire' });
  assert.deepEqual(runStage(stage(() => { throw new TypeError('x is undefined'); })).error, { kind: 'failed', message: 'TypeError: x is undefined' });
  assert.deepEqual(runStage(stage(() => { throw 'a string'; })).error, { kind: 'failed', message: 'a string' });
  assert.deepEqual(runStage(stage(() => { throw StageError.invalidConfig('with.n: too big'); })).error, { kind: 'invalid-config', message: 'with.n: too big' });
  const denied = runStage(stage(() => { throw StageError.denied('env:HOME'); })).error;
  assert.deepEqual(denied, { kind: 'denied', message: 'denied: grant `env: [HOME]`', capability: { tag: 'env', val: 'HOME' } });
  // The stack goes to the debug log for the author.
  const r = runStage(stage(() => { throw new Error('boom'); }));
  assert.ok(r.logs.some((l) => l.level === 'debug' && l.fields.stack.includes('boom')));
});

test('a run that returns a Promise or no report fails clearly', () => {
  assert.match(runStage(stage(async () => report('x'))).error.message, /returned a Promise/);
  assert.match(runStage(stage(() => 42)).error.message, /must return a Report/);
});

test('reports that break the runner rules fail naming the item', () => {
  const fails = (r) => runStage(stage(r)).error.message;
  assert.match(fails(() => report('x').metric('m', NaN)), /metric `m`: value NaN is not a finite number/);
  assert.match(fails(() => report('x').metric('m', 1).metric('m', 2)), /metric `m` reported twice/);
  assert.match(fails(() => report('x').gate(Gate.pass('g', 'a')).gate(Gate.fail('g', 'b'))), /gate `g` reported twice/);
  assert.match(fails(() => report('x').finding(finding.error('R', 'm').at('../etc/passwd', 1))), /finding 1 \("R"\): path "..\/etc\/passwd" must be relative/);
  assert.match(fails(() => report('x').finding(finding.error('', 'm'))), /empty rule id/);
  assert.match(fails(() => report('x').finding(finding.warning('R', 'm').helpUri('ftp://x'))), /must be an absolute http\(s\) URI/);
  assert.match(fails(() => report('x').artifact('a', { role: 'Bad Role' })), /artifact role "Bad Role"/);
  assert.match(fails(() => report('x').artifact('/abs')), /must be relative to the output directory/);
});

test('exec: granted program, exit codes, denied, not installed', () => {
  const p = stage(() => {
    const ok = exec.run('git', ['rev-parse', 'HEAD'], { cwd: 'sub' });
    const bad = exec.run('make', ['test']);
    return report(`${ok.stdoutText.trim()} ${bad.status} ${bad.success} ${bad.tail()}`);
  });
  const r = runStage(p, { exec: { git: { stdout: 'abc123\n' }, make: (args) => ({ status: 2, stderr: `no rule ${args[0]}\n` }) } });
  assert.equal(r.report.summary, 'abc123 2 false no rule test');
  assert.deepEqual(r.host.commands[0], { program: 'git', args: ['rev-parse', 'HEAD'], cwd: 'sub', env: {}, stdin: false });

  const denied = runStage(p, { exec: { make: {} } });
  assert.deepEqual(denied.error, { kind: 'denied', message: 'denied: grant `exec: [git]`', capability: { tag: 'exec', val: 'git' } });

  const missing = runStage(p, { exec: { git: null } }).error;
  assert.equal(missing.kind, 'failed');
  assert.match(missing.message, /exec program not found: `git` is granted but not installed/);
});

test('exec: check() and { check: true } throw ExecFailed with the exit code', () => {
  let caught;
  const p = stage(() => {
    try {
      exec.run('make', ['all'], { check: true });
    } catch (e) {
      caught = e;
      throw e;
    }
    return 'unreachable';
  });
  const r = runStage(p, { exec: { make: { status: 3, stderr: 'error: x\nerror: y\n' } } });
  assert.ok(caught instanceof ExecFailed);
  assert.equal(caught.exitCode, 3);
  assert.deepEqual(r.error, { kind: 'failed', message: 'make all: exit 3: error: x\nerror: y' });
  const timedOut = runStage(stage(() => exec.run('sleep', ['9']).check() && 'x'), { exec: { sleep: { timedOut: true } } });
  assert.equal(timedOut.error.message, 'sleep 9: timed out');
});

test('exec: spawn with output modes, output, tee and env', () => {
  const p = stage(() => {
    const proc = exec.spawn('tool', ['a'], { stdout: 'pipe', stderr: 'log', stdin: true });
    proc.stdin().write('input');
    const text = proc.stdout().readText();
    const status = proc.wait();
    const out = exec.output('tool', ['b'], { env: { A: '1' } });
    const teed = exec.tee('tool', ['c']);
    const logged = exec.spawn('tool', ['d']);
    assert.equal(logged.stdout(), null);
    return report(`${text}|${status}|${status.success}|${out.stdoutText}|${teed.stdoutText}`);
  });
  const r = runStage(p, { exec: { tool: (args) => ({ stdout: `out-${args[0]}\n`, stderr: `err-${args[0]}\n` }) } });
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.report.summary, 'out-a\n|exit 0|true|out-b\n|out-c\n');
  assert.equal(r.host.stdin, 'input');
  assert.deepEqual(r.host.commands[1].env, { A: '1' });
  // `log` and `tee` streams go to the stage log, line by line.
  assert.deepEqual(r.logs.map((l) => l.message), ['err-a', 'out-c', 'err-c', 'out-d', 'err-d']);
  assert.match(runStage(stage(() => exec.spawn('tool', [], { stdout: 'file' }) && 'x'), { exec: { tool: {} } }).error.message, /stdout must be one of pipe, log, discard, tee/);
});

test('secrets: granted, not granted, granted without a value', () => {
  const p = stage(() => report(`len ${secrets.get('TOKEN').length}`));
  assert.equal(runStage(p, { secrets: { TOKEN: 's3cret' } }).report.summary, 'len 6');
  assert.deepEqual(runStage(p, { secrets: { OTHER: 'x' } }).error, { kind: 'denied', message: 'denied: grant `secrets: [TOKEN]`', capability: { tag: 'secret', val: 'TOKEN' } });
  let caught;
  const q = stage(() => {
    try {
      secrets.get('TOKEN');
    } catch (e) {
      caught = e;
    }
    return 'x';
  });
  runStage(q, { secrets: { TOKEN: null } });
  assert.ok(caught instanceof NotFound, String(caught));
  assert.match(caught.message, /secret not found: secret `TOKEN` is granted but has no value/);
  runStage(q, {});
  assert.ok(caught instanceof Denied);
  assert.deepEqual(caught.capability, { tag: 'secret', val: 'TOKEN' });
});

test('cancellation', () => {
  let calls = 0;
  const p = stage(() => {
    for (let i = 0; i < 10; i++) checkCancelled(`cancelled after ${i} of 10`);
    return 'done';
  });
  assert.ok(runStage(p, { cancelled: false }).ok);
  assert.deepEqual(runStage(p, { cancelled: () => ++calls > 3 }).error, { kind: 'failed', message: 'cancelled after 3 of 10' });
  assert.equal(runStage(stage(() => String(sdk.isCancelled())), { cancelled: true }).report.summary, 'true');
});

test('artifacts written with writeArtifact are described in the report', () => {
  const p = stage((ctx) => {
    ctx.writeArtifact('reports/out.json', '{"ok":true}\n', { mediaType: 'application/json', role: 'report', annotations: { tool: 'x' } });
    ctx.writeArtifact('junit.xml', '<x/>', { role: sdk.role.testResults });
    return report('x').artifact('junit.xml', { mediaType: 'application/xml', role: 'test-results' });
  });
  const r = runStage(p);
  assert.ok(r.ok, JSON.stringify(r.error));
  assert.equal(r.artifact('reports/out.json'), '{"ok":true}\n');
  assert.deepEqual(r.report.artifacts, [
    { path: 'junit.xml', mediaType: 'application/xml', role: { tag: 'test-results' }, annotations: [] },
    { path: 'reports/out.json', mediaType: 'application/json', role: { tag: 'report' }, annotations: [['tool', 'x']] },
  ]);
  assert.match(runStage(stage((ctx) => ctx.writeArtifact('../x', 'y'))).error.message, /must be relative to the output directory/);
  assert.match(runStage(stage((ctx) => ctx.writeArtifact('x', 'y', { role: 'Nope!' }))).error.message, /artifact role "Nope!"/);
});

test('inputs, upstream outputs and context fields', () => {
  const p = stage((ctx) => {
    const [a] = ctx.inputs;
    const text = new TextDecoder().decode(ctx.readInput(a));
    return report(`${ctx.stage} ${ctx.attempt} ${a.stage}/${a.name} ${a.role?.tag} ${a.annotations.v} ${text} ${ctx.upstream('build', 'version')} ${ctx.timeLeftMs() > 0} ${ctx.gracePeriodMs}`);
  });
  const r = runStage(p, {
    stage: 'deploy',
    attempt: 2,
    inputs: [{ stage: 'build', name: 'app.txt', content: 'bytes', role: { tag: 'package' }, annotations: { v: '1.2' } }],
    upstream: [{ stage: 'build', name: 'version', value: '1.2.0' }],
  });
  assert.equal(r.report.summary, 'deploy 2 build/app.txt package 1.2 bytes 1.2.0 true 10000');
});

test('FakeHost can be used directly', () => {
  const fake = new FakeHost({ workspace: { 'a.txt': 'x' } });
  assert.deepEqual(fake.fs.list('/workspace'), [{ name: 'a.txt', type: 'regular-file' }]);
});

test('a stage that imports WIT interfaces itself loads natively (stand-ins that throw when called)', async () => {
  const src = "import { getEnvironment } from 'wasi:cli/environment@0.2.12'; import { Descriptor } from 'wasi:filesystem/types@0.2.12'; export const env = getEnvironment; export { Descriptor };";
  const m = await import(`data:text/javascript,${encodeURIComponent(src)}`);
  assert.throws(() => m.env(), /wasi:cli\/environment@0\.2\.12#getEnvironment exists only inside a sluice component/);
  assert.throws(() => new m.Descriptor(), /#Descriptor exists only inside/);
});
