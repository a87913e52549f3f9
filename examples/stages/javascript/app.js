// SPDX-License-Identifier: Apache-2.0
// package.json policy check: a sluice stage written in JavaScript on the
// sluice-stage SDK (sdk/js; `sluice-stage/` here links to its sources).
//
// Finds package.json files in the workspace (or the ones `with.files` names)
// and checks each against a policy (see the config schema below). Reports one
// finding per violated rule (`forbidden-dependency`, `unpinned`, `license`,
// `required-field`, `malformed` or `unreadable`) at the package.json and,
// when it can tell, the line; metrics `policy.violations` and
// `policy.files`, gate `package-policy`, output `violations`, and the
// artifact `policy-report.json` (role `report`). It logs with levels and
// fields, reports progress per file, and stops between files when cancelled.
//
// Build: ./build.sh (componentize-js against WIT sluice:stage@0.2.0).

import { defineStage, s, report, Gate, finding, log, progress, isCancelled, StageError } from './sluice-stage/index.js';

const DEP_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'];
const HELP_URI = 'https://docs.npmjs.com/cli/configuring-npm/package-json';
const EXACT = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
// Directories never searched for package.json files.
const EXCLUDE = ['**/node_modules/**', '**/.*/**', '**/target/**', '**/dist/**'];
const strings = () => s.array(s.string());

const config = s.object({
  files: strings().optional().describe('package.json paths relative to the workspace (default: all, outside node_modules)'),
  'required-fields': strings().default(['name', 'version', 'license']).describe('fields every package.json must have'),
  'forbidden-dependencies': strings().default([]).describe('dependency names that must not appear (a trailing `*` matches a prefix)'),
  'pin-versions': s.boolean().default(false).describe('every dependency must be an exact version'),
  'allowed-licenses': strings().optional().describe('if set, `license` must be one of these SPDX ids'),
  enforce: s.boolean().default(true).describe('true: the gate fails on any violation; false: it warns'),
});

const matchesName = (pattern, name) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name);

// The 1-based line of the first `"key"` in the file's text (after the first
// `"within"`, when given), 0 if none: good enough to point a reader at it.
function lineOf(text, key, within) {
  const from = within === undefined ? 0 : Math.max(0, text.indexOf(JSON.stringify(within)));
  const at = text.indexOf(JSON.stringify(key), from);
  return at < 0 ? 0 : text.slice(0, at).split('\n').length;
}

function checkPackage(file, text, pkg, policy) {
  const v = [];
  // `subject` (the field or dependency) keeps a finding's fingerprint stable
  // when only the details (a version) change.
  const add = (rule, message, key, within) => v.push({
    file, rule, message,
    line: key === undefined ? 0 : lineOf(text, key, within),
    subject: key === undefined ? message : within === undefined ? key : `${within}.${key}`,
  });
  for (const field of policy.requiredFields) {
    if (pkg[field] === undefined || pkg[field] === '') add('required-field', `missing field \`${field}\``);
  }
  if (policy.allowedLicenses && pkg.license !== undefined && !policy.allowedLicenses.includes(pkg.license)) {
    add('license', `license \`${pkg.license}\` is not one of ${policy.allowedLicenses.join(', ')}`, 'license');
  }
  for (const field of DEP_FIELDS) {
    const deps = pkg[field];
    if (deps === undefined) continue;
    if (deps === null || typeof deps !== 'object') { add('malformed', `\`${field}\` is not an object`, field); continue; }
    for (const [name, version] of Object.entries(deps)) {
      const bad = policy.forbiddenDependencies.find((p) => matchesName(p, name));
      if (bad) add('forbidden-dependency', `${field}.${name} is forbidden (matches \`${bad}\`)`, name, field);
      if (policy.pinVersions && field !== 'peerDependencies' && !EXACT.test(String(version))) {
        add('unpinned', `${field}.${name}@${version} is not pinned to an exact version`, name, field);
      }
    }
  }
  return v;
}

export const plugin = defineStage({
  name: 'package-policy',
  version: '0.2.0',
  kind: 'lint',
  description: 'Checks package.json files against a dependency and metadata policy.',
  config,
  capabilities: ['workspace-read'],
  run(ctx) {
    const policy = ctx.config;
    const ws = ctx.workspace;
    const files = policy.files ?? ws.find('**/package.json', { exclude: EXCLUDE });
    log.info(`checking ${files.length} package.json file(s)`, { files: files.length });

    const violations = [];
    for (const [i, file] of files.entries()) {
      if (isCancelled()) {
        log.warn('cancelled', { checked: i, total: files.length });
        throw StageError.failed(`cancelled after ${i} of ${files.length} file(s)`);
      }
      progress(i, files.length, `checking ${file}`);
      let text, pkg;
      try {
        text = ws.readText(file);
        pkg = JSON.parse(text);
      } catch (e) {
        const v = { file, rule: 'unreadable', message: `cannot read or parse: ${e.message}`, line: 0 };
        violations.push(v);
        log.error(`${file}: ${v.message}`, { path: file, rule: v.rule });
        continue;
      }
      for (const v of checkPackage(file, text, pkg, policy)) {
        log.warn(`${v.file}: ${v.message}`, { path: v.file, rule: v.rule, line: v.line });
        violations.push(v);
      }
    }
    progress(files.length, files.length, 'done');
    const n = violations.length;
    log.info(`${n} violation(s) in ${files.length} file(s)`, { violations: n, files: files.length });

    const doc = { files, violations: violations.map(({ file, rule, message }) => ({ file, rule, message })) };
    ctx.writeArtifact('policy-report.json', `${JSON.stringify(doc, null, 2)}\n`, {
      mediaType: 'application/json',
      role: 'report',
      annotations: { 'policy.enforce': String(policy.enforce) },
    });

    const message = n === 0
      ? `${files.length} package.json file(s) follow the policy`
      : `${n} violation(s): ${violations.slice(0, 3).map((v) => `${v.file}: ${v.message}`).join('; ')}${n > 3 ? ' ...' : ''}`;
    const gate = n === 0 ? Gate.pass : policy.enforce ? Gate.fail : Gate.warn;
    const level = policy.enforce ? finding.error : finding.warning;
    return report(`package.json policy: ${n} violation(s) in ${files.length} file(s)`)
      .metric('policy.violations', n)
      .metric('policy.files', files.length)
      .gate(gate('package-policy', message).observed(n).threshold(0))
      .output('violations', n)
      // An empty list when the policy holds: the check ran and found nothing.
      .findings(violations.map((v) => level(v.rule, v.message)
        .at(v.file, v.line ?? 0)
        // The rule, the file and what it is about identify a violation across runs.
        .fingerprint(`${v.rule}:${v.file}:${v.subject ?? ''}`)
        .helpUri(HELP_URI)));
  },
});
