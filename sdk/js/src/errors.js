// SPDX-License-Identifier: Apache-2.0
/**
 * Capabilities and the errors a stage throws. Every error here is a
 * {@link StageError}: `defineStage` turns it into the WIT `stage-error`
 * the runner records (`invalid-config`, `denied(capability)` or `failed`).
 * @module
 */

/**
 * A capability as the WIT `capability` variant: `{ tag: 'workspace-read' }`,
 * `{ tag: 'exec', val: 'git' }`, ...
 * @typedef {{ tag: 'workspace-read' | 'workspace-write' } | { tag: 'env' | 'network' | 'exec' | 'secret', val: string }} Capability
 */

const NAMED = new Set(['env', 'network', 'exec', 'secret']);

/** Builders for {@link Capability} values. */
export const capability = Object.freeze({
  /** Read the workspace at `/workspace`. @type {Capability} */
  workspaceRead: Object.freeze({ tag: 'workspace-read' }),
  /** Write the workspace at `/workspace`. @type {Capability} */
  workspaceWrite: Object.freeze({ tag: 'workspace-write' }),
  /** Read environment variable `name`. @param {string} name @returns {Capability} */
  env: (name) => ({ tag: 'env', val: name }),
  /** Connect over HTTP to `hostPort` (patterns allowed, e.g. `*:443`). @param {string} hostPort @returns {Capability} */
  network: (hostPort) => ({ tag: 'network', val: hostPort }),
  /** Run host program `program` through `exec`. @param {string} program @returns {Capability} */
  exec: (program) => ({ tag: 'exec', val: program }),
  /** Read secret `name`. @param {string} name @returns {Capability} */
  secret: (name) => ({ tag: 'secret', val: name }),
});

/**
 * Normalizes a capability given as a {@link Capability}, as
 * `'workspace-read'` / `'workspace-write'`, or as `'exec:git'`,
 * `'env:HOME'`, `'network:api.example.com:443'`, `'secret:TOKEN'`.
 * @param {Capability | string} c
 * @returns {Capability}
 */
export function toCapability(c) {
  if (typeof c === 'string') {
    if (c === 'workspace-read' || c === 'workspace-write') return { tag: c };
    const at = c.indexOf(':');
    const tag = c.slice(0, at);
    if (at > 0 && NAMED.has(tag) && at < c.length - 1) return { tag, val: c.slice(at + 1) };
  } else if (c && typeof c === 'object') {
    if (c.tag === 'workspace-read' || c.tag === 'workspace-write') return { tag: c.tag };
    if (NAMED.has(c.tag) && typeof c.val === 'string' && c.val !== '') return { tag: c.tag, val: c.val };
  }
  throw new TypeError(
    `capability ${JSON.stringify(c)}: write 'workspace-read', 'workspace-write', 'exec:PROGRAM', 'env:NAME', 'network:HOST:PORT' or 'secret:NAME' (or use capability.exec(...) etc.)`,
  );
}

/**
 * The pipeline grant that allows `c`, as written in `sluice.yaml`
 * (`workspace: read`, `exec: [git]`, `secrets: [TOKEN]`, ...).
 * @param {Capability} c
 * @returns {string}
 */
export function grantFor(c) {
  switch (c.tag) {
    case 'workspace-read': return 'workspace: read';
    case 'workspace-write': return 'workspace: write';
    case 'env': return `env: [${c.val}]`;
    case 'network': return `network: ["${c.val}"]`;
    case 'exec': return `exec: [${c.val}]`;
    case 'secret': return `secrets: [${c.val}]`;
    default: return JSON.stringify(c);
  }
}

/**
 * Why a stage could not produce a report. Throw it (or a subclass) from
 * `run`; the runner records the message and decides on retries from `kind`:
 * `invalid-config` and `denied` are never retried, `failed` is retried when
 * the stage has `retries:`. Any other thrown value fails the stage with its
 * message.
 */
export class StageError extends Error {
  /**
   * @param {'invalid-config' | 'denied' | 'failed'} kind
   * @param {string} message
   * @param {Capability} [cap] the missing capability, for `denied`
   */
  constructor(kind, message, cap) {
    super(message);
    this.name = 'StageError';
    /** `invalid-config`, `denied` or `failed`. @type {'invalid-config' | 'denied' | 'failed'} */
    this.kind = kind;
    /** The capability that was not granted (only for `denied`). @type {Capability | undefined} */
    this.capability = cap;
  }

  /** A `with:` error; name the key in `message` (`with.files: ...`). @param {string} message */
  static invalidConfig(message) {
    return new StageError('invalid-config', message);
  }

  /** A missing grant; the runner tells the user which grant to add. @param {Capability | string} cap */
  static denied(cap) {
    const c = toCapability(cap);
    return new Denied(c);
  }

  /** The work itself failed (retried when the stage has `retries:`). @param {string} message */
  static failed(message) {
    return new StageError('failed', message);
  }

  /**
   * The WIT `stage-error` value this error becomes.
   * @returns {{ tag: 'invalid-config' | 'failed', val: string } | { tag: 'denied', val: Capability }}
   */
  toWit() {
    if (this.kind === 'denied' && this.capability) return { tag: 'denied', val: this.capability };
    return { tag: this.kind === 'invalid-config' ? 'invalid-config' : 'failed', val: this.message };
  }
}

/** A capability the pipeline did not grant (an exec program, a secret, the workspace). */
export class Denied extends StageError {
  /** @param {Capability} cap @param {string} [message] the host's message */
  constructor(cap, message) {
    super('denied', message ?? `denied: grant \`${grantFor(cap)}\``, cap);
    this.name = 'Denied';
  }
}

/** A `with:` value that does not fit the stage's config schema. */
export class ConfigError extends StageError {
  /** @param {string} path the key path, e.g. `with.files[2]` @param {string} problem */
  constructor(path, problem) {
    super('invalid-config', `${path}: ${problem}`);
    this.name = 'ConfigError';
    /** The key path, e.g. `with.files[2]`. @type {string} */
    this.path = path;
  }
}

/** Something granted that does not exist: a program not installed, a secret without a value, a missing file. */
export class NotFound extends StageError {
  /** @param {string} message */
  constructor(message) {
    super('failed', message);
    this.name = 'NotFound';
  }
}

/** A program that could not be started (invalid argument or the system refused). */
export class ExecError extends StageError {
  /** @param {'invalid-argument' | 'spawn-failed'} code @param {string} message */
  constructor(code, message) {
    super('failed', `exec ${code}: ${message}`);
    this.name = 'ExecError';
    /** `invalid-argument` or `spawn-failed`. */
    this.code = code;
  }
}

/** A program that ran but did not succeed (thrown by `check()` / `{ check: true }`). */
export class ExecFailed extends StageError {
  /**
   * @param {string} commandLine the command as a person would type it
   * @param {number | null} exitCode the exit code; `null` when killed or timed out
   * @param {string} outcome `exit 2`, `timed out`, `killed by signal 9`, ...
   * @param {string} stderrTail the end of its stderr (or stdout)
   */
  constructor(commandLine, exitCode, outcome, stderrTail) {
    super('failed', `${commandLine}: ${outcome}${stderrTail ? `: ${stderrTail}` : ''}`);
    this.name = 'ExecFailed';
    /** The exit code, `null` when it was killed or timed out. @type {number | null} */
    this.exitCode = exitCode;
    /** The command line. */
    this.command = commandLine;
  }
}

/** The runner cancelled the stage (thrown by `checkCancelled()`). */
export class Cancelled extends StageError {
  /** @param {string} [message] */
  constructor(message = 'cancelled') {
    super('failed', message);
    this.name = 'Cancelled';
  }
}

/**
 * The error a host import threw, as `{ tag, val }` (componentize-js throws
 * a `ComponentError` whose `payload` is the WIT error variant), or null.
 * @param {unknown} e
 * @returns {{ tag: string, val?: unknown } | null}
 */
export function hostErrorCode(e) {
  const p = e && typeof e === 'object' && 'payload' in e ? /** @type {any} */ (e).payload : undefined;
  if (typeof p === 'string') return { tag: p };
  if (p && typeof p === 'object' && typeof p.tag === 'string') return p;
  return null;
}
