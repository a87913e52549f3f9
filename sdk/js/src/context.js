// SPDX-License-Identifier: Apache-2.0
/**
 * {@link Context}: what a stage is told about the run, with its validated
 * config, its inputs and a way to write artifacts.
 * @module
 */
import { FsError, host } from './host.js';
import { NotFound, StageError } from './errors.js';
import { toRole } from './report.js';
import { Workspace } from './workspace.js';

/** Guest path under which input artifacts are readable. */
export const INPUTS_DIR = '/artifacts/in';
/** Guest path of the writable output directory. */
export const OUTPUTS_DIR = '/artifacts/out';

/**
 * An artifact of a stage this one `needs`, verified by the runner.
 * @typedef {object} InputArtifact
 * @property {string} stage the stage that produced it
 * @property {string} name path relative to the producer's `/artifacts/out`
 * @property {string} digest `sha256:<hex>`
 * @property {number} size bytes
 * @property {string} mediaType `application/octet-stream` when the producer declared none
 * @property {import('./report.js').ArtifactRole | undefined} role
 * @property {Record<string, string>} annotations
 * @property {string} path its guest path, `/artifacts/in/<stage>/<name>`
 */

/**
 * Everything a stage is told about the run it is part of; handed to
 * `run(ctx)`.
 * @template C
 */
export class Context {
  /**
   * @param {any} wit the WIT `context` record
   * @param {C} config the validated `with:` block
   * @param {import('./report.js').Report} declared where `writeArtifact` declares files
   */
  constructor(wit, config, declared) {
    /** Identifier of this run; stable across `--resume`. @type {string} */
    this.runId = wit.runId;
    /** The pipeline's `name`. @type {string} */
    this.pipeline = wit.pipeline;
    /** This stage's key in the pipeline. @type {string} */
    this.stage = wit.stage;
    /** The stage's `environment:`, if any. @type {string | undefined} */
    this.environment = wit.environment;
    /** 1 on the first attempt, 2 on the first retry, ... @type {number} */
    this.attempt = wit.attempt;
    /** The `with:` block as the runner sent it (JSON). @type {string} */
    this.configJson = wit.config;
    /** The `with:` block, validated against the stage's schema, keys in camelCase. @type {C} */
    this.config = config;
    /** Guest path of the output directory. @type {string} */
    this.outputsDir = wit.outputsDir || OUTPUTS_DIR;
    /** The workspace helper (`find`, `readText`, `snapshot`, ...). */
    this.workspace = new Workspace();
    /** When the attempt's `timeout:` runs out. @type {Date} */
    this.deadline = new Date(Number(wit.deadline?.seconds ?? 0n) * 1000 + Math.floor((wit.deadline?.nanoseconds ?? 0) / 1e6));
    /** How long a cancelled stage may keep running to put things back, in ms. @type {number} */
    this.gracePeriodMs = Number(BigInt(wit.gracePeriod ?? 0n) / 1000000n);
    /** @type {InputArtifact[]} */
    this.inputs = (wit.inputs ?? []).map((a) => ({
      stage: a.stage,
      name: a.name,
      digest: a.digest,
      size: Number(a.size),
      mediaType: a.mediaType,
      role: a.role,
      annotations: Object.fromEntries(a.annotations ?? []),
      path: `${INPUTS_DIR}/${a.stage}/${a.name}`,
    }));
    /** Outputs reported by the stages this one `needs`. @type {Array<{ stage: string, name: string, value: string }>} */
    this.upstreamOutputs = (wit.upstream ?? []).map((o) => ({ stage: o.stage, name: o.name, value: o.value }));
    this.declared = declared;
  }

  /** Milliseconds left until the deadline (0 when past it). */
  timeLeftMs() {
    return Math.max(0, this.deadline.getTime() - Date.now());
  }

  /** The value of output `name` of upstream stage `stage`, if it reported one. @param {string} stage @param {string} name @returns {string | undefined} */
  upstream(stage, name) {
    return this.upstreamOutputs.find((o) => o.stage === stage && o.name === name)?.value;
  }

  /** The bytes of an input artifact. @param {InputArtifact} artifact @returns {Uint8Array} */
  readInput(artifact) {
    try {
      return host().fs.readFile(artifact.path);
    } catch (e) {
      if (e instanceof FsError && e.code === 'no-entry') throw new NotFound(`input ${artifact.stage}/${artifact.name} is not readable at ${artifact.path}`);
      if (e instanceof FsError) throw StageError.failed(`reading input ${artifact.stage}/${artifact.name}: ${e.code}`);
      throw e;
    }
  }

  /**
   * Writes `data` to `path` under the output directory (creating parent
   * directories) and declares it in the report with its media type, role
   * and annotations, so this call alone makes a described artifact.
   * @param {string} path relative, `/`-separated, without `..`
   * @param {string | Uint8Array} data
   * @param {import('./report.js').ArtifactOptions} [opts]
   * @returns {string} the guest path written
   */
  writeArtifact(path, data, opts = {}) {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    if (path.startsWith('/') || parts.includes('..') || parts.length === 0) {
      throw StageError.failed(`artifact path ${JSON.stringify(path)} must be relative to the output directory and must not contain \`..\``);
    }
    const rel = parts.join('/');
    if (opts.role !== undefined) toRole(opts.role);
    const full = `${this.outputsDir}/${rel}`;
    const fs = host().fs;
    try {
      if (parts.length > 1) fs.mkdirp(`${this.outputsDir}/${parts.slice(0, -1).join('/')}`);
      fs.writeFile(full, typeof data === 'string' ? new TextEncoder().encode(data) : data);
    } catch (e) {
      if (e instanceof FsError) throw StageError.failed(`writing ${full}: ${e.code}`);
      throw e;
    }
    this.declared.artifact(rel, opts);
    return full;
  }
}
