//! Command-line definitions (clap derive only; no logic).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sluice: a CI/CD pipeline runner whose stages are sandboxed WebAssembly
/// components.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// Directory for run records and artifacts (default: one directory per
    /// working directory under `$XDG_STATE_HOME/sluice`, else
    /// `~/.local/state/sluice`). Never inside a workspace that stages may
    /// read or write: runs refuse to start there.
    #[arg(long, global = true, env = "SLUICE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Compiled-component cache (default: `$XDG_CACHE_HOME/sluice`, else
    /// `~/.cache/sluice`). Safe to share between runs and working
    /// directories of one user; never inside a workspace (it is not used
    /// there, since stages may write the workspace).
    #[arg(long, global = true, env = "SLUICE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Log verbosity for the runner itself (e.g. `debug`, `sluice=trace`);
    /// also read from `SLUICE_LOG`.
    #[arg(long, global = true, env = "SLUICE_LOG", default_value = "warn")]
    pub log: String,

    /// The operator's trust policy: the floor every pipeline runs on. A
    /// pipeline's `policy:` (or `--policy`) can only add requirements to
    /// it, and `--allow-unsigned` has no effect. Else `SLUICE_POLICY`, else
    /// `/etc/sluice/policy.yaml` if it exists (its directory can be moved
    /// with `SLUICE_OPERATOR_POLICY_DIR`).
    #[arg(long, global = true, value_name = "FILE")]
    pub operator_policy: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline (or resume a paused or interrupted run).
    Run(RunArgs),
    /// Check a pipeline file without running it.
    Validate {
        /// The pipeline file.
        #[arg(default_value = "sluice.yaml")]
        pipeline: PathBuf,
        /// Resolve and pull `oci://` plugins (as `run` does) to check `with:`
        /// against their schemas; without it only pinned plugins already in
        /// the pull cache are described and the registry is not contacted.
        #[arg(long)]
        pull: bool,
        /// Every `oci://` plugin must be pinned in the lock file.
        #[arg(long)]
        locked: bool,
        /// Registry options (with --pull).
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Pin the pipeline's `oci://` plugins: resolve every tag, pull each
    /// plugin into the pull cache and write the lock file beside the
    /// pipeline (`sluice.lock` for `sluice.yaml`), which `run` reads and
    /// `run --locked` enforces.
    Lock {
        /// The pipeline file.
        #[arg(default_value = "sluice.yaml")]
        pipeline: PathBuf,
        /// Registry options.
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Work with plugin components.
    Plugin {
        /// Plugin subcommand.
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// List and show recorded runs.
    Runs {
        /// Runs subcommand.
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// List, copy out or export a run's artifacts (digests verified).
    Artifacts {
        /// Artifacts subcommand.
        #[command(subcommand)]
        command: ArtifactsCommand,
    },
    /// Manage signing keys.
    Key {
        /// Key subcommand.
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Work with trust policies.
    Policy {
        /// Policy subcommand.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Check an artifact against a signed provenance bundle.
    VerifyArtifact {
        /// The artifact file.
        file: PathBuf,
        /// The provenance bundle (DSSE envelope in a Sigstore bundle).
        #[arg(long)]
        provenance: PathBuf,
        /// Public key of the runner that signed it.
        #[arg(long)]
        key: PathBuf,
    },
    /// Remove what no run needs: temporary files and work directories left
    /// by killed runners, and artifact blobs no run record references.
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write one self-contained HTML page about a run: timeline, gates,
    /// artifacts, test results, findings, logs, plugins, provenance.
    Report {
        /// The run id.
        run_id: String,
        /// The page to write (default `sluice-report-<RUN_ID>.html`);
        /// artifacts are copied to `<FILE without .html>.files/` beside it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Do not copy artifacts beside the page (it then names them only).
        #[arg(long)]
        no_files: bool,
        /// Open the page in the desktop's browser afterwards.
        #[arg(long)]
        open: bool,
    },
    /// Create a stage project (`new stage`) or a starter pipeline
    /// (`new pipeline`).
    New {
        /// New subcommand.
        #[command(subcommand)]
        command: NewCommand,
    },
    /// Work with one stage on its own (`stage test`).
    Stage {
        /// Stage subcommand.
        #[command(subcommand)]
        command: StageCommand,
    },
    /// Approve a stage that waits for approval, so `run --resume` continues.
    Approve {
        /// The run id.
        run_id: String,
        /// The stage to approve.
        stage: String,
        /// Who approves (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Run an agent that takes stage jobs (from NATS, or from `run --agent`).
    ///
    /// Jobs come from the NATS server of the config's `nats:`, or, with
    /// `--listen unix:PATH`, from `sluice run --agent unix:PATH` on this
    /// machine. The agent verifies every plugin under its own operator
    /// policy, grant ceiling and secrets, and keeps its engine and compiled
    /// plugins warm between jobs. SIGTERM stops it gracefully.
    Agent {
        /// The agent's config file (policy, labels, secrets, NATS …).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Serve coordinators on this machine through a unix socket.
        #[arg(long, value_name = "unix:PATH")]
        listen: Option<String>,
    },
    /// The agents of a fleet.
    Agents {
        /// Agents subcommand.
        #[command(subcommand)]
        command: AgentsCommand,
    },
}

/// `sluice agents …`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List the live agents (from their heartbeats in NATS): name, labels,
    /// running jobs and slots, version, host.
    List {
        /// The NATS server, `nats://HOST:PORT[?namespace=NAME]` (the URL
        /// of `run --executor`).
        #[arg(
            long,
            visible_alias = "executor",
            value_name = "URL",
            env = "SLUICE_NATS",
            default_value = "nats://127.0.0.1:4222"
        )]
        nats: String,
        /// Print JSON (one array of heartbeats).
        #[arg(long)]
        json: bool,
    },
}

/// `sluice run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (default `sluice.yaml`; with --resume, the run's own).
    pub pipeline: Option<PathBuf>,
    /// Stages to run at once (default: number of CPU cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Continue this run: finished stages are kept, the rest run.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Keep running independent stages after a failure (no fail-fast).
    #[arg(long)]
    pub keep_going: bool,
    /// Emit one JSON event per line instead of human output.
    #[arg(long)]
    pub json: bool,
    /// Do not stream stage logs to the console (they are still recorded).
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print everything: debug and trace log lines, every progress report
    /// and every finding (by default: the first 10 of each stage).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Trust policy to enforce (overrides the pipeline's `policy:`).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Run plugins without verifying them when there is no trust policy.
    /// For development only; the run record and the output say so loudly.
    #[arg(long, env = "SLUICE_ALLOW_UNSIGNED", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_unsigned: bool,
    /// Private key (cosign-style encrypted PEM) used to sign the provenance
    /// of build artifacts; its password comes from `SLUICE_KEY_PASSWORD`.
    #[arg(long, env = "SLUICE_PROVENANCE_KEY")]
    pub provenance_key: Option<PathBuf>,
    /// Refuse to run (exit 2, before any stage) unless the workspace is a
    /// git checkout whose tracked files match its index.
    #[arg(long, env = "SLUICE_REQUIRE_CLEAN", value_parser = clap::builder::FalseyValueParser::new())]
    pub require_clean: bool,
    /// `builder.id` written into provenance: an absolute URI naming this
    /// runner (default `https://sluice.dev/runner/<hostname>@<version>`).
    #[arg(long, env = "SLUICE_BUILDER_ID")]
    pub builder_id: Option<String>,
    /// Native CI output (docs/ci.md): `github` (log groups, annotations,
    /// job summary, outputs), `gitlab` (sections, Code Quality and JUnit
    /// reports), `none`, or `auto` (the default: detected from
    /// `GITHUB_ACTIONS` / `GITLAB_CI`).
    #[arg(long, env = "SLUICE_CI", value_enum, value_name = "SYSTEM")]
    pub ci: Option<CiFlag>,
    /// GitLab: directory for `gl-code-quality-report.json` and `junit.xml`
    /// (relative to the working directory).
    #[arg(long, value_name = "DIR", default_value = "sluice-reports")]
    pub ci_reports: PathBuf,
    /// OCI plugins must be pinned in the pipeline's lock file (`sluice.lock`,
    /// written by `sluice lock`): a reference it lacks, or a tag that now
    /// points to another manifest, is refused.
    #[arg(long)]
    pub locked: bool,
    /// Run the stages on the warm local agent listening at `unix:PATH`
    /// (`sluice agent --listen unix:PATH`) instead of in this process.
    #[arg(long, value_name = "unix:PATH", value_parser = crate::run::parse_agent, conflicts_with = "executor")]
    pub agent: Option<crate::run::ExecutorTarget>,
    /// Dispatch the stages as jobs to the agents of a NATS JetStream fleet:
    /// `nats://HOST:PORT[?namespace=NAME]` (docs/fleet.md).
    #[arg(long, env = "SLUICE_EXECUTOR", value_name = "URL", value_parser = crate::run::parse_executor)]
    pub executor: Option<crate::run::ExecutorTarget>,
    /// Registry options for `oci://` plugins.
    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,
}

/// `sluice run --ci`: `auto` (detect from the environment), `github`,
/// `gitlab`, or `none` (plain output). The variants carry no doc comments
/// on purpose: clap would turn them into per-value help and switch the
/// whole `run --help` to its long layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(missing_docs)]
pub enum CiFlag {
    Auto,
    Github,
    Gitlab,
    None,
}

/// `sluice new ...`.
#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// Write a new stage project: source on the language's SDK, build.sh,
    /// a native test, a test input for `sluice stage test`, the WIT, a
    /// README.
    Stage {
        /// The stage's name: lowercase letters, digits, `-` and `_`
        /// (e.g. `todo-check`).
        name: String,
        /// The language: rust, python, js or c.
        #[arg(long, value_enum)]
        lang: StageLang,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Rust: the `plugin-sdk` directory the crate depends on (default:
        /// the one of the repository this binary was built from, if it is
        /// still there).
        #[arg(long, value_name = "DIR")]
        sdk_path: Option<PathBuf>,
    },
    /// Write a starter sluice.yaml for the project in a directory (Python
    /// with pytest, Rust with cargo, Node with npm), using the reference
    /// stages.
    Pipeline {
        /// The project directory (default: the current one).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The directory holding the reference plugins (lint.wasm, test.wasm,
        /// scan.wasm, build.wasm; default: `dist/plugins` of the repository
        /// this binary was built from, if it is still there).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
}

/// The languages `sluice new stage` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[allow(missing_docs)]
pub enum StageLang {
    Rust,
    Python,
    Js,
    C,
}

/// `sluice stage ...`.
#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// Run one stage without writing a pipeline, under the same sandbox,
    /// grants and checks as `sluice run`; print its report, gates, outputs
    /// and artifacts. Exit 0 when it passed, 1 when it failed or an
    /// expectation did not hold, 2 for bad input, 3 when a trust policy
    /// refuses the plugin.
    Test(StageTestArgs),
}

/// `sluice stage test`.
#[derive(Debug, Args)]
pub struct StageTestArgs {
    /// The stage's component file (`.wasm`).
    pub plugin: PathBuf,
    /// The stage's config (its `with:`): a JSON file, or inline JSON
    /// (`--with '{"include": ["src/**"]}'`). Default `{}`.
    #[arg(long = "with", value_name = "CONFIG")]
    pub with: Option<String>,
    /// The directory mounted as `/workspace` (read-only unless
    /// `--grant workspace=write`). Default: an empty temporary directory,
    /// not granted.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// A grant, in the pipeline's grammar: `workspace=read|write`,
    /// `exec=PROGRAM`, `env=NAME`, `network=HOST:PORT`, `secret=NAME`,
    /// `tls-ca=FILE`, `memory=SIZE`, `output=SIZE`, `artifacts=SIZE`.
    /// Repeat for more.
    #[arg(long = "grant", value_name = "KIND=VALUE")]
    pub grants: Vec<String>,
    /// An artifact of an upstream stage: readable by the stage at
    /// `/artifacts/in/STAGE/NAME`, listed in its context's inputs.
    #[arg(long = "input", value_name = "STAGE/NAME=FILE")]
    pub inputs: Vec<String>,
    /// The stage's name in the run (default: the plugin file's name).
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// The stage's timeout (e.g. `30s`, `5m`; default as in a pipeline).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print one JSON document instead of text (the stage's log is then
    /// not streamed; it is in the file named by `log`).
    #[arg(long)]
    pub json: bool,
    /// A JSON file the result must contain (a subset of the `--json`
    /// document: state, metrics, gates, outputs, findings counts, …);
    /// exit 1 with the differences when it does not.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Write the --expect file from this result instead of checking it
    /// (keeping the keys it already has).
    #[arg(long, requires = "expect")]
    pub update: bool,
    /// A trust policy the plugin must pass (besides the operator policy,
    /// if any). Without any policy an unsigned plugin runs, with a note.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// `sluice key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an ECDSA P-256 key pair: NAME.key (encrypted) and NAME.pub.
    Generate {
        /// Path prefix of the files to write.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// `sluice policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file and explain the policy in effect (the
    /// operator policy, if any, plus this one) in plain words.
    Check {
        /// The policy file.
        policy: PathBuf,
    },
}

/// `sluice plugin ...`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Sign a plugin: writes FILE.sigstore.json (Sigstore bundle v0.3); for
    /// an `oci://` reference, signs the component in the registry and
    /// attaches the bundle as a referrer.
    Sign {
        /// The component file, or `oci://REGISTRY/REPO:TAG[@sha256:…]`.
        file: PathBuf,
        /// The private key (NAME.key); password from SLUICE_KEY_PASSWORD or a prompt.
        #[arg(long)]
        key: PathBuf,
        /// Registry access (for an `oci://` reference).
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Push a component to an OCI registry (the Wasm artifact format `wkg`
    /// reads), with FILE.sigstore.json and FILE.intoto.sigstore.json as
    /// referrers; prints the pinned reference last.
    Push {
        /// The component file.
        file: PathBuf,
        /// Where to: `oci://REGISTRY/REPO:TAG`.
        reference: String,
        /// Also sign the component with this private key and attach the
        /// signature (password from SLUICE_KEY_PASSWORD or a prompt).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Registry access.
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Pull a component from an OCI registry, with its signatures
    /// (FILE.sigstore.json) and attestations (FILE.intoto.sigstore.json);
    /// every digest is checked.
    Pull {
        /// `oci://REGISTRY/REPO:TAG`, `…@sha256:…` or both.
        reference: String,
        /// The file to write (default: NAME.wasm, NAME the repository's
        /// last path component).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Registry access.
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Attest to a plugin: signs an in-toto statement (subject: the plugin's
    /// digest) as a DSSE bundle and adds it to FILE.intoto.sigstore.json.
    Attest {
        /// The component file.
        file: PathBuf,
        /// The private key (NAME.key); password from SLUICE_KEY_PASSWORD or a prompt.
        #[arg(long)]
        key: PathBuf,
        /// The statement's predicate type, e.g. `https://slsa.dev/provenance/v1`.
        #[arg(long)]
        predicate_type: String,
        /// A JSON file holding the predicate.
        #[arg(long)]
        predicate: PathBuf,
    },
    /// Verify a plugin's signature against a policy or a public key.
    Verify {
        /// The component file, or `oci://REGISTRY/REPO:TAG[@sha256:…]`
        /// (pulled, its signatures read from the registry).
        file: PathBuf,
        /// Evaluate it under this trust policy (with the operator policy,
        /// if any, as in `run`).
        #[arg(long, conflicts_with = "key")]
        policy: Option<PathBuf>,
        /// Accept a signature by this public key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Evaluate it as `run` would for this pipeline: the reference is
        /// relative to the pipeline's directory, the policy defaults to its
        /// `policy:`, and the stage's grants are checked against max-grants.
        /// Without it, the reference is relative to the policy file's
        /// directory and no grants are checked.
        #[arg(long, conflicts_with = "key", value_name = "PIPELINE")]
        pipeline: Option<PathBuf>,
        /// The stage whose grants to check (default: every stage of
        /// --pipeline that uses FILE).
        #[arg(long, requires = "pipeline")]
        stage: Option<String>,
        /// Registry access (for an `oci://` reference).
        #[command(flatten)]
        registry: crate::registry::RegistryArgs,
    },
    /// Show what a plugin says about itself and what it imports and exports.
    Inspect {
        /// The component file.
        file: PathBuf,
        /// Verify it under this trust policy first (as `plugin verify`);
        /// nothing of it is parsed unless it is admitted.
        #[arg(long, conflicts_with = "key")]
        policy: Option<PathBuf>,
        /// Verify its signature by this public key first.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sluice artifacts …`.
#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// List a run's artifacts: stage, name, size, digest, media type.
    List {
        /// The run id.
        run_id: String,
        /// `STAGE` or `STAGE/NAME` (default: every stage).
        select: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy one artifact out of the store, verifying its digest.
    Get {
        /// The run id.
        run_id: String,
        /// `STAGE/NAME`, e.g. `build/dist/app.tar.gz`.
        select: String,
        /// Write it to this file instead of standard output (`-`).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Copy artifacts to `DIR/<stage>/<name>`, verifying every digest.
    Export {
        /// The run id.
        run_id: String,
        /// `STAGE` or `STAGE/NAME` (default: every stage).
        select: Option<String>,
        /// The directory to write to (created if needed).
        #[arg(long)]
        to: PathBuf,
    },
}

/// `sluice runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one run.
    Show {
        /// The run id.
        run_id: String,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep the intact part of a run's damaged journal: fold the entries
    /// before its first bad line into the snapshot and move the journal
    /// aside, so that `run --resume` can continue.
    Repair {
        /// The run id.
        run_id: String,
    },
}

impl Cli {
    /// The compile cache directory in effect.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            let user_cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
            match user_cache {
                Some(dir) => dir.join("sluice"),
                // No home at all (a bare container): keep it with the state.
                None => self.state_dir().join("cache"),
            }
        })
    }

    /// The state directory in effect: `--state-dir` / `SLUICE_STATE_DIR`,
    /// else [`default_state_dir`] for the current directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                default_state_dir(&cwd, |k| std::env::var_os(k))
            })
    }
}

/// Where the runs of the working directory `cwd` are kept by default: under
/// the user's state directory (`$XDG_STATE_HOME/sluice`, else
/// `~/.local/state/sluice`), in `dirs/<name>-<hash>` where `<name>` is the
/// last component of `cwd` and `<hash>` the first 12 hex digits of the
/// sha256 of its absolute path. It is never inside the project, so a stage
/// that may read or write the workspace cannot reach other stages' records,
/// logs or artifacts. Without a home directory at all: `.sluice` in `cwd`
/// (runs that grant workspace access then refuse to start and say why).
pub fn default_state_dir(
    cwd: &std::path::Path,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> PathBuf {
    use sha2::{Digest, Sha256};
    let base = var("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            var("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        });
    let Some(base) = base else {
        return cwd.join(".sluice");
    };
    let absolute = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    let name: String = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    base.join("sluice")
        .join("dirs")
        .join(format!("{name}-{}", &hex::encode(digest)[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_state_dir_is_per_directory_under_the_user_state_dir() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let a = default_state_dir(
            std::path::Path::new("/nonexistent/proj"),
            env(&[("HOME", "/home/u")]),
        );
        assert!(
            a.starts_with("/home/u/.local/state/sluice/dirs"),
            "{}",
            a.display()
        );
        assert!(a
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("proj-")));
        let b = default_state_dir(
            std::path::Path::new("/nonexistent/other/proj"),
            env(&[("HOME", "/home/u")]),
        );
        assert_ne!(a, b, "same name, other directory");
        let x = default_state_dir(
            std::path::Path::new("/nonexistent/proj"),
            env(&[("HOME", "/home/u"), ("XDG_STATE_HOME", "/state")]),
        );
        assert!(x.starts_with("/state/sluice/dirs"));
        let none = default_state_dir(std::path::Path::new("/w"), env(&[]));
        assert_eq!(none, PathBuf::from("/w/.sluice"));
    }
}
