// SPDX-License-Identifier: Apache-2.0
/**
 * Run host programs granted to the stage (`grants.exec`): to the end
 * ({@link run}, {@link output}, {@link tee}) or started and streamed
 * ({@link spawn}). A program runs with a cleared environment, in the
 * workspace, with a timeout, in the stage's process set.
 *
 * Errors: {@link Denied} (not granted; its `capability` is `exec PROGRAM`),
 * {@link NotFound} (granted but not installed), {@link ExecError} (bad
 * argument, could not start). A program that runs and exits non-zero is
 * not an error unless you ask: `check: true` or `.check()` throws
 * {@link ExecFailed} with the exit code.
 * @module
 */
import { host } from './host.js';
import { Denied, ExecError, ExecFailed, NotFound, capability, hostErrorCode } from './errors.js';

/** @typedef {'pipe' | 'log' | 'discard' | 'tee'} OutputMode where a program's stdout or stderr goes */

const MODES = new Set(['pipe', 'log', 'discard', 'tee']);
const decoder = new TextDecoder();

/**
 * A command line as a person would type it, for logs and messages: empty
 * arguments and ones with white space or quotes are quoted.
 * @param {string} program
 * @param {string[]} [args]
 * @returns {string}
 */
export function commandLine(program, args = []) {
  return [program, ...args].map((a) => (a === '' || /[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

/** How a program ended. */
export class ExitStatus {
  /** @param {{ tag: string, val?: number }} wit */
  constructor(wit) {
    /** `exited`, `signaled`, `timed-out` or `killed`. @type {'exited' | 'signaled' | 'timed-out' | 'killed'} */
    this.kind = /** @type {any} */ (wit.tag);
    /** The exit code (for `exited`) or signal (for `signaled`), else null. @type {number | null} */
    this.code = wit.val ?? null;
  }

  /** True when it exited with code 0. */
  get success() {
    return this.kind === 'exited' && this.code === 0;
  }

  /** `exit 2`, `killed by signal 9`, `timed out`, `killed`. */
  toString() {
    if (this.kind === 'exited') return `exit ${this.code}`;
    if (this.kind === 'signaled') return `killed by signal ${this.code}`;
    return this.kind === 'timed-out' ? 'timed out' : 'killed';
  }
}

/** What a finished program produced. */
export class ExecOutput {
  /**
   * @param {string} command the command line
   * @param {{ status: number, stdout: Uint8Array, stderr: Uint8Array, truncated: boolean, timedOut: boolean, exit?: ExitStatus }} o
   */
  constructor(command, o) {
    /** The command line, for messages. */
    this.command = command;
    /** Exit code; -1 when killed by a signal or the timeout. @type {number} */
    this.status = o.status;
    /** Captured stdout (at most the stage's output cap). @type {Uint8Array} */
    this.stdout = o.stdout;
    /** Captured stderr. @type {Uint8Array} */
    this.stderr = o.stderr;
    /** True when output was cut at the cap. */
    this.truncated = o.truncated;
    /** True when the program ran past its timeout. */
    this.timedOut = o.timedOut;
    /** How it ended. @type {ExitStatus} */
    this.exit = o.exit ?? new ExitStatus(o.timedOut ? { tag: 'timed-out' } : o.status < 0 ? { tag: 'killed' } : { tag: 'exited', val: o.status });
  }

  /** True when it exited with code 0. */
  get success() {
    return this.exit.success;
  }

  /** stdout as UTF-8 text. */
  get stdoutText() {
    return decoder.decode(this.stdout);
  }

  /** stderr as UTF-8 text. */
  get stderrText() {
    return decoder.decode(this.stderr);
  }

  /**
   * The last `maxLines` non-empty lines of stderr (of stdout when stderr is
   * empty), for a failure message.
   * @param {number} [maxLines]
   */
  tail(maxLines = 5) {
    const text = this.stderr.length ? this.stderrText : this.stdoutText;
    return text.split('\n').filter((l) => l.trim()).slice(-maxLines).join('\n');
  }

  /**
   * Returns this output when the program succeeded, else throws
   * {@link ExecFailed} with the exit code and the end of its output.
   * @returns {ExecOutput}
   */
  check() {
    if (this.success) return this;
    throw new ExecFailed(this.command, this.exit.kind === 'exited' ? this.exit.code : null, String(this.exit), this.tail(3));
  }
}

function hostError(program, e) {
  const code = hostErrorCode(e);
  switch (code?.tag) {
    case 'denied': return new Denied(capability.exec(program), `exec denied: \`${program}\` is not in the stage's grants.exec`);
    case 'not-found': return new NotFound(`exec program not found: ${code.val ?? program}`);
    case 'invalid-argument':
    case 'spawn-failed': return new ExecError(code.tag, String(code.val ?? ''));
    default: return e;
  }
}

function call(program, f) {
  try {
    return f();
  } catch (e) {
    throw hostError(program, e);
  }
}

/**
 * @typedef {object} ExecOptions
 * @property {string} [cwd] a directory relative to the workspace root (default: the root)
 * @property {Record<string, string>} [env] variables on top of the cleared environment (not `PATH`)
 * @property {number} [timeoutMs] kill it after this long (default and cap: the time the stage has left)
 * @property {boolean} [check] throw {@link ExecFailed} unless it exits 0
 */

function command(program, args, opts, modes) {
  for (const k of ['stdout', 'stderr']) {
    const v = modes[k];
    if (!MODES.has(v)) throw new TypeError(`exec ${program}: ${k} must be one of pipe, log, discard, tee (got ${JSON.stringify(v)})`);
  }
  return {
    program,
    args: args.map(String),
    cwd: opts.cwd,
    env: Object.entries(opts.env ?? {}).map(([k, v]) => [k, String(v)]),
    stdin: Boolean(modes.stdinPiped),
    stdout: modes.stdout,
    stderr: modes.stderr,
    timeoutMs: opts.timeoutMs,
  };
}

function collect(program, args, opts, mode) {
  const o = call(program, () => host().execCollect(command(program, args, opts, { stdout: mode, stderr: mode })));
  const exit = new ExitStatus(o.status);
  const out = new ExecOutput(commandLine(program, args), {
    status: exit.kind === 'exited' ? /** @type {number} */ (exit.code) : -1,
    stdout: o.stdout,
    stderr: o.stderr,
    truncated: o.truncated,
    timedOut: exit.kind === 'timed-out',
    exit,
  });
  return opts.check ? out.check() : out;
}

/**
 * Runs `program` with `args` to its end, capturing stdout and stderr
 * (stdin is `/dev/null`).
 * @param {string} program a bare name from `grants.exec`
 * @param {string[]} [args]
 * @param {ExecOptions} [opts]
 * @returns {ExecOutput}
 */
export function run(program, args = [], opts = {}) {
  if (opts.env && Object.keys(opts.env).length) return collect(program, args, opts, 'pipe');
  const o = call(program, () => host().execRun(program, args.map(String), opts.cwd, opts.timeoutMs));
  const out = new ExecOutput(commandLine(program, args), o);
  return opts.check ? out.check() : out;
}

/**
 * Like {@link run}, but stdout and stderr also stream into the stage log as
 * they arrive (a test runner's progress shows live, and the stage still
 * gets the output to parse).
 * @param {string} program
 * @param {string[]} [args]
 * @param {ExecOptions} [opts]
 * @returns {ExecOutput}
 */
export function tee(program, args = [], opts = {}) {
  return collect(program, args, opts, 'tee');
}

/** A stream of a spawned program's output. */
export class OutputReader {
  /** @param {{ read(): Uint8Array | null }} r */
  constructor(r) {
    this.r = r;
  }

  /** The next chunk (blocks until data arrives), or null at the end. @returns {Uint8Array | null} */
  read() {
    return this.r.read();
  }

  /** Everything to the end. @returns {Uint8Array} */
  readAll() {
    const chunks = [];
    for (let c = this.read(); c; c = this.read()) chunks.push(c);
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  }

  /** Everything to the end as UTF-8 text. @returns {string} */
  readText() {
    return decoder.decode(this.readAll());
  }
}

/** A running program. */
export class Process {
  /** @param {string} command @param {import('./host.js').HostProcess} p */
  constructor(command, p) {
    /** The command line. */
    this.command = command;
    this.p = p;
  }

  /** Its stdin (when spawned with `stdin: true`), once: `write(bytes | string)`, `close()`. */
  stdin() {
    const w = this.p.stdin();
    if (!w) return null;
    return {
      /** @param {Uint8Array | string} data */
      write: (data) => w.write(typeof data === 'string' ? new TextEncoder().encode(data) : data),
      close: () => w.close(),
    };
  }

  /** Its stdout when the mode is `pipe` or `tee`, once. @returns {OutputReader | null} */
  stdout() {
    const r = this.p.stdout();
    return r ? new OutputReader(r) : null;
  }

  /** Its stderr when the mode is `pipe` or `tee`, once. @returns {OutputReader | null} */
  stderr() {
    const r = this.p.stderr();
    return r ? new OutputReader(r) : null;
  }

  /** How it ended, or null while it runs. @returns {ExitStatus | null} */
  tryWait() {
    const s = this.p.tryWait();
    return s ? new ExitStatus(s) : null;
  }

  /** Waits until it ends. @returns {ExitStatus} */
  wait() {
    return new ExitStatus(this.p.wait());
  }

  /** Kills it (and everything it started). */
  kill() {
    this.p.kill();
  }

  /** True when piped output went past the output cap and was cut. */
  truncated() {
    return this.p.truncated();
  }
}

/**
 * Starts `program` and returns at once. Output goes to the stage log by
 * default (`log`); `pipe` gives it to the stage, `tee` both, `discard`
 * nowhere.
 * @param {string} program
 * @param {string[]} [args]
 * @param {ExecOptions & { stdin?: boolean, stdout?: OutputMode, stderr?: OutputMode }} [opts]
 * @returns {Process}
 */
export function spawn(program, args = [], opts = {}) {
  const cmd = command(program, args, opts, { stdout: opts.stdout ?? 'log', stderr: opts.stderr ?? 'log', stdinPiped: opts.stdin });
  return new Process(commandLine(program, args), call(program, () => host().execSpawn(cmd)));
}

/**
 * Spawns `program` with stdout and stderr piped, reads both to the end and
 * waits; like {@link run} but through `spawn` (so `env` works).
 * @param {string} program
 * @param {string[]} [args]
 * @param {ExecOptions} [opts]
 * @returns {ExecOutput}
 */
export function output(program, args = [], opts = {}) {
  return collect(program, args, opts, 'pipe');
}

/** The exec calls as one object: `exec.run('git', ['status'])`. */
export const exec = Object.freeze({ run, tee, spawn, output, commandLine });
