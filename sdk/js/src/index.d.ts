// SPDX-License-Identifier: Apache-2.0
// Types of sluice-stage, the JavaScript SDK for sluice stages. The WIT
// types (what the runner passes and receives) are generated into ./wit-types/ by
// scripts/gen-types.mjs (`jco guest-types`); this file describes the SDK's
// own surface on top of them.
/// <reference path="./wit-types/stage.d.ts" />

type WitTypes = typeof import('sluice:stage/types@0.2.0');
/** The WIT `context` record the runner passes to `run`. */
export type WitContext = import('sluice:stage/types@0.2.0').Context;
/** The WIT `report` record `run` returns. */
export type WitReport = import('sluice:stage/types@0.2.0').Report;
/** The WIT `plugin-info` record `describe` returns. */
export type WitPluginInfo = import('sluice:stage/types@0.2.0').PluginInfo;

// --- capabilities and errors --------------------------------------------------

/** A capability as the WIT `capability` variant. */
export type Capability = import('sluice:stage/types@0.2.0').Capability;
/** A capability written as a string: `workspace-read`, `exec:git`, `secret:TOKEN`, ... */
export type CapabilityString = 'workspace-read' | 'workspace-write' | `env:${string}` | `network:${string}` | `exec:${string}` | `secret:${string}`;

/** Builders for capabilities. */
export declare const capability: {
  readonly workspaceRead: Capability;
  readonly workspaceWrite: Capability;
  env(name: string): Capability;
  network(hostPort: string): Capability;
  exec(program: string): Capability;
  secret(name: string): Capability;
};
/** Normalizes a capability given as an object or a string. */
export declare function toCapability(c: Capability | CapabilityString): Capability;
/** The grant that allows `c`, as written in sluice.yaml (`exec: [git]`). */
export declare function grantFor(c: Capability): string;

/** Why a stage could not produce a report; throw it from `run`. */
export declare class StageError extends Error {
  constructor(kind: 'invalid-config' | 'denied' | 'failed', message: string, capability?: Capability);
  /** `invalid-config` and `denied` are never retried; `failed` is when the stage has `retries:`. */
  readonly kind: 'invalid-config' | 'denied' | 'failed';
  /** The missing capability, for `denied`. */
  readonly capability: Capability | undefined;
  /** A `with:` error; name the key in the message. */
  static invalidConfig(message: string): StageError;
  /** A missing grant. */
  static denied(capability: Capability | CapabilityString): Denied;
  /** The work failed. */
  static failed(message: string): StageError;
  /** The WIT `stage-error`. */
  toWit(): import('sluice:stage/types@0.2.0').StageError;
}
/** A capability the pipeline did not grant. */
export declare class Denied extends StageError {
  constructor(capability: Capability, message?: string);
  readonly capability: Capability;
}
/** A `with:` value that does not fit the schema; `path` is the key path (`with.files[2]`). */
export declare class ConfigError extends StageError {
  constructor(path: string, problem: string);
  readonly path: string;
}
/** A program granted but not installed, a secret without a value, a missing file. */
export declare class NotFound extends StageError {}
/** A program that could not be started. */
export declare class ExecError extends StageError {
  readonly code: 'invalid-argument' | 'spawn-failed';
}
/** A program that ran and did not succeed (from `check`). */
export declare class ExecFailed extends StageError {
  /** The exit code; null when it was killed or timed out. */
  readonly exitCode: number | null;
  readonly command: string;
}
/** The runner cancelled the stage. */
export declare class Cancelled extends StageError {}

// --- config schema ------------------------------------------------------------

/** A config value's schema: validates and yields JSON Schema. */
export declare class Schema<T> {
  /** The key may be left out. */
  optional(): Schema<T | undefined>;
  /** The value when the key is left out. */
  default(value: T): Schema<T>;
  /** A description for the JSON Schema. */
  describe(text: string): Schema<T>;
  /** The JSON Schema (draft 2020-12). */
  jsonSchema(): Record<string, unknown>;
  /** Validates `value`; throws a ConfigError naming the key. */
  parse(value: unknown, path?: string): T;
  readonly isOptional: boolean;
  readonly description: string | undefined;
}

/** `max-size` → `maxSize`. */
type CamelCase<S extends string> = S extends `${infer H}-${infer R}` ? `${H}${Capitalize<CamelCase<R>>}` : S;
/** The config `run` receives for `s.object(fields)`: keys in camelCase. */
export type Infer<F extends Record<string, Schema<any>>> = { [K in keyof F & string as CamelCase<K>]: F[K] extends Schema<infer T> ? T : never };

/** The schema builders. */
export declare const s: {
  string(o?: { minLength?: number; maxLength?: number; pattern?: string }): Schema<string>;
  number(o?: { minimum?: number; maximum?: number }): Schema<number>;
  integer(o?: { minimum?: number; maximum?: number }): Schema<number>;
  boolean(): Schema<boolean>;
  enum<const V extends string | number | boolean>(values: readonly V[]): Schema<V>;
  array<T>(item: Schema<T>, o?: { minItems?: number; maxItems?: number }): Schema<T[]>;
  object<F extends Record<string, Schema<any>>>(fields: F): Schema<Infer<F>>;
};
/** `max-size` → `maxSize`. */
export declare function camelCase(key: string): string;

// --- report -------------------------------------------------------------------

export type Verdict = 'pass' | 'warn' | 'fail' | 'inconclusive';
export type FindingLevel = 'note' | 'warning' | 'error';
/** What an artifact is for. */
export type ArtifactRole = import('sluice:stage/types@0.2.0').ArtifactRole;
/** A role as a string: a known role or a lowercase, dash-separated name of your own. */
export type RoleString = 'report' | 'test-results' | 'coverage' | 'package' | 'sbom' | 'provenance' | 'log' | (string & {});

/** The artifact roles. */
export declare const role: {
  readonly report: ArtifactRole;
  readonly testResults: ArtifactRole;
  readonly coverage: ArtifactRole;
  readonly package: ArtifactRole;
  readonly sbom: ArtifactRole;
  readonly provenance: ArtifactRole;
  readonly log: ArtifactRole;
  other(name: string): ArtifactRole;
};
export declare function toRole(r: ArtifactRole | RoleString): ArtifactRole;

/** How an artifact is described. */
export interface ArtifactOptions {
  mediaType?: string;
  role?: ArtifactRole | RoleString;
  annotations?: Record<string, string>;
}

/** One of the stage's own decisions. */
export declare class Gate {
  constructor(name: string, verdict: Verdict, message: string);
  static pass(name: string, message: string): Gate;
  static warn(name: string, message: string): Gate;
  static fail(name: string, message: string): Gate;
  static inconclusive(name: string, message: string): Gate;
  observed(value: number): Gate;
  threshold(value: number): Gate;
  readonly name: string;
  readonly verdict: Verdict;
  readonly message: string;
}

/** One result of a check. */
export declare class Finding {
  constructor(ruleId: string, level: FindingLevel, message: string);
  /** A workspace-relative path and 1-based line (0: the whole file). */
  at(path: string, line?: number): Finding;
  columns(start: number, end?: number): Finding;
  endLine(line: number): Finding;
  fingerprint(fp: string): Finding;
  helpUri(uri: string): Finding;
  readonly ruleId: string;
  readonly level: FindingLevel;
  readonly message: string;
}
/** Finding builders by level. */
export declare const finding: {
  error(ruleId: string, message: string): Finding;
  warning(ruleId: string, message: string): Finding;
  note(ruleId: string, message: string): Finding;
};
export declare const MAX_FINDINGS: number;

/** What a stage returns. */
export declare class Report {
  constructor(summary: string);
  metric(name: string, value: number, unit?: string): Report;
  gate(gate: Gate): Report;
  output(name: string, value: string | number | boolean): Report;
  artifact(path: string, opts?: ArtifactOptions): Report;
  /** Sets the findings; `[]` means "looked and found nothing". */
  findings(list: Finding[]): Report;
  finding(f: Finding): Report;
  /** The WIT report, checked with the runner's rules. */
  toWit(): WitReport;
  summary: string;
}
/** A new report. */
export declare function report(summary: string): Report;

// --- logging, progress, cancellation ------------------------------------------

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;
export declare const log: {
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  write(level: Level, message: string, fields?: Fields): void;
};
/** `done` of `total` units (undefined: unknown) and what the stage is doing. */
export declare function progress(done: number, total: number | undefined, message: string): void;
export declare function isCancelled(): boolean;
/** Throws Cancelled when the stage has been cancelled. */
export declare function checkCancelled(message?: string): void;

// --- exec and secrets ---------------------------------------------------------

export type OutputMode = 'pipe' | 'log' | 'discard' | 'tee';
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Throw ExecFailed unless it exits 0. */
  check?: boolean;
}
export interface SpawnOptions extends ExecOptions {
  stdin?: boolean;
  stdout?: OutputMode;
  stderr?: OutputMode;
}
export declare class ExitStatus {
  readonly kind: 'exited' | 'signaled' | 'timed-out' | 'killed';
  readonly code: number | null;
  readonly success: boolean;
  toString(): string;
}
export declare class ExecOutput {
  readonly command: string;
  readonly status: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  readonly truncated: boolean;
  readonly timedOut: boolean;
  readonly exit: ExitStatus;
  readonly success: boolean;
  readonly stdoutText: string;
  readonly stderrText: string;
  tail(maxLines?: number): string;
  check(): ExecOutput;
}
export declare class OutputReader {
  read(): Uint8Array | null;
  readAll(): Uint8Array;
  readText(): string;
}
export declare class Process {
  readonly command: string;
  stdin(): { write(data: Uint8Array | string): void; close(): void } | null;
  stdout(): OutputReader | null;
  stderr(): OutputReader | null;
  tryWait(): ExitStatus | null;
  wait(): ExitStatus;
  kill(): void;
  truncated(): boolean;
}
export declare function run(program: string, args?: string[], opts?: ExecOptions): ExecOutput;
export declare function output(program: string, args?: string[], opts?: ExecOptions): ExecOutput;
export declare function tee(program: string, args?: string[], opts?: ExecOptions): ExecOutput;
export declare function spawn(program: string, args?: string[], opts?: SpawnOptions): Process;
export declare function commandLine(program: string, args?: string[]): string;
export declare const exec: {
  run: typeof run;
  output: typeof output;
  tee: typeof tee;
  spawn: typeof spawn;
  commandLine: typeof commandLine;
};
export declare const secrets: {
  /** Throws Denied (not granted) or NotFound (no value). */
  get(name: string): string;
};

// --- workspace ----------------------------------------------------------------

export declare const WORKSPACE_DIR: string;
export declare function checkPattern(key: string, pattern: string): void;
export declare function matches(pattern: string, rel: string): boolean;
export declare class Snapshot {
  isFresh(rel: string): boolean;
  changed(): string[];
}
export declare class Workspace {
  constructor(root?: string);
  readonly root: string;
  path(rel: string): string;
  /** Relative paths of regular files matching `include` and no `exclude`, sorted. */
  find(include: string | string[], opts?: { exclude?: string[] }): string[];
  exists(rel: string): boolean;
  readBytes(rel: string): Uint8Array;
  readText(rel: string): string;
  readJson(rel: string): any;
  write(rel: string, data: string | Uint8Array): void;
  snapshot(include: string | string[], opts?: { exclude?: string[] }): Snapshot;
}

// --- context and stage --------------------------------------------------------

export declare const INPUTS_DIR: string;
export declare const OUTPUTS_DIR: string;
export interface InputArtifact {
  stage: string;
  name: string;
  digest: string;
  size: number;
  mediaType: string;
  role: ArtifactRole | undefined;
  annotations: Record<string, string>;
  path: string;
}
export declare class Context<C = Record<string, unknown>> {
  readonly runId: string;
  readonly pipeline: string;
  readonly stage: string;
  readonly environment: string | undefined;
  readonly attempt: number;
  readonly configJson: string;
  readonly config: C;
  readonly outputsDir: string;
  readonly workspace: Workspace;
  readonly deadline: Date;
  readonly gracePeriodMs: number;
  readonly inputs: InputArtifact[];
  readonly upstreamOutputs: Array<{ stage: string; name: string; value: string }>;
  timeLeftMs(): number;
  upstream(stage: string, name: string): string | undefined;
  readInput(artifact: InputArtifact): Uint8Array;
  writeArtifact(path: string, data: string | Uint8Array, opts?: ArtifactOptions): string;
}

export type StageKind = 'lint' | 'test' | 'scan' | 'build' | 'deploy' | 'smoke' | 'canary' | 'monitor' | 'remediate' | (string & {});
export interface StageDefinition<C> {
  name: string;
  version: string;
  kind?: StageKind;
  description?: string;
  config?: Schema<C>;
  capabilities?: Array<Capability | CapabilityString>;
  run(ctx: Context<C>): Report | string;
}
/** The `sluice:stage/plugin@0.2.0` export. */
export interface Plugin {
  describe(): WitPluginInfo;
  run(ctx: WitContext): WitReport;
}
/** Defines a stage; export the result as `plugin`. */
export declare function defineStage<C = Record<string, never>>(def: StageDefinition<C>): Plugin;
