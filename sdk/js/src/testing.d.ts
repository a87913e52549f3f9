// SPDX-License-Identifier: Apache-2.0
// Types of sluice-stage/testing.js: running a stage natively with a fake host.
import type { Capability, Plugin, WitReport, WitPluginInfo } from './index.js';

/** What a program does in the fake; `null`: granted but not installed. */
export type ExecResult =
  | { status?: number; stdout?: string | Uint8Array; stderr?: string | Uint8Array; timedOut?: boolean }
  | ((args: string[], command: object) => ExecResult)
  | null;

export interface FakeOptions {
  config?: object | string;
  /** Files by relative path, or a directory on disk; left out: no workspace grant. */
  workspace?: Record<string, string | Uint8Array> | string | null;
  workspaceAccess?: 'read' | 'write';
  /** Granted programs and what they do. */
  exec?: Record<string, ExecResult>;
  /** Granted secrets; null: granted without a value. */
  secrets?: Record<string, string | null | undefined>;
  cancelled?: boolean | (() => boolean);
  inputs?: Array<{ stage: string; name: string; content: string | Uint8Array; mediaType?: string; role?: object; annotations?: Record<string, string> }>;
  upstream?: Array<{ stage: string; name: string; value: string }>;
  stage?: string;
  environment?: string;
  attempt?: number;
}

export interface LogRecord {
  level: string;
  message: string;
  fields: Record<string, string>;
}

/** An in-memory runner. */
export declare class FakeHost {
  constructor(opts?: FakeOptions);
  readonly logs: LogRecord[];
  readonly progress: Array<{ done: number; total: number | undefined; message: string }>;
  readonly commands: Array<{ program: string; args: string[]; cwd?: string; env: Record<string, string>; stdin: boolean }>;
  readonly stdin: string | undefined;
  artifact(rel: string): string | undefined;
  artifacts(): Record<string, string>;
  workspaceFile(rel: string): string | undefined;
}

export interface StageResult {
  ok: boolean;
  report: WitReport | undefined;
  error: { kind: 'invalid-config' | 'denied' | 'failed'; message: string; capability?: Capability } | undefined;
  info: Omit<WitPluginInfo, 'configSchema'> & { configSchema: any };
  host: FakeHost;
  logs: LogRecord[];
  metric(name: string): number | undefined;
  gate(name: string): { name: string; verdict: string; observed?: number; threshold?: number; message: string } | undefined;
  output(name: string): string | undefined;
  artifact(rel: string): string | undefined;
}

/** Imports a stage module after the stand-ins for its component imports are registered. */
export declare function loadStage(url: string | { href: string }): Promise<any>;
/** Runs the stage once against a fake host built from `opts`. */
export declare function runStage(plugin: Plugin, opts?: FakeOptions): StageResult;
