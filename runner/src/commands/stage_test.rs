//! `sluice stage test PLUGIN`: run one stage on its own, the author's inner
//! loop, through the very code path of `sluice run`.
//!
//! The flags become a one-stage pipeline file (in a temporary directory),
//! which the pipeline loader checks like any other, so `--grant`,
//! `--timeout` and `with:` use the pipeline's grammar and a bad value is
//! reported against the flag that gave it. `--input STAGE/NAME=FILE` adds a
//! stage `STAGE` that the tested stage `needs`: it is recorded as passed
//! with those files as its artifacts (stored in the run's artifact store),
//! and the run *resumes* that record, so the tested stage reads them at
//! `/artifacts/in/STAGE/NAME` exactly as in a pipeline. Before the run, the
//! plugin is admitted under the trust policies (the operator's, and
//! `--policy`; without any, an unsigned plugin is allowed with a note) and
//! its `describe` is called, so a config that breaks the plugin's schema
//! is reported like `sluice validate` reports it (exit 2), pointing into
//! the config file. Then [`crate::run::run`] does the rest: sandbox,
//! grants, report checks, artifact store, SARIF.
//!
//! The state (record, log, artifacts) goes to `--state-dir` /
//! `SLUICE_STATE_DIR`, else to a new temporary directory that is kept, so
//! the log and artifacts can be looked at afterwards.

mod expect;
mod harness;
mod output;

use harness::{PipelineSpec, PipelineText};
use output::{check_expectation, render, render_expectation, result_document};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sluice_engine::admission::{self, AdmissionError, PluginFileError};
use sluice_files::diagnostic::render_located;
use sluice_files::locate::{SourceMap, YamlPath};
use sluice_host::{sandbox, Host, PoolSizing};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::{self as pipeline, PipelineError};
use sluice_record::artifacts::{Cas, IngestLimits};
use sluice_record::{RunRecord, RunStore, StageRecord, StageState};
use sluice_trust::{operator, Policies, Policy};

use crate::cli::StageTestArgs;
use crate::exit;
use crate::report::{Event, Reporter};
use crate::run::{self, RunError, RunOptions};

/// The global options `stage test` uses.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--state-dir` / `SLUICE_STATE_DIR`, if given.
    pub state_dir: Option<PathBuf>,
    /// The compile cache.
    pub cache_dir: PathBuf,
    /// `--operator-policy`.
    pub operator_policy: Option<PathBuf>,
    /// Cancels the stage when a reason is sent (a signal to the runner).
    pub interrupt: Option<sluice_engine::scheduler::Interrupt>,
}

/// What `stage test` prints and its exit code: [`exit::PASSED`] when the
/// stage passed (or warned) and every expectation held, else
/// [`exit::FAILED`].
#[derive(Debug)]
pub struct Outcome {
    /// Standard output (the result for people, or one JSON document).
    pub stdout: String,
    /// The exit code.
    pub code: i32,
}

/// Why `stage test` could not run the stage (a stage that fails is an
/// [`Outcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum StageTestError {
    /// A flag's value is malformed.
    #[error("{flag} {value}: {message}\n  = help: {hint}")]
    Argument {
        /// The flag (`--grant`, `--input`, …).
        flag: &'static str,
        /// Its value as given.
        value: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The config given with `--with` cannot be read or is not a JSON
    /// object (rendered with its file, line and column).
    #[error("{0}")]
    Config(String),
    /// The config breaks the plugin's config schema: every problem, each
    /// located in the config (as `sluice validate` reports `with:`).
    #[error("{}", .0.join("\n"))]
    Schema(Vec<String>),
    /// The plugin file is missing, unreadable, or not a usable component.
    #[error("plugin {}: {message}", file.display())]
    Plugin {
        /// The file.
        file: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An `--input` file or the expectation file cannot be read, or a
    /// temporary directory cannot be made.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The expectation file is not JSON.
    #[error("{0}")]
    Expect(String),
    /// The generated one-stage pipeline was refused for a reason no flag
    /// explains (a bug: the message names the generated file).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The trust policy given with `--policy`, or the operator's, is invalid.
    #[error(transparent)]
    Policy(#[from] sluice_trust::PolicyError),
    /// Admission refused the plugin (exit 3) or found it unusable.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The input artifacts cannot be stored or the record not written.
    #[error(transparent)]
    Record(#[from] sluice_record::RecordError),
    /// The artifact store refused an input file.
    #[error(transparent)]
    Artifacts(#[from] sluice_record::artifacts::ArtifactError),
    /// The run could not be carried out.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Runs the stage as the arguments say; see the module documentation.
pub async fn stage_test(args: &StageTestArgs, g: &Globals) -> Result<Outcome, StageTestError> {
    let plugin_path = absolute(&args.plugin);
    // A missing or unreadable plugin is named before anything else.
    admission::read_plugin(&plugin_path).map_err(|e: PluginFileError| StageTestError::Plugin {
        file: args.plugin.clone(),
        message: e.to_string(),
    })?;
    let config = read_config(args.with.as_deref())?;
    let stage = stage_name(args)?;
    let inputs = parse_inputs(&args.inputs, &stage)?;
    let harness = tempfile::Builder::new()
        .prefix("sluice-stage-test-")
        .tempdir()
        .map_err(|source| StageTestError::Io {
            what: "temporary directory",
            path: std::env::temp_dir(),
            source,
        })?;
    let workspace = match &args.workspace {
        Some(dir) => absolute(dir),
        None => {
            let dir = harness.path().join("workspace");
            std::fs::create_dir(&dir).map_err(|source| StageTestError::Io {
                what: "temporary workspace",
                path: dir.clone(),
                source,
            })?;
            dir
        }
    };
    let generated = PipelineText::build(&PipelineSpec {
        stage: &stage,
        plugin: &plugin_path,
        workspace: &workspace,
        workspace_given: args.workspace.is_some(),
        config: &config.value,
        grants: &args.grants,
        inputs: &inputs,
        timeout: args.timeout.as_deref(),
    })?;
    let pipeline_file = harness.path().join("sluice.yaml");
    std::fs::write(&pipeline_file, &generated.text).map_err(|source| StageTestError::Io {
        what: "generated pipeline",
        path: pipeline_file.clone(),
        source,
    })?;
    let pipeline = pipeline::load(&pipeline_file).map_err(|e| generated.explain(e))?;

    let policy_file = args.policy.as_deref().map(absolute);
    let policy = policy_file.as_deref().map(Policy::load).transpose()?;
    let operator = operator::load_operator(g.operator_policy.as_deref())?;
    let policies = Policies::new(operator, policy);
    // The author's own inner loop: an unsigned build is fine unless a
    // policy applies, in which case the policy decides (as in `run`).
    let allow_unsigned = policies.is_empty();
    // A plugin file, never an OCI reference: no pulled plugins to add.
    let files = admission::read_plugins(
        &pipeline,
        std::slice::from_ref(&stage),
        &std::collections::HashMap::new(),
    )?;
    let Some(stage_def) = pipeline.stages.get(&stage) else {
        return Err(StageTestError::Plugin {
            file: args.plugin.clone(),
            message: "the generated pipeline lost the stage".into(),
        });
    };
    let Some(file) = files.values().next() else {
        return Err(StageTestError::Plugin {
            file: args.plugin.clone(),
            message: "the plugin file was not read".into(),
        });
    };
    admission::admit(&stage, stage_def, file, &policies, allow_unsigned)?;
    check_config(&args.plugin, file, &config, g).await?;

    // Without `--state-dir`, the state of a passed stage is removed (an
    // author runs this in a loop); a failed one's is kept for its log.
    let temp_state = match &g.state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("sluice-stage-test-state-")
                .tempdir()
                .map_err(|source| StageTestError::Io {
                    what: "temporary state directory",
                    path: std::env::temp_dir(),
                    source,
                })?,
        ),
    };
    let state_dir = match (&g.state_dir, &temp_state) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => std::env::temp_dir(),
    };
    let resume = if inputs.is_empty() {
        None
    } else {
        Some(record_inputs(&pipeline, &inputs, &state_dir)?)
    };
    let reporter = Arc::new(TestReporter {
        stage: stage.clone(),
        stream_logs: !args.json,
        warnings: Mutex::new(Vec::new()),
    });
    let opts = RunOptions {
        pipeline: Some(pipeline_file.clone()),
        state_dir: state_dir.clone(),
        cache_dir: g.cache_dir.clone(),
        jobs: 1,
        fail_fast: true,
        resume,
        policy: policy_file,
        operator_policy: g.operator_policy.clone(),
        allow_unsigned,
        provenance_key: None,
        require_clean: false,
        builder_id: None,
        interrupt: g.interrupt.clone(),
        stop_wait_ms: Arc::default(),
    };
    let record = run::run(&opts, reporter.clone()).await?;
    let warnings = reporter
        .warnings
        .lock()
        .map(|w| w.clone())
        .unwrap_or_default();
    let mut result = result_document(&record, &stage, &args.plugin, &state_dir, warnings);
    let mut code = crate::error::run_exit_code(record.status);

    let mut expect_text = None;
    if let Some(path) = &args.expect {
        let check = check_expectation(path, &result, args.update)?;
        if !check.mismatches.is_empty() {
            code = exit::FAILED;
        }
        expect_text = Some(render_expectation(path, &check));
        if let Value::Object(m) = &mut result {
            m.insert(
                "expect".into(),
                json!({
                    "file": path.display().to_string(),
                    "updated": check.updated,
                    "checks": check.checks,
                    "matched": check.mismatches.is_empty(),
                    "mismatches": check.mismatches.iter().map(|m| json!({
                        "path": m.path, "expected": m.expected, "actual": m.actual,
                    })).collect::<Vec<_>>(),
                }),
            );
        }
    }
    if let Some(temp) = temp_state {
        if code == exit::PASSED {
            if let Value::Object(m) = &mut result {
                m.insert("state_dir".into(), Value::Null);
                m.insert("log".into(), Value::Null);
            }
        } else {
            // Kept: the failure's log is what the author reads next.
            let _ = temp.keep();
        }
    }
    let stdout = if args.json {
        let mut text = serde_json::to_string_pretty(&result).unwrap_or_default();
        text.push('\n');
        text
    } else {
        let mut text = render(&result);
        if let Some(e) = expect_text {
            text.push_str(&e);
        }
        text
    };
    Ok(Outcome { stdout, code })
}

/// `path` made absolute against the working directory (not canonical:
/// messages show what the user typed, resolved).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The config and where it came from, for locating schema problems.
struct Config {
    value: Value,
    /// The file, or `--with` for inline JSON.
    origin: PathBuf,
    text: String,
}

/// `--with`: a JSON file, or inline JSON (text starting with `{` or `[`
/// that is not a file's name); `{}` when absent.
fn read_config(with: Option<&str>) -> Result<Config, StageTestError> {
    let Some(with) = with else {
        return Ok(Config {
            value: json!({}),
            origin: PathBuf::from("--with"),
            text: "{}".into(),
        });
    };
    // A file wins; else text that looks like JSON is the config itself.
    let inline = !Path::new(with).is_file() && with.trim_start().starts_with(['{', '[']);
    let (origin, text) = if inline {
        (PathBuf::from("--with"), with.to_owned())
    } else {
        let path = PathBuf::from(with);
        let bytes = sluice_files::fsutil::read_input_file(
            &path,
            sluice_files::fsutil::MAX_PIPELINE_BYTES,
            "config file",
        )
        .map_err(|e| {
            StageTestError::Config(format!(
                "error: --with {with}: {e}\n  = help: give a JSON file, or the config inline: --with '{{\"key\": \"value\"}}'"
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            StageTestError::Config(format!(
                "error: --with {with}: the config file is not UTF-8 text\n  = help: save it as UTF-8 JSON"
            ))
        })?;
        (path, text)
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        let source_line = text.lines().nth(e.line().saturating_sub(1));
        StageTestError::Config(render_located(
            &origin,
            e.line(),
            e.column(),
            &format!("the config is not valid JSON: {e}"),
            Some("the config is the stage's `with:` as one JSON object, e.g. {\"include\": [\"src/**\"]}"),
            source_line,
        ))
    })?;
    if !value.is_object() {
        return Err(StageTestError::Config(render_located(
            &origin,
            1,
            1,
            "the config must be a JSON object (the stage's `with:`)",
            Some("wrap the values in {…}; an empty config is {}"),
            text.lines().next(),
        )));
    }
    Ok(Config {
        value,
        origin,
        text,
    })
}

/// `--stage`, else the plugin file's stem if it is a stage name, else
/// `stage`.
fn stage_name(args: &StageTestArgs) -> Result<String, StageTestError> {
    if let Some(name) = &args.stage {
        return sluice_types::StageName::new(name.clone())
            .map(|n| n.into_string())
            .map_err(|e| StageTestError::Argument {
                flag: "--stage",
                value: name.clone(),
                message: e.to_string(),
                hint: "stage names are lowercase letters, digits, `-` and `_`".into(),
            });
    }
    let stem = args
        .plugin
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    Ok(if sluice_types::StageName::is_valid(&stem) {
        stem
    } else {
        "stage".into()
    })
}

/// One `--input STAGE/NAME=FILE`.
#[derive(Debug, Clone)]
struct Input {
    stage: String,
    name: String,
    file: PathBuf,
}

fn parse_inputs(raw: &[String], tested: &str) -> Result<Vec<Input>, StageTestError> {
    let mut inputs: Vec<Input> = Vec::new();
    for value in raw {
        let bad = |message: String, hint: &str| StageTestError::Argument {
            flag: "--input",
            value: value.clone(),
            message,
            hint: hint.into(),
        };
        let form = "write it as STAGE/NAME=FILE, e.g. --input build/dist/app.tar.gz=./app.tar.gz";
        let Some((target, file)) = value.split_once('=') else {
            return Err(bad("no `=FILE`".into(), form));
        };
        let Some((stage, name)) = target.split_once('/') else {
            return Err(bad("no `/NAME` after the stage".into(), form));
        };
        sluice_types::StageName::new(stage.to_owned())
            .map_err(|e| bad(e.to_string(), "the upstream stage's name, as in `needs:`"))?;
        if stage == tested {
            return Err(bad(
                format!("`{stage}` is the stage under test"),
                "name the upstream stage that produced the artifact, or pick another name for the tested stage with --stage",
            ));
        }
        let clean = !name.is_empty()
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !clean {
            return Err(bad(
                format!("`{name}` is not a relative artifact name"),
                "artifact names are relative paths without `.` or `..` parts, e.g. dist/app.tar.gz",
            ));
        }
        if inputs.iter().any(|i| i.stage == stage && i.name == name) {
            return Err(bad(
                format!("`{stage}/{name}` is given twice"),
                "give each artifact once",
            ));
        }
        let path = absolute(Path::new(file));
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(bad(format!("{file} is not a regular file"), form)),
            Err(e) => return Err(bad(format!("cannot read {file}: {e}"), form)),
        }
        inputs.push(Input {
            stage: stage.to_owned(),
            name: name.to_owned(),
            file: path,
        });
    }
    Ok(inputs)
}

/// Describes the plugin (in a sandbox without grants, as `sluice validate`
/// does) and checks the config against the schema it publishes.
async fn check_config(
    shown: &Path,
    file: &admission::PluginFile,
    config: &Config,
    g: &Globals,
) -> Result<(), StageTestError> {
    let unusable = |message: String| StageTestError::Plugin {
        file: shown.to_path_buf(),
        message,
    };
    let host = Host::new(
        Some(&g.cache_dir),
        &PoolSizing {
            concurrent_instances: 2,
        },
    )
    .map_err(|e| unusable(e.to_string()))?;
    let plugin = host
        .load(&file.bytes, &file.digest)
        .map_err(|e| unusable(e.to_string()))?;
    let info = sandbox::describe(&plugin)
        .await
        .map_err(|e| unusable(format!("`describe` failed: {e}")))?;
    let Some(schema_text) = info.config_schema.as_deref() else {
        return Ok(());
    };
    let schema = ConfigSchema::compile(schema_text)
        .map_err(|why| unusable(format!("its config schema cannot be used: {why}")))?;
    let map = SourceMap::build(&config.text);
    let mut problems = Vec::new();
    for v in schema.check(&config.value) {
        if v.templated {
            continue;
        }
        let unknown_key = v.message.starts_with("unknown key");
        let mut yaml = YamlPath::root();
        for segment in &v.path {
            yaml = match segment.parse::<usize>() {
                Ok(i) => yaml.index(i),
                Err(_) => yaml.key(segment),
            };
        }
        let at = if unknown_key {
            map.key(&yaml)
        } else {
            map.value(&yaml)
        };
        let hint = v.hint.clone().unwrap_or_else(|| {
            format!(
                "see the plugin's config schema: `sluice plugin inspect --json {}`",
                shown.display()
            )
        });
        problems.push(render_located(
            &config.origin,
            at.line,
            at.column,
            &format!(
                "{}: {} (plugin {} {})",
                v.dotted(),
                v.message,
                info.name,
                info.version
            ),
            Some(&hint),
            config.text.lines().nth(at.line.saturating_sub(1)),
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StageTestError::Schema(problems))
    }
}

/// Stores the `--input` files as the artifacts of their (passed) upstream
/// stages in a new run record; returns its id, for the run to resume.
fn record_inputs(
    pipeline: &pipeline::Pipeline,
    inputs: &[Input],
    state_dir: &Path,
) -> Result<String, StageTestError> {
    let cas = Cas::open(&state_dir.join("cas"))?;
    let staging = tempfile::Builder::new()
        .prefix("sluice-stage-test-inputs-")
        .tempdir()
        .map_err(|source| StageTestError::Io {
            what: "temporary directory",
            path: std::env::temp_dir(),
            source,
        })?;
    let stages = pipeline
        .stages
        .keys()
        .map(|k| (k.clone(), StageRecord::pending(k)))
        .collect();
    let path = std::path::absolute(&pipeline.path).unwrap_or_else(|_| pipeline.path.clone());
    let mut record = RunRecord::new(
        sluice_record::new_run_id(),
        pipeline.name.clone(),
        path,
        pipeline.digest.clone(),
        stages,
    );
    for (stage, rec) in record.stages.iter_mut() {
        let mine: Vec<&Input> = inputs.iter().filter(|i| &i.stage == stage).collect();
        if mine.is_empty() {
            continue;
        }
        let dir = staging.path().join(stage);
        let mut declared = Vec::new();
        for input in mine {
            let to = dir.join(&input.name);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|source| StageTestError::Io {
                    what: "temporary directory",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::copy(&input.file, &to).map_err(|source| StageTestError::Io {
                what: "--input file",
                path: input.file.clone(),
                source,
            })?;
            if let Some(media_type) = media_type(&input.name) {
                declared.push((input.name.clone(), media_type.to_owned()));
            }
        }
        rec.artifacts = cas.ingest_dir(&dir, &declared, &IngestLimits::default())?;
        rec.state = StageState::Passed;
        rec.summary = Some("given with --input".into());
    }
    let store = RunStore::new(state_dir);
    store.create(&record)?;
    store.save(&record)?;
    Ok(record.run_id)
}

/// The media type an `--input` artifact gets from its extension.
fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "json" => "application/json",
        "sarif" => "application/sarif+json",
        "xml" => "application/xml",
        "txt" | "log" => "text/plain",
        "html" => "text/html",
        "tar" => "application/x-tar",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        _ => return None,
    })
}

/// Collects warnings; streams the tested stage's log to stderr.
struct TestReporter {
    stage: String,
    stream_logs: bool,
    warnings: Mutex<Vec<String>>,
}

impl Reporter for TestReporter {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Warning { message } => {
                if let Ok(mut w) = self.warnings.lock() {
                    w.push((*message).to_owned());
                }
            }
            Event::StageLog {
                stage,
                line,
                level,
                fields,
            } if self.stream_logs && *stage == self.stage => {
                let level = level
                    .and_then(|l| serde_json::to_value(l).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut text = format!("  {level:<5} {line}");
                for (k, v) in fields.iter() {
                    text.push_str(&format!(" {k}={v}"));
                }
                eprintln!("{text}");
            }
            _ => {}
        }
    }
}
