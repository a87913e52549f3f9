declare module 'sluice:stage/secrets@0.2.0' {
  /**
   * The secret's value.
   */
  export function get(name: string): string;
  /**
   * Why a secret could not be read.
   */
  export type ErrorCode = ErrorCodeDenied | ErrorCodeNotFound;
  /**
   * The secret is not in the stage's `grants.secrets`.
   */
  export interface ErrorCodeDenied {
    tag: 'denied',
    val: string,
  }
  /**
   * The secret is granted but the runner has no value for it.
   */
  export interface ErrorCodeNotFound {
    tag: 'not-found',
    val: string,
  }
}
