declare module 'sluice:stage/log@0.2.0' {
  /**
   * Write one log record. `message` is one line (newlines are shown as
   * `\n`); `fields` are key/value pairs kept as data in `--json` events
   * and shown as `key=value` in the console. Never fails: past the
   * output cap, records are counted and dropped.
   */
  export function log(level: Level, message: string, fields: Array<[string, string]>): void;
  /**
   * Say how far the stage has got: `done` of `total` units (`total` is
   * `none` when unknown) and what it is doing. The console shows the
   * latest progress next to the stage's elapsed time; `--json` emits a
   * `stage_progress` event (at most ten per second per stage, the latest
   * always kept). Never fails.
   */
  export function progress(done: bigint, total: bigint | undefined, message: string): void;
  /**
   * How important a log line is. The console shows `info` and above
   * (`--verbose`: everything); the log file keeps everything.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
