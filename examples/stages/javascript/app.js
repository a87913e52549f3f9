// SPDX-License-Identifier: Apache-2.0
// package.json policy check: a sluice stage written in JavaScript
// (WIT sluice:stage@0.2.0).
//
// Finds package.json files in the workspace (or the ones `with.files` names)
// and checks each against a policy:
//
//   required-fields:        fields every package.json must have (default: name, version, license)
//   forbidden-dependencies: dependency names that must not appear (a trailing `*` matches a prefix)
//   pin-versions:           true: every dependency must be an exact version (no ^, ~, ranges, tags)
//   allowed-licenses:       if set, `license` must be one of these SPDX ids
//   enforce:                true (default): the gate fails on any violation; false: it warns
//
// Reports one finding per violated rule (rule id `forbidden-dependency`,
// `unpinned`, `license`, `required-field`, `malformed` or `unreadable`, at
// the package.json and, when it can tell, the line), which the runner writes
// as SARIF (`findings.sarif`); metric `policy.violations` (and
// `policy.files`), gate `package-policy`, and the artifact
// `policy-report.json` (role `report`). It logs through the `log` import with
// levels and fields, reports progress per file, and stops between files when
// the runner cancels it.
//
// ComponentizeJS runs the module in StarlingMonkey, which has no Node `fs`:
// files are read through the WASI 0.2 filesystem interfaces the world imports.
//
// Build: ./build.sh (componentize-js app.js --wit ../../../wit/v0.2 --world-name stage --out package-policy.wasm)

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { log as stageLog, progress } from 'sluice:stage/log@0.2.0';
import { isCancelled } from 'sluice:stage/cancel@0.2.0';

const SKIP_DIRS = new Set(['node_modules', '.git', '.sluice', 'target', 'dist']);
const DEP_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'];
const HELP_URI = 'https://docs.npmjs.com/cli/configuring-npm/package-json';
const EXACT = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    files: { type: 'array', items: { type: 'string' }, description: 'package.json paths relative to the workspace (default: all, outside node_modules)' },
    'required-fields': { type: 'array', items: { type: 'string' } },
    'forbidden-dependencies': { type: 'array', items: { type: 'string' } },
    'pin-versions': { type: 'boolean' },
    'allowed-licenses': { type: 'array', items: { type: 'string' } },
    enforce: { type: 'boolean' },
  },
};

// One record in the stage log; `fields` (an object) are kept as data.
const log = (level, message, fields = {}) =>
  stageLog(level, message, Object.entries(fields).map(([k, v]) => [k, String(v)]));

class StageError extends Error {
  constructor(tag, val) {
    super(val);
    // ComponentizeJS turns a thrown value into the `err` case of the
    // `result`: a `payload` property, when present, is what gets lowered.
    this.payload = { tag, val };
  }
}
const invalid = (msg) => new StageError('invalid-config', msg);

function stringList(cfg, key, dflt) {
  const v = cfg[key] ?? dflt;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw invalid(`with.${key}: must be a list of strings`);
  }
  return v;
}

function loadConfig(raw) {
  let cfg;
  try {
    cfg = JSON.parse(raw || '{}');
  } catch (e) {
    throw invalid(`with: is not valid JSON: ${e.message}`);
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw invalid('with: must be a mapping');
  for (const key of Object.keys(cfg)) {
    if (!(key in CONFIG_SCHEMA.properties)) throw invalid(`with.${key}: unknown key (known: ${Object.keys(CONFIG_SCHEMA.properties).join(', ')})`);
  }
  for (const key of ['pin-versions', 'enforce']) {
    if (key in cfg && typeof cfg[key] !== 'boolean') throw invalid(`with.${key}: must be true or false`);
  }
  return {
    files: cfg.files === undefined ? null : stringList(cfg, 'files', []),
    requiredFields: stringList(cfg, 'required-fields', ['name', 'version', 'license']),
    forbidden: stringList(cfg, 'forbidden-dependencies', []),
    pinVersions: cfg['pin-versions'] ?? false,
    allowedLicenses: cfg['allowed-licenses'] === undefined ? null : stringList(cfg, 'allowed-licenses', []),
    enforce: cfg.enforce ?? true,
  };
}

// --- WASI filesystem helpers -------------------------------------------------

function preopen(guestPath) {
  for (const [descriptor, path] of getDirectories()) {
    if (path === guestPath) return descriptor;
  }
  return null;
}

function readFile(dir, rel) {
  const fd = dir.openAt({ symlinkFollow: false }, rel, {}, { read: true });
  const chunks = [];
  let offset = 0n;
  for (;;) {
    const [bytes, eof] = fd.read(65536n, offset);
    chunks.push(bytes);
    offset += BigInt(bytes.length);
    if (eof || bytes.length === 0) break;
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { all.set(c, at); at += c.length; }
  return new TextDecoder().decode(all);
}

function writeFile(dir, rel, text) {
  const fd = dir.openAt({}, rel, { create: true, truncate: true }, { write: true });
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  while (offset < bytes.length) {
    const n = fd.write(bytes.subarray(offset), BigInt(offset));
    offset += Number(n);
  }
}

function findPackageFiles(root) {
  const found = [];
  const walk = (prefix) => {
    const dir = prefix === '' ? root : root.openAt({}, prefix, { directory: true }, { read: true });
    const stream = dir.readDirectory();
    const entries = [];
    for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      if (e.type === 'directory' && !SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) walk(rel);
      else if (e.type === 'regular-file' && e.name === 'package.json') found.push(rel);
    }
  };
  walk('');
  return found;
}

function fsMessage(e) {
  return e && e.payload !== undefined ? String(e.payload) : String(e && e.message ? e.message : e);
}

// --- the policy ----------------------------------------------------------------

function matchesName(pattern, name) {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

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
      const bad = policy.forbidden.find((p) => matchesName(p, name));
      if (bad) add('forbidden-dependency', `${field}.${name} is forbidden (matches \`${bad}\`)`, name, field);
      if (policy.pinVersions && field !== 'peerDependencies' && !EXACT.test(String(version))) {
        add('unpinned', `${field}.${name}@${version} is not pinned to an exact version`, name, field);
      }
    }
  }
  return v;
}

// --- the exports -----------------------------------------------------------------

function finding(v, policy) {
  return {
    ruleId: v.rule,
    level: policy.enforce ? 'error' : 'warning',
    message: v.message,
    location: { path: v.file, startLine: v.line ?? 0 },
    // The rule, the file and what it is about identify a violation across runs.
    fingerprint: `${v.rule}:${v.file}:${v.subject ?? ''}`,
    helpUri: HELP_URI,
  };
}

function describe() {
  return {
    name: 'package-policy',
    version: '0.2.0',
    kind: { tag: 'lint' },
    description: 'Checks package.json files against a dependency and metadata policy.',
    configSchema: JSON.stringify(CONFIG_SCHEMA),
    capabilities: [{ tag: 'workspace-read' }],
  };
}

function run(ctx) {
  const policy = loadConfig(ctx.config);
  const workspace = preopen('/workspace');
  // The runner names the grant to add.
  if (!workspace) throw new StageError('denied', { tag: 'workspace-read' });
  const outPath = ctx.outputsDir || '/artifacts/out';
  const out = preopen(outPath);
  if (!out) throw new StageError('failed', `${outPath} is not available`);

  let files;
  try {
    files = policy.files ?? findPackageFiles(workspace);
  } catch (e) {
    throw new StageError('failed', `listing the workspace: ${fsMessage(e)}`);
  }
  // The runner already tags every record with the stage and the run.
  log('info', `checking ${files.length} package.json file(s)`, { files: files.length });

  const violations = [];
  const total = BigInt(files.length);
  for (const [i, file] of files.entries()) {
    if (isCancelled()) {
      log('warn', 'cancelled', { checked: i, total: files.length });
      throw new StageError('failed', `cancelled after ${i} of ${files.length} file(s)`);
    }
    progress(BigInt(i), total, `checking ${file}`);
    let text, pkg;
    try {
      text = readFile(workspace, file);
      pkg = JSON.parse(text);
    } catch (e) {
      const v = { file, rule: 'unreadable', message: `cannot read or parse: ${fsMessage(e)}`, line: 0 };
      violations.push(v);
      log('error', `${file}: ${v.message}`, { path: file, rule: v.rule });
      continue;
    }
    for (const v of checkPackage(file, text, pkg, policy)) {
      log('warn', `${v.file}: ${v.message}`, { path: v.file, rule: v.rule, line: v.line });
      violations.push(v);
    }
  }
  progress(total, total, 'done');
  log('info', `${violations.length} violation(s) in ${files.length} file(s)`, { violations: violations.length, files: files.length });

  try {
    const doc = { files, violations: violations.map(({ file, rule, message }) => ({ file, rule, message })) };
    writeFile(out, 'policy-report.json', JSON.stringify(doc, null, 2) + '\n');
  } catch (e) {
    throw new StageError('failed', `writing ${outPath}/policy-report.json: ${fsMessage(e)}`);
  }

  const n = violations.length;
  const verdict = n === 0 ? 'pass' : policy.enforce ? 'fail' : 'warn';
  const message = n === 0
    ? `${files.length} package.json file(s) follow the policy`
    : `${n} violation(s): ${violations.slice(0, 3).map((v) => `${v.file}: ${v.message}`).join('; ')}${n > 3 ? ' ...' : ''}`;
  return {
    summary: `package.json policy: ${n} violation(s) in ${files.length} file(s)`,
    metrics: [
      { name: 'policy.violations', value: n },
      { name: 'policy.files', value: files.length },
    ],
    gates: [{ name: 'package-policy', verdict, observed: n, threshold: 0, message }],
    outputs: [['violations', String(n)]],
    artifacts: [{
      path: 'policy-report.json',
      mediaType: 'application/json',
      role: { tag: 'report' },
      annotations: [['policy.enforce', String(policy.enforce)]],
    }],
    // An empty list when the policy holds: the check ran and found nothing.
    findings: violations.map((v) => finding(v, policy)),
  };
}

// A 0.2 stage exports the interface `plugin` rather than top-level functions.
export const plugin = { describe, run };
