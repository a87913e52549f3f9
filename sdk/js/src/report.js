// SPDX-License-Identifier: Apache-2.0
/**
 * What a stage returns: a {@link Report} with metrics, gates, outputs,
 * artifact descriptions (with roles and annotations) and typed findings.
 * The SDK checks them with the runner's rules before the report leaves the
 * stage, so a mistake fails with a message naming it.
 * @module
 */
import { StageError } from './errors.js';

/** @typedef {'pass' | 'warn' | 'fail' | 'inconclusive'} Verdict */
/** @typedef {'note' | 'warning' | 'error'} FindingLevel */

const VERDICTS = new Set(['pass', 'warn', 'fail', 'inconclusive']);
const ROLE_TAGS = ['report', 'test-results', 'coverage', 'package', 'sbom', 'provenance', 'log'];
const OTHER_ROLE = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * What an artifact is for, as the WIT `artifact-role`.
 * @typedef {{ tag: 'report' | 'test-results' | 'coverage' | 'package' | 'sbom' | 'provenance' | 'log' } | { tag: 'other', val: string }} ArtifactRole
 */

/** The artifact roles: `role.report`, `role.testResults`, ..., `role.other('container-image')`. */
export const role = Object.freeze({
  /** A report for people or tools (SARIF, HTML, Markdown). */
  report: Object.freeze({ tag: 'report' }),
  /** Test results (JUnit XML). */
  testResults: Object.freeze({ tag: 'test-results' }),
  /** Coverage data. */
  coverage: Object.freeze({ tag: 'coverage' }),
  /** Something to ship. */
  package: Object.freeze({ tag: 'package' }),
  /** A software bill of materials. */
  sbom: Object.freeze({ tag: 'sbom' }),
  /** A provenance statement or attestation. */
  provenance: Object.freeze({ tag: 'provenance' }),
  /** A log kept as an artifact. */
  log: Object.freeze({ tag: 'log' }),
  /** A role of your own: lowercase, dash-separated, at most 64 characters. @param {string} name @returns {ArtifactRole} */
  other: (name) => ({ tag: 'other', val: name }),
});

/**
 * A role given as an {@link ArtifactRole} or a string (`'report'`,
 * `'test-results'`, or any other lowercase dash-separated name).
 * @param {ArtifactRole | string} r
 * @returns {ArtifactRole}
 */
export function toRole(r) {
  const tag = typeof r === 'string' ? r : r?.tag;
  if (ROLE_TAGS.includes(tag)) return { tag };
  const name = typeof r === 'string' ? r : r?.tag === 'other' ? r.val : undefined;
  if (typeof name !== 'string' || name.length > 64 || !OTHER_ROLE.test(name)) {
    throw StageError.failed(`artifact role ${JSON.stringify(name ?? r)}: use ${ROLE_TAGS.join(', ')} or a lowercase, dash-separated name of at most 64 characters`);
  }
  return { tag: 'other', val: name };
}

/** A decision the stage made itself. Build with `Gate.pass(name, message)` etc. */
export class Gate {
  /** @param {string} name @param {Verdict} verdict @param {string} message */
  constructor(name, verdict, message) {
    if (!VERDICTS.has(verdict)) throw new TypeError(`gate ${name}: verdict must be pass, warn, fail or inconclusive (got ${JSON.stringify(verdict)})`);
    /** Short name, unique within one report. */
    this.name = name;
    /** @type {Verdict} */
    this.verdict = verdict;
    /** One line a person can act on. */
    this.message = message;
    /** @type {number | undefined} */
    this.observedValue = undefined;
    /** @type {number | undefined} */
    this.thresholdValue = undefined;
  }

  /** The check held. @param {string} name @param {string} message */
  static pass(name, message) {
    return new Gate(name, 'pass', message);
  }

  /** The check did not hold, but must not stop the pipeline. @param {string} name @param {string} message */
  static warn(name, message) {
    return new Gate(name, 'warn', message);
  }

  /** The check did not hold; the pipeline stops. @param {string} name @param {string} message */
  static fail(name, message) {
    return new Gate(name, 'fail', message);
  }

  /** The check could not be decided. @param {string} name @param {string} message */
  static inconclusive(name, message) {
    return new Gate(name, 'inconclusive', message);
  }

  /** The value observed, for a numeric gate. @param {number} value @returns {Gate} */
  observed(value) {
    this.observedValue = value;
    return this;
  }

  /** The threshold it was compared with. @param {number} value @returns {Gate} */
  threshold(value) {
    this.thresholdValue = value;
    return this;
  }
}

/** One result of a check. Build with `finding.error(rule, message).at(path, line)` etc. */
export class Finding {
  /** @param {string} ruleId @param {FindingLevel} level @param {string} message */
  constructor(ruleId, level, message) {
    /** The rule that produced it (`E501`, `GHSA-xxxx`). */
    this.ruleId = ruleId;
    /** @type {FindingLevel} */
    this.level = level;
    /** One line a person can act on. */
    this.message = message;
    /** @type {{ path: string, startLine: number, startColumn?: number, endLine?: number, endColumn?: number } | undefined} */
    this.location = undefined;
    /** @type {string | undefined} */
    this.fingerprintValue = undefined;
    /** @type {string | undefined} */
    this.helpUriValue = undefined;
  }

  /** Where it is: a workspace-relative path and a 1-based line (0: the whole file). @param {string} path @param {number} [line] @returns {Finding} */
  at(path, line = 0) {
    this.location = { path, startLine: line };
    return this;
  }

  /** The columns of the region (1-based; `end` is the column after it). @param {number} start @param {number} [end] @returns {Finding} */
  columns(start, end) {
    if (!this.location) throw new TypeError(`finding ${this.ruleId}: call at(path, line) before columns()`);
    this.location.startColumn = start;
    if (end !== undefined) this.location.endColumn = end;
    return this;
  }

  /** The last line, when the region spans several. @param {number} line @returns {Finding} */
  endLine(line) {
    if (!this.location) throw new TypeError(`finding ${this.ruleId}: call at(path, line) before endLine()`);
    this.location.endLine = line;
    return this;
  }

  /** A stable identity across runs (tells new findings from old ones). @param {string} fp @returns {Finding} */
  fingerprint(fp) {
    this.fingerprintValue = fp;
    return this;
  }

  /** Where the rule is documented (`https:` or `http:`). @param {string} uri @returns {Finding} */
  helpUri(uri) {
    this.helpUriValue = uri;
    return this;
  }
}

/** Finding builders by level: `finding.warning('E501', 'line too long').at('a.py', 3)`. */
export const finding = Object.freeze({
  /** Must be fixed. @param {string} ruleId @param {string} message */
  error: (ruleId, message) => new Finding(ruleId, 'error', message),
  /** Should be fixed. @param {string} ruleId @param {string} message */
  warning: (ruleId, message) => new Finding(ruleId, 'warning', message),
  /** Worth knowing. @param {string} ruleId @param {string} message */
  note: (ruleId, message) => new Finding(ruleId, 'note', message),
});

/** The most findings one report may carry. */
export const MAX_FINDINGS = 100000;

function checkFinding(f, i) {
  const at = `finding ${i + 1} (${JSON.stringify(f.ruleId)})`;
  if (!(f instanceof Finding)) throw StageError.failed(`finding ${i + 1}: build it with finding.error/warning/note(...)`);
  if (!f.ruleId) throw StageError.failed(`${at}: empty rule id`);
  if (!f.message) throw StageError.failed(`${at}: empty message`);
  if (!['note', 'warning', 'error'].includes(f.level)) throw StageError.failed(`${at}: level must be note, warning or error`);
  const p = f.location?.path;
  if (p !== undefined && (p === '' || p.startsWith('/') || p.includes('\\') || p.split('/').includes('..'))) {
    throw StageError.failed(`${at}: path ${JSON.stringify(p)} must be relative to the workspace, \`/\`-separated, without \`..\``);
  }
  for (const k of ['startLine', 'startColumn', 'endLine', 'endColumn']) {
    const v = f.location?.[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) throw StageError.failed(`${at}: ${k} must be a whole number >= 0`);
  }
  if (f.helpUriValue !== undefined && !/^https?:\/\/\S+$/.test(f.helpUriValue)) {
    throw StageError.failed(`${at}: help URI ${JSON.stringify(f.helpUriValue)} must be an absolute http(s) URI`);
  }
}

/**
 * A description of a file the stage wrote under `/artifacts/out`.
 * @typedef {{ mediaType?: string, role?: ArtifactRole | string, annotations?: Record<string, string> }} ArtifactOptions
 */

/** What a stage returns when it ran to completion. Every method returns the report, for chaining. */
export class Report {
  /** @param {string} summary short markdown shown in the console and reports */
  constructor(summary) {
    /** @type {string} */
    this.summary = summary;
    /** @type {Array<{ name: string, value: number, unit?: string }>} */
    this.metrics = [];
    /** @type {Gate[]} */
    this.gates = [];
    /** @type {Array<[string, string]>} */
    this.outputs = [];
    /** @type {Array<{ path: string, mediaType?: string, role?: ArtifactRole, annotations: Array<[string, string]> }>} */
    this.artifacts = [];
    /** `undefined`: the stage does not report findings; `[]`: it looked and found nothing. @type {Finding[] | undefined} */
    this.findingList = undefined;
  }

  /** A measured value; pipelines gate on it by name (dotted lowercase, unique). @param {string} name @param {number} value @param {string} [unit] @returns {Report} */
  metric(name, value, unit) {
    this.metrics.push({ name, value, unit });
    return this;
  }

  /** One of the stage's own decisions. @param {Gate} gate @returns {Report} */
  gate(gate) {
    this.gates.push(gate);
    return this;
  }

  /** A small named value for later stages (`${{ stages.NAME.outputs.KEY }}`). @param {string} name @param {string | number | boolean} value @returns {Report} */
  output(name, value) {
    this.outputs = this.outputs.filter(([k]) => k !== name);
    this.outputs.push([name, String(value)]);
    return this;
  }

  /**
   * Describes a file under `/artifacts/out` (`path` relative to it); a
   * second description of the same path replaces the first.
   * @param {string} path
   * @param {ArtifactOptions} [opts]
   * @returns {Report}
   */
  artifact(path, opts = {}) {
    const info = {
      path,
      mediaType: opts.mediaType,
      role: opts.role === undefined ? undefined : toRole(opts.role),
      annotations: Object.entries(opts.annotations ?? {}).map(([k, v]) => [k, String(v)]),
    };
    this.artifacts = this.artifacts.filter((a) => a.path !== path);
    this.artifacts.push(info);
    return this;
  }

  /** Sets the findings (an empty list: looked and found nothing). @param {Finding[]} list @returns {Report} */
  findings(list) {
    this.findingList = [...list];
    return this;
  }

  /** Adds one finding. @param {Finding} f @returns {Report} */
  finding(f) {
    (this.findingList ??= []).push(f);
    return this;
  }

  /**
   * The WIT `report` record, after checking it with the runner's rules.
   * @returns {object}
   * @throws {StageError} (`failed`) naming the metric, gate, output, artifact or finding that breaks a rule
   */
  toWit() {
    const seen = new Set();
    for (const m of this.metrics) {
      if (typeof m.name !== 'string' || m.name === '') throw StageError.failed('metric with an empty name');
      if (seen.has(m.name)) throw StageError.failed(`metric \`${m.name}\` reported twice`);
      seen.add(m.name);
      if (typeof m.value !== 'number' || !Number.isFinite(m.value)) throw StageError.failed(`metric \`${m.name}\`: value ${m.value} is not a finite number`);
    }
    const gates = new Set();
    for (const g of this.gates) {
      if (!(g instanceof Gate)) throw StageError.failed('gates must be built with Gate.pass/warn/fail/inconclusive(...)');
      if (gates.has(g.name)) throw StageError.failed(`gate \`${g.name}\` reported twice`);
      gates.add(g.name);
    }
    for (const a of this.artifacts) {
      const p = a.path;
      if (!p || p.startsWith('/') || p.split('/').includes('..')) throw StageError.failed(`artifact path ${JSON.stringify(p)} must be relative to the output directory, without \`..\``);
      const keys = a.annotations.map(([k]) => k);
      if (new Set(keys).size !== keys.length) throw StageError.failed(`artifact \`${p}\`: an annotation key is repeated`);
    }
    if (this.findingList && this.findingList.length > MAX_FINDINGS) throw StageError.failed(`${this.findingList.length} findings: at most ${MAX_FINDINGS}`);
    this.findingList?.forEach(checkFinding);
    return {
      summary: String(this.summary),
      metrics: this.metrics.map((m) => ({ name: m.name, value: m.value, unit: m.unit })),
      gates: this.gates.map((g) => ({ name: g.name, verdict: g.verdict, observed: g.observedValue, threshold: g.thresholdValue, message: g.message })),
      outputs: this.outputs.map(([k, v]) => [k, v]),
      artifacts: this.artifacts.map((a) => ({ path: a.path, mediaType: a.mediaType, role: a.role, annotations: a.annotations })),
      findings: this.findingList?.map((f) => ({
        ruleId: f.ruleId,
        level: f.level,
        message: f.message,
        location: f.location && { ...f.location },
        fingerprint: f.fingerprintValue,
        helpUri: f.helpUriValue,
      })),
    };
  }
}

/** A new {@link Report} with `summary`. @param {string} summary @returns {Report} */
export function report(summary) {
  return new Report(summary);
}
