/// <reference path="./wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./wasi-clocks-wall-clock.d.ts" />
declare module 'sluice:stage/types@0.2.0' {
  export type Datetime = import('wasi:clocks/wall-clock@0.2.12').Datetime;
  export type Duration = import('wasi:clocks/monotonic-clock@0.2.12').Duration;
  /**
   * What an artifact is for. Consumers (the HTML report, CI output,
   * later stages) pick artifacts by role rather than by file name.
   */
  export type ArtifactRole = ArtifactRoleReport | ArtifactRoleTestResults | ArtifactRoleCoverage | ArtifactRolePackage | ArtifactRoleSbom | ArtifactRoleProvenance | ArtifactRoleLog | ArtifactRoleOther;
  /**
   * A report for people or tools (SARIF, HTML, Markdown …).
   */
  export interface ArtifactRoleReport {
    tag: 'report',
  }
  /**
   * Test results (JUnit XML).
   */
  export interface ArtifactRoleTestResults {
    tag: 'test-results',
  }
  /**
   * Coverage data (Cobertura, LCOV …).
   */
  export interface ArtifactRoleCoverage {
    tag: 'coverage',
  }
  /**
   * Something to ship: a wheel, a tarball, a binary.
   */
  export interface ArtifactRolePackage {
    tag: 'package',
  }
  /**
   * A software bill of materials (SPDX, CycloneDX).
   */
  export interface ArtifactRoleSbom {
    tag: 'sbom',
  }
  /**
   * A provenance statement or attestation.
   */
  export interface ArtifactRoleProvenance {
    tag: 'provenance',
  }
  /**
   * A log kept as an artifact.
   */
  export interface ArtifactRoleLog {
    tag: 'log',
  }
  /**
   * Anything else, named by the producer (lowercase, dash-separated,
   * at most 64 characters; the runner refuses other names).
   */
  export interface ArtifactRoleOther {
    tag: 'other',
    val: string,
  }
  /**
   * An immutable artifact produced by an earlier stage and handed to this
   * one. The runner has verified `digest` against the bytes before the
   * stage starts; the file is readable (never writable) at
   * `/artifacts/in/<producer-stage>/<name>`.
   */
  export interface Artifact {
    /**
     * The stage that produced it.
     */
    stage: string,
    /**
     * Path relative to the producer's `/artifacts/out`, with `/` as
     * separator (for example `reports/junit.xml`).
     */
    name: string,
    /**
     * Content digest in the form `sha256:<64 lowercase hex digits>`.
     */
    digest: string,
    /**
     * Size in bytes.
     */
    size: bigint,
    /**
     * IANA media type declared by the producer, or
     * `application/octet-stream` when it declared none.
     */
    mediaType: string,
    /**
     * The role the producer declared, if any (since 0.2).
     */
    role?: ArtifactRole,
    /**
     * The producer's annotations (for example
     * `org.opencontainers.image.version` = `1.4.0`), in the order it
     * reported them (since 0.2).
     */
    annotations: Array<[string, string]>,
  }
  /**
   * The outcome of a gate, and of a stage as a whole.
   * # Variants
   * 
   * ## `"pass"`
   * 
   * The check held.
   * ## `"warn"`
   * 
   * The check did not hold, but it must not stop the pipeline.
   * ## `"fail"`
   * 
   * The check did not hold; the pipeline stops (and `when: failure`
   * stages run).
   * ## `"inconclusive"`
   * 
   * The check could not be decided (for example, too little data).
   * The runner treats an inconclusive stage as not passed.
   */
  export type Verdict = 'pass' | 'warn' | 'fail' | 'inconclusive';
  /**
   * One measured value. Pipelines gate on metrics by `name`.
   */
  export interface Metric {
    /**
     * Dotted lowercase name, for example `tests.failed` or
     * `coverage.line`. Names must be unique within one report; the
     * runner rejects a report that repeats a name.
     */
    name: string,
    /**
     * The value. NaN and infinities are rejected by the runner.
     */
    value: number,
    /**
     * Optional unit for display (`%`, `ms`, `s`, `bytes`).
     */
    unit?: string,
  }
  /**
   * A decision the stage made itself (for example "no critical
   * vulnerabilities"). The runner combines these with the pipeline's own
   * metric gates.
   */
  export interface Gate {
    /**
     * Short name, unique within one report; a repeated name fails the
     * stage.
     */
    name: string,
    /**
     * What the stage decided.
     */
    verdict: Verdict,
    /**
     * The value that was observed, when the gate is numeric.
     */
    observed?: number,
    /**
     * The threshold it was compared with, when the gate is numeric.
     */
    threshold?: number,
    /**
     * One line a person can act on.
     */
    message: string,
  }
  /**
   * A small value passed from a stage to the stages that need it.
   */
  export interface OutputValue {
    /**
     * The stage that produced the value.
     */
    stage: string,
    /**
     * The output's name, as the producer reported it.
     */
    name: string,
    /**
     * The value.
     */
    value: string,
  }
  /**
   * Everything a stage is told about the run it is part of.
   */
  export interface Context {
    /**
     * Identifier of this run; stable across `--resume`.
     */
    runId: string,
    /**
     * The pipeline's `name`.
     */
    pipeline: string,
    /**
     * This stage's key in the pipeline's `stages` map.
     */
    stage: string,
    /**
     * The stage's `environment:`, if any (for example `production`).
     */
    environment?: string,
    /**
     * The stage's `with:` block as a JSON object, after `${{ }}`
     * templates were expanded. `{}` when the stage has no `with:`.
     */
    config: string,
    /**
     * Artifacts of the stages this one `needs`, in pipeline order.
     */
    inputs: Array<Artifact>,
    /**
     * Guest path of the writable output directory, `/artifacts/out`.
     * It is empty when the stage starts. Every regular file left in it
     * when `run` returns `ok` becomes an artifact of this stage.
     */
    outputsDir: string,
    /**
     * Outputs reported by the stages this one `needs`.
     */
    upstream: Array<OutputValue>,
    /**
     * 1 on the first attempt, 2 on the first retry, and so on.
     */
    attempt: number,
    /**
     * When the attempt's `timeout:` runs out (wall clock, UTC). At the
     * deadline the runner cancels the stage (see the `cancel`
     * interface) and drops it `grace-period` later (since 0.2).
     */
    deadline: Datetime,
    /**
     * How long a cancelled stage may keep running to put things back
     * (a canary restoring its traffic weights) before the runner drops
     * its instance. Set by the stage's `grace-period:` (since 0.2).
     */
    gracePeriod: Duration,
  }
  /**
   * How serious a finding is (SARIF's `level`).
   * # Variants
   * 
   * ## `"note"`
   * 
   * Worth knowing; never fails anything by itself.
   * ## `"warning"`
   * 
   * Should be fixed.
   * ## `"error"`
   * 
   * Must be fixed.
   */
  export type FindingLevel = 'note' | 'warning' | 'error';
  /**
   * Where a finding is. Lines and columns are 1-based.
   */
  export interface Location {
    /**
     * Path relative to the workspace root, `/`-separated (for example
     * `src/app.py`). The runner refuses absolute paths and `..`.
     */
    path: string,
    /**
     * First line of the region; 0 when the finding is about the whole
     * file.
     */
    startLine: number,
    /**
     * First column, if known.
     */
    startColumn?: number,
    /**
     * Last line, if it is not `start-line`.
     */
    endLine?: number,
    /**
     * Column after the region's last character, if known.
     */
    endColumn?: number,
  }
  /**
   * One result of a check (a lint message, a vulnerable dependency, a
   * leaked secret). The runner writes every stage's findings as SARIF
   * 2.1.0 (`findings.sarif`, role `report`), and the console, the HTML
   * report and CI annotations show them.
   */
  export interface Finding {
    /**
     * The rule that produced it, for example `E501` or `GHSA-xxxx`.
     * Must not be empty.
     */
    ruleId: string,
    /**
     * How serious it is.
     */
    level: FindingLevel,
    /**
     * One line a person can act on. Must not be empty.
     */
    message: string,
    /**
     * Where it is; `none` for findings about the project as a whole.
     */
    location?: Location,
    /**
     * A stable identity across runs (SARIF `partialFingerprints`), so
     * that tools can tell new findings from old ones.
     */
    fingerprint?: string,
    /**
     * Where the rule is documented (an absolute `https:` or `http:`
     * URI; the runner refuses others).
     */
    helpUri?: string,
  }
  /**
   * A file the stage left under `/artifacts/out`, described.
   */
  export interface ArtifactInfo {
    /**
     * Path relative to `/artifacts/out`, `/`-separated. Naming a file
     * that does not exist fails the stage.
     */
    path: string,
    /**
     * IANA media type; `application/octet-stream` when `none`.
     */
    mediaType?: string,
    /**
     * What the artifact is for.
     */
    role?: ArtifactRole,
    /**
     * Key/value annotations shown to consumers (keys unique, at most
     * 64 pairs and 16 KiB in total per artifact).
     */
    annotations: Array<[string, string]>,
  }
  /**
   * What a stage returns when it ran to completion.
   */
  export interface Report {
    /**
     * Short markdown shown in the console and in reports.
     */
    summary: string,
    /**
     * Measured values; pipelines gate on these.
     */
    metrics: Array<Metric>,
    /**
     * The stage's own decisions.
     */
    gates: Array<Gate>,
    /**
     * Small named values for later stages (`${{ stages.<s>.outputs.<name> }}`).
     * The runner rejects a report whose outputs exceed 64 KiB in total.
     */
    outputs: Array<[string, string]>,
    /**
     * Descriptions of files the stage wrote under `/artifacts/out`.
     * Listing a file here is optional; every regular file left there
     * becomes an artifact either way.
     */
    artifacts: Array<ArtifactInfo>,
    /**
     * What the stage found. `none`: the stage does not report findings
     * (no SARIF is written); `some([])`: it looked and found nothing
     * (an empty SARIF run is written). At most 100,000 findings (since
     * 0.2).
     */
    findings?: Array<Finding>,
  }
  /**
   * The kind of access a stage asks for, declared in `plugin-info`.
   */
  export type Capability = CapabilityWorkspaceRead | CapabilityWorkspaceWrite | CapabilityEnv | CapabilityNetwork | CapabilityExec | CapabilitySecret;
  /**
   * Read the workspace at `/workspace`.
   */
  export interface CapabilityWorkspaceRead {
    tag: 'workspace-read',
  }
  /**
   * Write the workspace at `/workspace`.
   */
  export interface CapabilityWorkspaceWrite {
    tag: 'workspace-write',
  }
  /**
   * Read the named environment variable.
   */
  export interface CapabilityEnv {
    tag: 'env',
    val: string,
  }
  /**
   * Connect over HTTP to `host:port` (patterns allowed, e.g. `*:443`).
   */
  export interface CapabilityNetwork {
    tag: 'network',
    val: string,
  }
  /**
   * Run the named host program through `exec`.
   */
  export interface CapabilityExec {
    tag: 'exec',
    val: string,
  }
  /**
   * Read the named secret through `secrets`.
   */
  export interface CapabilitySecret {
    tag: 'secret',
    val: string,
  }
  /**
   * Why a stage could not produce a report.
   */
  export type StageError = StageErrorInvalidConfig | StageErrorDenied | StageErrorFailed;
  /**
   * The stage's `with:` block is wrong; the message says which key
   * and how to fix it. Never retried.
   */
  export interface StageErrorInvalidConfig {
    tag: 'invalid-config',
    val: string,
  }
  /**
   * The stage needed a capability the pipeline did not grant; the
   * runner tells the user which grant to add. Never retried.
   */
  export interface StageErrorDenied {
    tag: 'denied',
    val: Capability,
  }
  /**
   * The stage tried and failed (a command failed, a server did not
   * answer, ...). Retried when the stage has `retries:`.
   */
  export interface StageErrorFailed {
    tag: 'failed',
    val: string,
  }
  /**
   * What kind of stage a plugin is. The runner and its reports use it
   * for display only.
   */
  export type StageKind = StageKindLint | StageKindTest | StageKindScan | StageKindBuild | StageKindDeploy | StageKindSmoke | StageKindCanary | StageKindMonitor | StageKindRemediate | StageKindCustom;
  export interface StageKindLint {
    tag: 'lint',
  }
  export interface StageKindTest {
    tag: 'test',
  }
  export interface StageKindScan {
    tag: 'scan',
  }
  export interface StageKindBuild {
    tag: 'build',
  }
  export interface StageKindDeploy {
    tag: 'deploy',
  }
  export interface StageKindSmoke {
    tag: 'smoke',
  }
  export interface StageKindCanary {
    tag: 'canary',
  }
  export interface StageKindMonitor {
    tag: 'monitor',
  }
  export interface StageKindRemediate {
    tag: 'remediate',
  }
  /**
   * A kind of the author's own (lowercase, dash-separated).
   */
  export interface StageKindCustom {
    tag: 'custom',
    val: string,
  }
  /**
   * What a plugin says about itself. Returned by `describe`; must not
   * depend on anything but the plugin itself.
   */
  export interface PluginInfo {
    /**
     * Short name, for example `lint`.
     */
    name: string,
    /**
     * The plugin's own version (semver).
     */
    version: string,
    /**
     * The stage kind.
     */
    kind: StageKind,
    /**
     * One sentence on what the stage does.
     */
    description: string,
    /**
     * JSON Schema (draft 2020-12) of the `with:` block, if the plugin
     * publishes one. The runner validates `with:` against it before the
     * stage starts.
     */
    configSchema?: string,
    /**
     * Capabilities the stage may use. The runner warns when a pipeline
     * grants less than a stage declares, and never grants more than the
     * pipeline names.
     */
    capabilities: Array<Capability>,
  }
}
