//! Every way a command fails, as one typed [`CliError`], and the one place
//! that decides, for each failure, the exit code ([`CliError::exit_code`],
//! always one of the [`exit`] constants) and what goes to stderr
//! ([`CliError::report`]). `main` does nothing else with an error. A run
//! that ends (passed, failed, paused) is no error: [`run_exit_code`] maps
//! its status.

use crate::commands::agent::AgentError;
use crate::commands::agents::AgentsError;
use crate::commands::approve::ApproveError;
use crate::commands::artifacts::ArtifactsError;
use crate::commands::gc::GcError;
use crate::commands::inspect::InspectError;
use crate::commands::new::NewError;
use crate::commands::oci::OciCommandError;
use crate::commands::stage_test::StageTestError;
use crate::commands::trust::Failure;
use crate::commands::validate::ValidateError;
use crate::exit;
use crate::html_report::ReportError;
use crate::run::RunError;
use sluice_engine::admission::AdmissionError;
use sluice_record::{RecordError, RunStatus};

/// Why a `sluice` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `sluice run` could not carry the run out (a run that fails is not an
    /// error: it ends with [`exit::FAILED`] through its status).
    #[error(transparent)]
    Run(#[from] RunError),
    /// `sluice validate`: the pipeline or a stage's `with:` is invalid, or
    /// a plugin cannot be described.
    #[error(transparent)]
    Validate(#[from] ValidateError),
    /// `key generate`, `plugin sign|attest|verify`, `policy check`,
    /// `verify-artifact`, and the verification before `plugin inspect`.
    #[error(transparent)]
    Trust(#[from] Failure),
    /// `plugin inspect`.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// `runs list|show|repair`.
    #[error(transparent)]
    Runs(#[from] RecordError),
    /// `gc`.
    #[error(transparent)]
    Gc(#[from] GcError),
    /// `approve`.
    #[error(transparent)]
    Approve(#[from] ApproveError),
    /// `artifacts list|get|export`.
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    /// `report`.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `stage test` (a failure of the run itself is [`CliError::Run`]).
    #[error(transparent)]
    StageTest(StageTestError),
    /// `new stage`, `new pipeline`.
    #[error(transparent)]
    New(#[from] NewError),
    /// `plugin push|pull` and `plugin sign oci://…`.
    #[error(transparent)]
    Oci(#[from] OciCommandError),
    /// `agent`.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// `agents list`.
    #[error(transparent)]
    Agents(#[from] AgentsError),
    /// A command's output cannot be written (other than to a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    /// The async runtime cannot start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl CliError {
    /// The exit code: [`exit::INVALID`] for invalid input (pipeline,
    /// policy, arguments, plugin file, unknown run), [`exit::REFUSED`] when
    /// the trust policy or a signature check refuses, [`exit::FAILED`] for
    /// the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Run(e) => match e {
                RunError::Admission(AdmissionError::Refused { .. }) => exit::REFUSED,
                // Content that is not what its digest or the lock says is
                // refused like a bad signature; a registry that is down is
                // no fault of the input.
                RunError::Oci(e) if e.is_refusal() => exit::REFUSED,
                RunError::Oci(e) if e.is_unreachable() => exit::FAILED,
                RunError::Oci(_) => exit::INVALID,
                RunError::Pipeline(_)
                | RunError::Plugin { .. }
                | RunError::Resume { .. }
                | RunError::Policy(_)
                | RunError::Admission(AdmissionError::Unusable { .. })
                | RunError::StateInWorkspace { .. }
                | RunError::SigningKey(_)
                | RunError::NotClean { .. }
                | RunError::BuilderId(_)
                | RunError::SnapshotIgnore { .. } => exit::INVALID,
                RunError::Record(
                    RecordError::NotFound { .. }
                    | RecordError::Busy(_)
                    | RecordError::Corrupt { .. },
                ) => exit::INVALID,
                RunError::Record(_)
                | RunError::Host(_)
                | RunError::Artifacts(_)
                | RunError::SourceRead(_) => exit::FAILED,
                // A bad `--executor` address is input; agents or a NATS
                // server that cannot be reached are not.
                RunError::Fleet(e) if e.is_input() => exit::INVALID,
                RunError::Fleet(_) => exit::FAILED,
            },
            CliError::Trust(f) => match f {
                Failure::Refused(_) | Failure::RefusedReport(_) => exit::REFUSED,
                Failure::Oci(e) if e.is_refusal() => exit::REFUSED,
                Failure::Oci(e) if e.is_unreachable() => exit::FAILED,
                Failure::Oci(_) => exit::INVALID,
                Failure::Invalid(_)
                | Failure::Input(_)
                | Failure::Key(_)
                | Failure::PluginFile(_)
                | Failure::Component { .. }
                | Failure::Pipeline(_)
                | Failure::Policy(_) => exit::INVALID,
            },
            // A blob that fails its digest, or a copy that cannot be
            // written, is a failure; a wrong run, stage or name is input.
            CliError::Artifacts(
                ArtifactsError::Store(_)
                | ArtifactsError::Write { .. }
                | ArtifactsError::Record(RecordError::Io { .. }),
            ) => exit::FAILED,
            CliError::Report(
                ReportError::Store(_)
                | ReportError::Write { .. }
                | ReportError::Record(RecordError::Io { .. }),
            ) => exit::FAILED,
            CliError::Validate(ValidateError::Host(_)) => exit::FAILED,
            CliError::Validate(ValidateError::Oci(e)) if e.is_refusal() => exit::REFUSED,
            CliError::Validate(ValidateError::Oci(e)) if e.is_unreachable() => exit::FAILED,
            CliError::StageTest(StageTestError::Admission(AdmissionError::Refused { .. })) => {
                exit::REFUSED
            }
            CliError::StageTest(
                StageTestError::Record(_) | StageTestError::Artifacts(_) | StageTestError::Run(_),
            )
            | CliError::New(NewError::Write { .. }) => exit::FAILED,
            CliError::StageTest(_) | CliError::New(_) => exit::INVALID,
            // Content that is not what its digest says is refused like a
            // bad signature; a registry that does not answer is no fault of
            // the input (as in `run`); credentials, TLS trust, references
            // and files are input.
            CliError::Oci(OciCommandError::Registry(e)) if e.is_integrity() => exit::REFUSED,
            CliError::Oci(OciCommandError::Registry(e)) if e.is_unreachable() => exit::FAILED,
            CliError::Oci(OciCommandError::Trust(
                Failure::Refused(_) | Failure::RefusedReport(_),
            )) => exit::REFUSED,
            CliError::Oci(OciCommandError::Write { .. }) => exit::FAILED,
            CliError::Oci(_) => exit::INVALID,
            CliError::Validate(_)
            | CliError::Inspect(_)
            | CliError::Runs(_)
            | CliError::Gc(_)
            | CliError::Approve(_)
            | CliError::Artifacts(_)
            | CliError::Report(_) => exit::INVALID,
            // A bad config, policy or argument is input; an engine, cache
            // directory or NATS server that fails is not.
            CliError::Agent(
                AgentError::Config(_)
                | AgentError::Start(sluice_agent::StartError::Policy(_))
                | AgentError::BadListen { .. }
                | AgentError::NoSource { .. },
            ) => exit::INVALID,
            CliError::Agent(AgentError::Transport(e)) | CliError::Agents(AgentsError::Nats(e))
                if e.is_input() =>
            {
                exit::INVALID
            }
            CliError::Agent(_) | CliError::Agents(_) => exit::FAILED,
            CliError::Output(_) | CliError::Runtime(_) => exit::FAILED,
        }
    }

    /// What `main` prints on stderr, ending with a newline:
    /// - pipeline and policy errors render themselves, rustc-style
    ///   (`error: …`, `--> file:line:col`, the line, `= help: …`);
    /// - `plugin verify`'s report of a refused plugin is printed as it is;
    /// - `run` and the trust commands: `error: ` and the message;
    /// - the other commands: `error: ` and the message, then one
    ///   `  caused by: …` line per underlying cause.
    pub fn report(&self) -> String {
        match self {
            CliError::Validate(ValidateError::Config(_)) => line(self.to_string()),
            CliError::Validate(ValidateError::Pipeline(e))
            | CliError::Run(RunError::Pipeline(e))
            | CliError::Trust(Failure::Pipeline(e)) => line(e.to_string()),
            CliError::Run(RunError::Policy(e))
            | CliError::Trust(Failure::Policy(e))
            | CliError::StageTest(StageTestError::Policy(e)) => line(e.to_string()),
            CliError::StageTest(StageTestError::Pipeline(e)) => line(e.to_string()),
            CliError::StageTest(StageTestError::Config(text) | StageTestError::Expect(text)) => {
                line(text.clone())
            }
            CliError::StageTest(StageTestError::Schema(problems)) => {
                let mut out = line(problems.join("\n"));
                if problems.len() > 1 {
                    out.push_str(&format!("{} problems in the config\n", problems.len()));
                }
                out
            }
            CliError::Trust(Failure::RefusedReport(report)) => line(report.clone()),
            CliError::Agent(AgentError::Config(e)) => line(e.to_string()),
            CliError::Agent(AgentError::Start(sluice_agent::StartError::Policy(e))) => {
                line(e.to_string())
            }
            CliError::Run(_)
            | CliError::Trust(_)
            | CliError::StageTest(_)
            | CliError::New(_)
            | CliError::Oci(_)
            | CliError::Validate(_)
            | CliError::Agent(_)
            | CliError::Agents(_)
            | CliError::Output(_)
            | CliError::Runtime(_) => {
                format!("error: {self}\n")
            }
            CliError::Inspect(_)
            | CliError::Runs(_)
            | CliError::Gc(_)
            | CliError::Approve(_)
            | CliError::Artifacts(_)
            | CliError::Report(_) => {
                let mut out = format!("error: {self}\n");
                let mut cause = std::error::Error::source(self);
                while let Some(c) = cause {
                    out.push_str(&format!("  caused by: {c}\n"));
                    cause = c.source();
                }
                out
            }
        }
    }
}

impl From<StageTestError> for CliError {
    /// A run that could not be carried out is reported (and exits) as
    /// `sluice run` reports it.
    fn from(e: StageTestError) -> CliError {
        match e {
            StageTestError::Run(run) => CliError::Run(run),
            other => CliError::StageTest(other),
        }
    }
}

/// The exit code of a run carried out to its end or a pause:
/// [`exit::PASSED`], [`exit::PAUSED`], else [`exit::FAILED`].
pub fn run_exit_code(status: RunStatus) -> i32 {
    match status {
        RunStatus::Passed => exit::PASSED,
        RunStatus::Paused => exit::PAUSED,
        RunStatus::Failed | RunStatus::Running | RunStatus::Interrupted => exit::FAILED,
    }
}

/// [`run_exit_code`] of a run on agents: a run that failed because an
/// agent refused a stage (its own policy, its grant ceiling) exits
/// [`exit::REFUSED`], like a refusal before the run.
pub fn run_exit_code_refused(status: RunStatus, refused: bool) -> i32 {
    match status {
        RunStatus::Failed if refused => exit::REFUSED,
        other => run_exit_code(other),
    }
}

/// `text` ending with one newline.
fn line(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_pipeline::PipelineError;
    use std::path::PathBuf;

    #[test]
    fn refusals_exit_3_invalid_input_2_the_rest_1() {
        let refused = CliError::Run(RunError::Admission(AdmissionError::Refused {
            stage: "s".into(),
            reference: "p.wasm".into(),
            reasons: vec!["unsigned".into()],
        }));
        assert_eq!(refused.exit_code(), exit::REFUSED);
        let report = CliError::Trust(Failure::RefusedReport(
            "plugin x\n  result: REFUSED\n".into(),
        ));
        assert_eq!(report.exit_code(), exit::REFUSED);
        assert_eq!(report.report(), "plugin x\n  result: REFUSED\n");
        let invalid = CliError::Trust(Failure::Invalid("the passwords do not match".into()));
        assert_eq!(invalid.exit_code(), exit::INVALID);
        assert_eq!(invalid.report(), "error: the passwords do not match\n");
        let unusable = CliError::Run(RunError::Admission(AdmissionError::Unusable {
            stage: "s".into(),
            reference: "p.wasm".into(),
            reason: sluice_engine::admission::Unusable::Oci,
        }));
        assert_eq!(unusable.exit_code(), exit::INVALID);
        assert!(unusable
            .report()
            .starts_with("error: stage `s`: plugin p.wasm: OCI plugin references"));
        let busy = CliError::Runs(RecordError::Busy("r1".into()));
        assert_eq!(busy.exit_code(), exit::INVALID);
        let output = CliError::Output(std::io::Error::other("disk full"));
        assert_eq!(output.exit_code(), exit::FAILED);
        assert_eq!(
            output.report(),
            "error: cannot write the output: disk full\n"
        );
    }

    #[test]
    fn a_run_an_agent_refused_exits_3_and_fleet_setup_errors_1_or_2() {
        use crate::run::{parse_executor, RunError};
        let code = run_exit_code_refused;
        assert_eq!(code(RunStatus::Failed, true), exit::REFUSED);
        assert_eq!(code(RunStatus::Failed, false), exit::FAILED);
        // Only a failed run exits 3: a paused one stays paused.
        assert_eq!(code(RunStatus::Passed, false), exit::PASSED);
        assert_eq!(code(RunStatus::Paused, true), exit::PAUSED);
        let bad_url = parse_executor("http://h:1").err().map(RunError::Fleet);
        let bad_url = bad_url.map(|e| CliError::Run(e).exit_code());
        assert_eq!(bad_url, Some(exit::INVALID));
        let closed = CliError::Run(RunError::Fleet(sluice_fleet::FleetError::Closed {
            what: "the agent socket".into(),
        }));
        assert_eq!(closed.exit_code(), exit::FAILED);
        // A credentials file the NATS client cannot use is input too.
        let creds = || sluice_fleet::FleetError::Credentials {
            path: PathBuf::from("/nonexistent/agent.creds"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            CliError::Run(RunError::Fleet(creds())).exit_code(),
            exit::INVALID
        );
        let agents = CliError::Agents(crate::commands::agents::AgentsError::Nats(creds()));
        assert_eq!(agents.exit_code(), exit::INVALID);
    }

    #[test]
    fn pipeline_errors_render_themselves() {
        let e = PipelineError::Invalid {
            file: PathBuf::from("sluice.yaml"),
            line: 2,
            column: 1,
            message: "unknown field `stagez`".into(),
            hint: None,
            source_line: Some("stagez:".into()),
        };
        let text = e.to_string();
        let err = CliError::Validate(ValidateError::Pipeline(e));
        assert_eq!(err.exit_code(), exit::INVALID);
        assert_eq!(err.report(), format!("{text}\n"));
        assert!(err.report().starts_with("error: unknown field"));
    }
}
