// SPDX-License-Identifier: Apache-2.0
/**
 * The one seam between the SDK and the runner. Everything the SDK asks of
 * the host goes through the {@link Host} returned by {@link host}: inside a
 * component that is the WIT imports (`wit-host.js`), in a native test a
 * fake (`testing.js`). No other module imports `sluice:*` or `wasi:*`.
 * @module
 */

/**
 * A file-system error: `code` is the WASI `error-code` (`no-entry`,
 * `access`, `read-only`, `not-permitted`, ...) or `not-mounted` when no
 * preopened directory holds `path` (the capability was not granted).
 */
export class FsError extends Error {
  /** @param {string} code @param {string} path */
  constructor(code, path) {
    super(`${path}: ${code}`);
    this.name = 'FsError';
    /** The WASI error code, or `not-mounted`. */
    this.code = code;
    /** The guest path. */
    this.path = path;
  }
}

/**
 * What the SDK needs from the runner. Errors of the exec and secrets calls
 * are thrown as componentize-js does: an object whose `payload` is the WIT
 * `error-code` (`{ tag: 'denied', val: '...' }`).
 * @typedef {object} Host
 * @property {(level: string, message: string, fields: Array<[string, string]>) => void} log
 * @property {(done: bigint, total: bigint | undefined, message: string) => void} progress
 * @property {() => boolean} isCancelled
 * @property {(program: string, args: string[], cwd: string | undefined, timeoutMs: number | undefined) => { status: number, stdout: Uint8Array, stderr: Uint8Array, truncated: boolean, timedOut: boolean }} execRun
 * @property {(command: object) => HostProcess} execSpawn
 * @property {(command: object) => { status: { tag: string, val?: number }, stdout: Uint8Array, stderr: Uint8Array, truncated: boolean }} execCollect
 *   Spawn `command` (stdin closed), read both streams to their end and wait.
 * @property {(name: string) => string} secretGet
 * @property {HostFs} fs
 */

/**
 * Files by absolute guest path (`/workspace/a.txt`); errors are {@link FsError}.
 * @typedef {object} HostFs
 * @property {(path: string) => Uint8Array} readFile
 * @property {(path: string, bytes: Uint8Array) => void} writeFile
 * @property {(path: string) => Array<{ name: string, type: string }>} list
 * @property {(path: string) => { type: string, size: number, mtimeNs: bigint } | null} stat
 * @property {(path: string) => void} mkdirp
 */

/**
 * A spawned program.
 * @typedef {object} HostProcess
 * @property {() => ({ write(bytes: Uint8Array): void, close(): void } | null)} stdin
 * @property {() => ({ read(): Uint8Array | null } | null)} stdout
 * @property {() => ({ read(): Uint8Array | null } | null)} stderr
 * @property {() => ({ tag: string, val?: number } | undefined)} tryWait
 * @property {() => { tag: string, val?: number }} wait
 * @property {() => void} kill
 * @property {() => boolean} truncated
 */

/** @type {Host | null} */
let real = null;
/** @type {Host | null} */
let override = null;

const outside = () => {
  throw new Error(
    'sluice-stage: no host: this code runs outside a sluice component; in a native test, run the stage with runStage() from sluice-stage/testing.js',
  );
};

/** @returns {Host} the host in use: a test's fake if one is installed, else the component's imports. */
export function host() {
  const h = override ?? real;
  if (!h) outside();
  return /** @type {Host} */ (h);
}

/** Called once by `wit-host.js`. @param {Host} h */
export function setRealHost(h) {
  real = h;
}

/**
 * Installs `h` in place of the real host until the returned function is
 * called (used by `testing.js`).
 * @param {Host} h
 * @returns {() => void} restores the previous host
 */
export function useHost(h) {
  const before = override;
  override = h;
  return () => {
    override = before;
  };
}
