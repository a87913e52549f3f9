/// <reference path="./wasi-io-poll.d.ts" />
/// <reference path="./wasi-io-streams.d.ts" />
declare module 'sluice:stage/exec@0.2.0' {
  /**
   * Start `command`. Fails when the program is not granted
   * (`denied`), not installed (`not-found`), the command is not valid
   * (`invalid-argument`), or the system cannot start it
   * (`spawn-failed`).
   */
  export function spawn(command: Command): Process;
  /**
   * Run `program` with `args` to its end, capturing stdout and stderr
   * (0.1's call, kept as it was).
   * 
   * - `program`: a bare name from `grants.exec` (never a path).
   * - `cwd`: a directory relative to the workspace root (or an absolute
   *   guest path under `/workspace`); defaults to the workspace root.
   * - `timeout-ms`: defaults to, and is capped at, the time the stage has
   *   left.
   */
  export function run(program: string, args: Array<string>, cwd: string | undefined, timeoutMs: number | undefined): Output;
  export type InputStream = import('wasi:io/streams@0.2.12').InputStream;
  export type OutputStream = import('wasi:io/streams@0.2.12').OutputStream;
  export type Pollable = import('wasi:io/poll@0.2.12').Pollable;
  /**
   * Where a program's stdout or stderr goes.
   * # Variants
   * 
   * ## `"pipe"`
   * 
   * To the stage: read it from the process's stream (`spawn`), or
   * get it in `output` (`run`), at most the stage's output cap.
   * ## `"log"`
   * 
   * To the stage log, line by line as it arrives, stdout and stderr
   * in the order they arrive, as the program wrote them. Shown live
   * in the console and in `--json` events; counts against the
   * stage's output cap.
   * ## `"discard"`
   * 
   * Nowhere (`/dev/null`).
   * ## `"tee"`
   * 
   * Both: to the stage log as it arrives (like `log`) and to the
   * stage's stream (like `pipe`, at most the output cap), for a
   * stage that shows a tool's output live and also reads it (a test
   * runner's summary, the end of a build's errors). The stage must
   * read the stream: a full pipe stops the program. Lines of two
   * `tee` streams are in arrival order within each stream only.
   */
  export type OutputMode = 'pipe' | 'log' | 'discard' | 'tee';
  /**
   * A program to run.
   */
  export interface Command {
    /**
     * A bare name from `grants.exec` (never a path).
     */
    program: string,
    /**
     * Its arguments.
     */
    args: Array<string>,
    /**
     * A directory relative to the workspace root (or an absolute guest
     * path under `/workspace`); defaults to the workspace root. Without
     * a workspace grant the program runs in an empty scratch
     * directory.
     */
    cwd?: string,
    /**
     * Variables set for the program on top of its cleared environment.
     * `PATH` may not be set (the runner resolves programs on the
     * host's own `PATH`).
     */
    env: Array<[string, string]>,
    /**
     * `true`: the program's stdin is a pipe the stage writes to
     * (`process.stdin`); `false`: it reads `/dev/null`.
     */
    stdin: boolean,
    /**
     * Where stdout goes.
     */
    stdout: OutputMode,
    /**
     * Where stderr goes.
     */
    stderr: OutputMode,
    /**
     * Kill the program after this long; defaults to, and is capped
     * at, the time the stage has left.
     */
    timeoutMs?: number,
  }
  /**
   * How a program ended.
   */
  export type ExitStatus = ExitStatusExited | ExitStatusSignaled | ExitStatusTimedOut | ExitStatusKilled;
  /**
   * It exited with this code.
   */
  export interface ExitStatusExited {
    tag: 'exited',
    val: number,
  }
  /**
   * It was killed by this signal, not by the runner.
   */
  export interface ExitStatusSignaled {
    tag: 'signaled',
    val: number,
  }
  /**
   * The runner killed it because it ran past its timeout.
   */
  export interface ExitStatusTimedOut {
    tag: 'timed-out',
  }
  /**
   * The stage killed it (`process.kill`, or dropping the process).
   */
  export interface ExitStatusKilled {
    tag: 'killed',
  }
  /**
   * What a finished program produced (0.1's `run`).
   */
  export interface Output {
    /**
     * Exit status; -1 when the program was killed by a signal or by the
     * timeout.
     */
    status: number,
    /**
     * Captured standard output, at most the stage's output cap.
     */
    stdout: Uint8Array,
    /**
     * Captured standard error, at most the stage's output cap.
     */
    stderr: Uint8Array,
    /**
     * True when stdout or stderr was cut at the cap.
     */
    truncated: boolean,
    /**
     * True when the program was killed because it ran past its timeout.
     */
    timedOut: boolean,
  }
  /**
   * Why a program could not be run at all.
   */
  export type ErrorCode = ErrorCodeDenied | ErrorCodeNotFound | ErrorCodeInvalidArgument | ErrorCodeSpawnFailed;
  /**
   * The program is not in the stage's `grants.exec`; the message says
   * what to add.
   */
  export interface ErrorCodeDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The program was granted but is not installed on the host PATH.
   */
  export interface ErrorCodeNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * `cwd` is not a directory inside the workspace, `env` sets `PATH`
   * or a name with `=` or NUL, or an argument is not valid.
   */
  export interface ErrorCodeInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  /**
   * The operating system refused to start the program.
   */
  export interface ErrorCodeSpawnFailed {
    tag: 'spawn-failed',
    val: string,
  }
  
  export class Process implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * The program's stdin, when the command asked for one. Returned
    * once (later calls return `none`); dropping the stream closes it,
    * which is how the program sees end of input.
    */
    stdin(): OutputStream | undefined;
    /**
    * The program's stdout, when its mode is `pipe` or `tee`. Returned
    * once.
    * The stream ends when the program closes it; reading past the
    * stage's output cap ends it early (see `truncated`).
    */
    stdout(): InputStream | undefined;
    /**
    * The program's stderr, when its mode is `pipe` or `tee`. Returned
    * once.
    */
    stderr(): InputStream | undefined;
    /**
    * Ready once the program has exited.
    */
    subscribe(): Pollable;
    /**
    * How it ended, or `none` while it runs.
    */
    tryWait(): ExitStatus | undefined;
    /**
    * Wait until it ends. A stage that is cancelled while waiting
    * gets `killed` once its grace period ends.
    */
    wait(): ExitStatus;
    /**
    * Kill it (SIGTERM, then SIGKILL after the kill grace) with
    * everything it started. No effect once it has exited.
    */
    kill(): void;
    /**
    * True when piped output went past the stage's output cap and was
    * cut.
    */
    truncated(): boolean;
    [Symbol.dispose](): void;
  }
}
