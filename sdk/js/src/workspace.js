// SPDX-License-Identifier: Apache-2.0
/**
 * The workspace (`/workspace`, readable or writable only as the pipeline
 * grants): finding files by path or glob with include and exclude patterns
 * (`*` and `?` within a directory, `**` across, `[abc]` classes), reading
 * and writing them, and telling the files a command wrote from the ones
 * that were there before ({@link Snapshot}). Mirrors the Rust SDK's
 * `workspace` module.
 * @module
 */
import { FsError, host } from './host.js';
import { ConfigError, Denied, NotFound, StageError, capability } from './errors.js';

/** Guest path of the workspace preopen. */
export const WORKSPACE_DIR = '/workspace';

const META = /[*?[]/;
const escape = (c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * The regular expression for glob `pattern`, or a string saying why it is
 * not a valid glob.
 * @param {string} pattern
 * @returns {RegExp | string}
 */
function compile(pattern) {
  const p = pattern.replace(/^(\.\/)+/, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      const whole = (i === 0 || p[i - 1] === '/') && (i + 2 === p.length || p[i + 2] === '/');
      if (!whole) return '`**` must be a whole path component (`a/**/b`, `**/*.js`)';
      if (i + 2 === p.length) {
        re += '.*';
        i += 1;
      } else {
        re += '(?:[^/]*/)*';
        i += 2;
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      let j = i + 1;
      let negate = false;
      if (p[j] === '!') {
        negate = true;
        j++;
      }
      // A `]` right after `[` (or `[!`) is a literal member.
      let k = p[j] === ']' ? j + 1 : j;
      while (k < p.length && p[k] !== ']') k++;
      if (k >= p.length) return 'unclosed `[`';
      const members = p.slice(j, k).replace(/[\\\]^]/g, '\\$&');
      re += `(?!/)[${negate ? '^' : ''}${members}]`;
      i = k;
    } else {
      re += escape(c);
    }
  }
  return new RegExp(`^${re}$`, 'u');
}

/**
 * Checks that `pattern` (the value of config key `key`, e.g. `with.files`)
 * is a valid glob relative to the workspace that cannot leave it.
 * @param {string} key
 * @param {string} pattern
 * @throws {ConfigError}
 */
export function checkPattern(key, pattern) {
  if (typeof pattern !== 'string' || pattern.trim() === '') {
    throw new ConfigError(key, 'empty; give a path or glob relative to the workspace, e.g. `dist/app.tar.gz` or `reports/*.xml`');
  }
  if (pattern.startsWith('/') || pattern.split('/').includes('..')) {
    throw new ConfigError(key, `\`${pattern}\` must be relative to the workspace and must not contain \`..\`; write it as seen from the workspace root, e.g. \`reports/*.xml\``);
  }
  const re = compile(pattern);
  if (typeof re === 'string') throw new ConfigError(key, `\`${pattern}\` is not a valid glob (${re}); escape \`[\`, \`*\` and \`?\` as \`[[]\`, \`[*]\`, \`[?]\``);
}

/**
 * True when glob `pattern` matches workspace-relative path `rel`.
 * @param {string} pattern
 * @param {string} rel
 */
export function matches(pattern, rel) {
  const re = compile(pattern);
  if (typeof re === 'string') throw new ConfigError('pattern', `\`${pattern}\` is not a valid glob (${re})`);
  return re.test(rel);
}

/** The directory to start walking from: the pattern's leading components without wildcards. */
function base(pattern) {
  const parts = pattern.replace(/^(\.\/)+/, '').split('/');
  const fixed = [];
  for (const part of parts.slice(0, -1)) {
    if (META.test(part)) break;
    fixed.push(part);
  }
  return fixed.join('/');
}

const join = (dir, name) => (dir === '' ? name : `${dir}/${name}`);

/** The workspace: files by relative path (`src/app.js`), `/`-separated. */
export class Workspace {
  /** @param {string} [root] the guest path of the workspace */
  constructor(root = WORKSPACE_DIR) {
    /** The guest path of the workspace root. */
    this.root = root;
  }

  /** The guest path of `rel`. @param {string} rel */
  path(rel) {
    return rel === '' || rel === '.' ? this.root : `${this.root}/${rel.replace(/^(\.\/)+/, '')}`;
  }

  #fail(e, rel, writing) {
    if (!(e instanceof FsError)) throw e;
    if (e.code === 'not-mounted') throw new Denied(writing ? capability.workspaceWrite : capability.workspaceRead);
    if (writing && ['read-only', 'access', 'not-permitted'].includes(e.code)) throw new Denied(capability.workspaceWrite);
    if (e.code === 'no-entry') throw new NotFound(`${rel}: no such file in the workspace`);
    throw StageError.failed(`${writing ? 'writing' : 'reading'} ${rel} in the workspace: ${e.code}`);
  }

  /**
   * Workspace-relative paths of the regular files that match one of
   * `include` (globs or paths) and none of `exclude`, sorted. A directory
   * that an exclude pattern ending in `/**` covers is not walked at all
   * (`**\/node_modules/**`).
   * @param {string | string[]} include
   * @param {{ exclude?: string[] }} [opts]
   * @returns {string[]}
   * @throws {ConfigError} for a pattern that is not a valid relative glob
   * @throws {Denied} without a workspace grant
   */
  find(include, opts = {}) {
    const includes = (Array.isArray(include) ? include : [include]).map((p, i) => {
      checkPattern(`include[${i}]`, p);
      return { p, re: /** @type {RegExp} */ (compile(p)) };
    });
    const excludes = (opts.exclude ?? []).map((p, i) => {
      checkPattern(`exclude[${i}]`, p);
      return /** @type {RegExp} */ (compile(p));
    });
    const prune = (opts.exclude ?? []).filter((p) => p.endsWith('/**')).map((p) => /** @type {RegExp} */ (compile(p.slice(0, -3))));
    const found = new Set();
    const fs = host().fs;
    const walk = (dir, visit) => {
      let entries;
      try {
        entries = fs.list(this.path(dir));
      } catch (e) {
        // A start directory that does not exist matches nothing, as in a shell.
        if (e instanceof FsError && ['no-entry', 'not-directory'].includes(e.code)) return;
        this.#fail(e, dir || '.', false);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const rel = join(dir, e.name);
        if (e.type === 'directory') {
          if (!prune.some((re) => re.test(rel))) walk(rel, visit);
        } else if (e.type === 'regular-file') {
          visit(rel);
        }
      }
    };
    for (const { p, re } of includes) {
      if (!META.test(p)) {
        const rel = p.replace(/^(\.\/)+/, '');
        const st = this.#stat(rel);
        if (st?.type === 'regular-file' && !excludes.some((x) => x.test(rel))) found.add(rel);
        continue;
      }
      walk(base(p), (rel) => {
        if (re.test(rel) && !excludes.some((x) => x.test(rel))) found.add(rel);
      });
    }
    return [...found].sort();
  }

  #stat(rel) {
    try {
      return host().fs.stat(this.path(rel));
    } catch (e) {
      return this.#fail(e, rel, false);
    }
  }

  /** True when `rel` exists (a file or directory). @param {string} rel */
  exists(rel) {
    return this.#stat(rel) !== null;
  }

  /** The bytes of `rel`. @param {string} rel @returns {Uint8Array} */
  readBytes(rel) {
    try {
      return host().fs.readFile(this.path(rel));
    } catch (e) {
      return this.#fail(e, rel, false);
    }
  }

  /** The text of `rel` (UTF-8). @param {string} rel @returns {string} */
  readText(rel) {
    return new TextDecoder().decode(this.readBytes(rel));
  }

  /**
   * `rel` parsed as JSON.
   * @param {string} rel
   * @returns {any}
   * @throws {StageError} (`failed`) naming the file when it is not valid JSON
   */
  readJson(rel) {
    const text = this.readText(rel);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw StageError.failed(`${rel}: not valid JSON: ${e instanceof Error ? e.message : e}`);
    }
  }

  /**
   * Writes `data` to `rel` (creating parent directories); needs
   * `grants: { workspace: write }`.
   * @param {string} rel
   * @param {string | Uint8Array} data
   */
  write(rel, data) {
    if (rel.startsWith('/') || rel.split('/').includes('..')) throw StageError.failed(`workspace path ${JSON.stringify(rel)} must be relative, without \`..\``);
    const fs = host().fs;
    try {
      const parent = rel.split('/').slice(0, -1).join('/');
      if (parent) fs.mkdirp(this.path(parent));
      fs.writeFile(this.path(rel), typeof data === 'string' ? new TextEncoder().encode(data) : data);
    } catch (e) {
      this.#fail(e, rel, true);
    }
  }

  /**
   * Records the files that `include` matches now, with their size and
   * modification time, to tell later which ones a command wrote.
   * @param {string | string[]} include
   * @param {{ exclude?: string[] }} [opts]
   * @returns {Snapshot}
   */
  snapshot(include, opts = {}) {
    return new Snapshot(this, include, opts);
  }
}

/** The files some patterns matched at one moment, with their stamps (size and modification time). */
export class Snapshot {
  /** @param {Workspace} ws @param {string | string[]} include @param {{ exclude?: string[] }} opts */
  constructor(ws, include, opts) {
    this.ws = ws;
    this.include = include;
    this.opts = opts;
    /** @type {Map<string, string>} */
    this.stamps = new Map(ws.find(include, opts).map((rel) => [rel, this.#stamp(rel)]));
  }

  #stamp(rel) {
    const st = host().fs.stat(this.ws.path(rel));
    return st ? `${st.size}:${st.mtimeNs}` : '';
  }

  /** True when `rel` is new or changed since the snapshot was taken. @param {string} rel */
  isFresh(rel) {
    const before = this.stamps.get(rel);
    return before === undefined || before !== this.#stamp(rel);
  }

  /** The files the patterns match now that are new or changed since the snapshot, sorted. @returns {string[]} */
  changed() {
    return this.ws.find(this.include, this.opts).filter((rel) => this.isFresh(rel));
  }
}
