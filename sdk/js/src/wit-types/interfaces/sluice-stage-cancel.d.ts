/// <reference path="./wasi-io-poll.d.ts" />
declare module 'sluice:stage/cancel@0.2.0' {
  /**
   * A pollable that becomes ready once the stage is cancelled (and stays
   * ready). Poll it together with the stage's own waits (a sleep, an
   * HTTP response, a process) to notice cancellation promptly. Fails
   * only when the stage holds too many handles (it then traps).
   */
  export function subscribe(): Pollable;
  /**
   * Whether the stage has been cancelled. Cheap; call it between units
   * of work.
   */
  export function isCancelled(): boolean;
  export type Pollable = import('wasi:io/poll@0.2.12').Pollable;
}
