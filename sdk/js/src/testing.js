// SPDX-License-Identifier: Apache-2.0
/**
 * Test a stage natively (`node --test`), without building a component: a
 * fake host gives the stage its config, workspace files, grants, program
 * results and secrets, and captures its logs, progress, report and
 * artifacts.
 *
 * ```js
 * import { test } from 'node:test';
 * import assert from 'node:assert/strict';
 * import { loadStage, runStage } from '../sluice-stage/testing.js';
 *
 * const { plugin } = await loadStage(new URL('../app.js', import.meta.url));
 *
 * test('counts TODOs', () => {
 *   const r = runStage(plugin, { config: { max: 0 }, workspace: { 'a.md': 'TODO x\n' } });
 *   assert.equal(r.metric('todo.count'), 1);
 * });
 * ```
 *
 * Import the stage with {@link loadStage} (or `await import(...)`) after this
 * module: its `sluice:*` imports only resolve once this module has
 * registered the stand-ins (or run `node --import ./sluice-stage/register.js`).
 * @module
 */
import './register.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FsError, useHost } from './host.js';
import { grantFor } from './errors.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (v) => (v instanceof Uint8Array ? v : enc.encode(String(v ?? '')));

/**
 * Imports a stage module (after the stand-ins for its component imports are
 * registered).
 * @param {string | URL} url e.g. `new URL('../app.js', import.meta.url)`
 * @returns {Promise<any>} the module (its `plugin` export is the stage)
 */
export async function loadStage(url) {
  return import(url instanceof URL ? url.href : url.startsWith('file:') ? url : pathToFileURL(url).href);
}

/** Reads a directory on disk into `{ 'rel/path': Uint8Array }`. */
function readTree(dir, prefix = '', out = {}) {
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    const st = statSync(full);
    if (st.isDirectory()) readTree(full, rel, out);
    else if (st.isFile()) out[rel] = readFileSync(full);
  }
  return out;
}

/**
 * What a program does in the fake: its exit code and output. A function
 * gets the arguments and the command and returns one. `null`: the program
 * is granted but not installed.
 * @typedef {{ status?: number, stdout?: string | Uint8Array, stderr?: string | Uint8Array, timedOut?: boolean } | ((args: string[], command: object) => ExecResult) | null} ExecResult
 */

/**
 * @typedef {object} FakeOptions
 * @property {object | string} [config] the `with:` block (an object, or JSON text)
 * @property {Record<string, string | Uint8Array> | string | null} [workspace]
 *   workspace files by relative path, or a directory on disk to read them
 *   from; `null` or left out: no workspace grant
 * @property {'read' | 'write'} [workspaceAccess] the workspace grant (default `read`)
 * @property {Record<string, ExecResult>} [exec] granted programs (`grants.exec`) and what they do
 * @property {Record<string, string | null | undefined>} [secrets] granted secrets; `null`/`undefined`: granted without a value
 * @property {boolean | (() => boolean)} [cancelled] whether the runner has cancelled the stage
 * @property {Array<{ stage: string, name: string, content: string | Uint8Array, mediaType?: string, role?: object, annotations?: Record<string, string> }>} [inputs] artifacts of upstream stages
 * @property {Array<{ stage: string, name: string, value: string }>} [upstream] outputs of upstream stages
 * @property {string} [stage] the stage's key (default `test`)
 * @property {string} [environment]
 * @property {number} [attempt]
 */

/** An in-memory runner: the host a stage sees in a native test. */
export class FakeHost {
  /** @param {FakeOptions} [opts] */
  constructor(opts = {}) {
    this.opts = opts;
    /** Every log record: `{ level, message, fields }`. @type {Array<{ level: string, message: string, fields: Record<string, string> }>} */
    this.logs = [];
    /** Every progress report: `{ done, total, message }`. @type {Array<{ done: number, total: number | undefined, message: string }>} */
    this.progress = [];
    /** Every program started: `{ program, args, cwd, env, stdin }`. @type {object[]} */
    this.commands = [];
    /** What the stage wrote to programs' stdin (all of it, in order). @type {string | undefined} */
    this.stdin = undefined;
    /** Files by guest path. @type {Map<string, { data: Uint8Array, mtime: bigint }>} */
    this.files = new Map();
    /** Directories by guest path. @type {Set<string>} */
    this.dirs = new Set(['/artifacts/out', '/artifacts/in']);
    this.clock = 1n;
    const ws = typeof opts.workspace === 'string' ? readTree(opts.workspace) : opts.workspace;
    /** Mounted directories: guest path → writable. */
    this.mounts = new Map([['/artifacts/out', true], ['/artifacts/in', false]]);
    if (ws) {
      this.mounts.set('/workspace', opts.workspaceAccess === 'write');
      this.dirs.add('/workspace');
      for (const [rel, data] of Object.entries(ws)) this.#put(`/workspace/${rel}`, bytes(data));
    }
    for (const a of opts.inputs ?? []) this.#put(`/artifacts/in/${a.stage}/${a.name}`, bytes(a.content));
    this.fs = this.#fs();
  }

  #mkdirs(dir) {
    const parts = dir.split('/');
    for (let i = 2; i <= parts.length; i++) this.dirs.add(parts.slice(0, i).join('/'));
  }

  #put(path, data) {
    this.#mkdirs(path.split('/').slice(0, -1).join('/'));
    this.files.set(path, { data, mtime: this.clock++ });
  }

  #mount(path) {
    for (const [root, writable] of this.mounts) if (path === root || path.startsWith(`${root}/`)) return { writable };
    throw new FsError('not-mounted', path);
  }

  #fs() {
    return {
      readFile: (path) => {
        this.#mount(path);
        const f = this.files.get(path);
        if (f) return f.data;
        throw new FsError(this.dirs.has(path) ? 'is-directory' : 'no-entry', path);
      },
      writeFile: (path, data) => {
        if (!this.#mount(path).writable) throw new FsError('read-only', path);
        const parent = path.split('/').slice(0, -1).join('/');
        if (!this.dirs.has(parent)) throw new FsError('no-entry', path);
        this.#put(path, data);
      },
      list: (path) => {
        this.#mount(path);
        if (this.files.has(path)) throw new FsError('not-directory', path);
        if (!this.dirs.has(path)) throw new FsError('no-entry', path);
        const entries = new Map();
        const under = (p) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/');
        for (const d of this.dirs) if (under(d)) entries.set(d.slice(path.length + 1), 'directory');
        for (const f of this.files.keys()) if (under(f)) entries.set(f.slice(path.length + 1), 'regular-file');
        return [...entries].map(([name, type]) => ({ name, type }));
      },
      stat: (path) => {
        this.#mount(path);
        const f = this.files.get(path);
        if (f) return { type: 'regular-file', size: f.data.length, mtimeNs: f.mtime };
        return this.dirs.has(path) ? { type: 'directory', size: 0, mtimeNs: 0n } : null;
      },
      mkdirp: (path) => {
        if (!this.#mount(path).writable) throw new FsError('read-only', path);
        this.#mkdirs(path);
      },
    };
  }

  /** The text of a file the stage wrote under `/artifacts/out` (undefined if none). @param {string} rel */
  artifact(rel) {
    const f = this.files.get(`/artifacts/out/${rel}`);
    return f && dec.decode(f.data);
  }

  /** Artifacts written, by path relative to `/artifacts/out`. @returns {Record<string, string>} */
  artifacts() {
    const out = {};
    for (const [p, f] of this.files) if (p.startsWith('/artifacts/out/')) out[p.slice('/artifacts/out/'.length)] = dec.decode(f.data);
    return out;
  }

  /** The text of workspace file `rel` now (after the stage wrote it). @param {string} rel */
  workspaceFile(rel) {
    const f = this.files.get(`/workspace/${rel}`);
    return f && dec.decode(f.data);
  }

  // --- the Host interface ---

  /** @param {string} level @param {string} message @param {Array<[string, string]>} fields */
  log(level, message, fields) {
    this.logs.push({ level, message, fields: Object.fromEntries(fields) });
  }

  /** @param {bigint} done @param {bigint | undefined} total @param {string} message */
  recordProgress(done, total, message) {
    this.progress.push({ done: Number(done), total: total === undefined ? undefined : Number(total), message });
  }

  /** @returns {boolean} */
  isCancelled() {
    const c = this.opts.cancelled;
    return typeof c === 'function' ? Boolean(c()) : Boolean(c);
  }

  #result(cmd) {
    this.commands.push({ program: cmd.program, args: cmd.args, cwd: cmd.cwd, env: Object.fromEntries(cmd.env ?? []), stdin: cmd.stdin });
    const table = this.opts.exec ?? {};
    if (!Object.hasOwn(table, cmd.program)) {
      const granted = Object.keys(table);
      throw { payload: { tag: 'denied', val: `exec of \`${cmd.program}\` is not allowed: grants.exec is [${granted.join(', ')}]; add \`${cmd.program}\` to the stage's grants.exec to allow it` } };
    }
    let r = table[cmd.program];
    if (typeof r === 'function') r = r(cmd.args, cmd);
    if (r === null) throw { payload: { tag: 'not-found', val: `\`${cmd.program}\` is granted but not installed on the host PATH` } };
    r = r ?? {};
    const status = r.timedOut ? { tag: 'timed-out' } : { tag: 'exited', val: r.status ?? 0 };
    return { status, stdout: bytes(r.stdout), stderr: bytes(r.stderr) };
  }

  #logLines(program, data) {
    for (const line of dec.decode(data).split('\n')) if (line) this.log('info', line, [['program', program]]);
  }

  /** The `run` call: a program to its end. */
  execRun(program, args, cwd, timeoutMs) {
    const r = this.#result({ program, args, cwd, env: [], stdin: false, timeoutMs });
    const timedOut = r.status.tag === 'timed-out';
    return { status: timedOut ? -1 : r.status.val, stdout: r.stdout, stderr: r.stderr, truncated: false, timedOut };
  }

  /** The `spawn` call, with the command's output modes. */
  execSpawn(cmd) {
    const r = this.#result(cmd);
    const stream = (mode, data) => {
      if (mode === 'log' || mode === 'tee') this.#logLines(cmd.program, data);
      if (mode !== 'pipe' && mode !== 'tee') return null;
      let left = data;
      return { read: () => { const d = left; left = null; return d && d.length ? d : null; } };
    };
    let out = stream(cmd.stdout, r.stdout);
    let err = stream(cmd.stderr, r.stderr);
    let stdin = cmd.stdin ? { write: (d) => { this.stdin = (this.stdin ?? '') + dec.decode(d); }, close() {} } : null;
    const once = (v, clear) => () => { const x = v(); clear(); return x; };
    return {
      stdin: once(() => stdin, () => { stdin = null; }),
      stdout: once(() => out, () => { out = null; }),
      stderr: once(() => err, () => { err = null; }),
      tryWait: () => r.status,
      wait: () => r.status,
      kill: () => {},
      truncated: () => false,
    };
  }

  /** Spawn, read both streams, wait. */
  execCollect(cmd) {
    const p = this.execSpawn(cmd);
    const all = (s) => (s ? s.read() ?? new Uint8Array() : new Uint8Array());
    return { stdout: all(p.stdout()), stderr: all(p.stderr()), status: p.wait(), truncated: false };
  }

  /** The `secrets.get` call. */
  secretGet(name) {
    const table = this.opts.secrets ?? {};
    if (!Object.hasOwn(table, name)) {
      throw { payload: { tag: 'denied', val: `secret \`${name}\` is not granted: grants.secrets is [${Object.keys(table).join(', ')}]` } };
    }
    const v = table[name];
    if (v === null || v === undefined) throw { payload: { tag: 'not-found', val: `secret \`${name}\` is granted but has no value` } };
    return v;
  }

  /** This fake as the SDK's `Host`. */
  host() {
    return {
      log: (l, m, f) => this.log(l, m, f),
      progress: (d, t, m) => this.recordProgress(d, t, m),
      isCancelled: () => this.isCancelled(),
      execRun: (p, a, c, t) => this.execRun(p, a, c, t),
      execSpawn: (c) => this.execSpawn(c),
      execCollect: (c) => this.execCollect(c),
      secretGet: (n) => this.secretGet(n),
      fs: this.fs,
    };
  }

  /** The WIT `context` the runner would pass. */
  context() {
    const o = this.opts;
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
    return {
      runId: 'test-run',
      pipeline: 'test',
      stage: o.stage ?? 'test',
      environment: o.environment,
      config: typeof o.config === 'string' ? o.config : JSON.stringify(o.config ?? {}),
      inputs: (o.inputs ?? []).map((a) => ({
        stage: a.stage,
        name: a.name,
        digest: `sha256:${'0'.repeat(64)}`,
        size: BigInt(bytes(a.content).length),
        mediaType: a.mediaType ?? 'application/octet-stream',
        role: a.role,
        annotations: Object.entries(a.annotations ?? {}),
      })),
      outputsDir: '/artifacts/out',
      upstream: o.upstream ?? [],
      attempt: o.attempt ?? 1,
      deadline: { seconds: deadline, nanoseconds: 0 },
      gracePeriod: 10000000000n,
    };
  }
}

/**
 * The outcome of {@link runStage}.
 * @typedef {object} StageResult
 * @property {boolean} ok `run` returned a report
 * @property {any} report the WIT report (`summary`, `metrics`, `gates`, `outputs`, `artifacts`, `findings`), when ok
 * @property {{ kind: 'invalid-config' | 'denied' | 'failed', message: string, capability?: object } | undefined} error why it failed
 * @property {any} info what `describe` returned, with `configSchema` parsed
 * @property {FakeHost} host the fake: `logs`, `progress`, `commands`, `artifacts()`
 * @property {Array<{ level: string, message: string, fields: Record<string, string> }>} logs
 * @property {(name: string) => number | undefined} metric a metric's value
 * @property {(name: string) => any} gate a gate by name
 * @property {(name: string) => string | undefined} output an output's value
 * @property {(rel: string) => string | undefined} artifact the text of an artifact written
 */

/**
 * Runs `plugin` (what `defineStage` returned) once against a
 * {@link FakeHost} built from `opts`.
 * @param {{ describe(): any, run(ctx: any): any }} plugin
 * @param {FakeOptions} [opts]
 * @returns {StageResult}
 */
export function runStage(plugin, opts = {}) {
  const fake = new FakeHost(opts);
  const restore = useHost(fake.host());
  try {
    const info = plugin.describe();
    const parsed = { ...info, configSchema: info.configSchema ? JSON.parse(info.configSchema) : undefined };
    let report;
    let error;
    try {
      report = plugin.run(fake.context());
    } catch (e) {
      const p = e && typeof e === 'object' ? e.payload : undefined;
      if (!p) throw new Error(`the stage threw without a stage-error payload (a component would trap): ${e}`);
      error = {
        kind: p.tag,
        message: typeof p.val === 'string' ? p.val : `denied: grant \`${grantFor(p.val)}\``,
        ...(p.tag === 'denied' ? { capability: p.val } : {}),
      };
    }
    return {
      ok: error === undefined,
      report,
      error,
      info: parsed,
      host: fake,
      logs: fake.logs,
      metric: (name) => report?.metrics.find((m) => m.name === name)?.value,
      gate: (name) => report?.gates.find((g) => g.name === name),
      output: (name) => report?.outputs.find(([k]) => k === name)?.[1],
      artifact: (rel) => fake.artifact(rel),
    };
  } finally {
    restore();
  }
}
