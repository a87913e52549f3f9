//! The `sluice` binary: parse arguments, dispatch, and hand every failure
//! to [`CliError`], which says what to print and which exit code to use.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use sluice::cli::{
    AgentsCommand, ArtifactsCommand, Cli, Command, KeyCommand, PluginCommand, PolicyCommand,
    RunArgs, RunsCommand, StageCommand,
};
use sluice::error::CliError;
use sluice::report::console::{self, Console, ConsoleOptions, Verbosity};
use sluice::report::{json::JsonLines, Event, Reporter};
use sluice::{commands, exit, run};
use sluice_host::procs;
use sluice_record::RunStatus;

fn init_tracing(filter: &str) {
    // rustls-platform-verifier logs each certificate it rejects at ERROR;
    // the registry commands' own error says the same and names the fix
    // (`--registry-ca`), so it shows only when asked for by name.
    let filter = if filter.contains("rustls_platform_verifier") {
        filter.to_owned()
    } else {
        format!("{filter},rustls_platform_verifier=off")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn code(c: i32) -> ExitCode {
    u8::try_from(c).map_or(ExitCode::FAILURE, ExitCode::from)
}

/// Prints `err` as [`CliError::report`] renders it; its exit code.
fn fail(err: &CliError) -> ExitCode {
    eprint!("{}", err.report());
    code(err.exit_code())
}

async fn run_command(cli: &Cli, args: &RunArgs) -> ExitCode {
    let ci = sluice::ci::detect(args.ci, |k| std::env::var_os(k));
    let reporter: Arc<dyn Reporter> = if args.json {
        Arc::new(JsonLines::stdout())
    } else {
        let verbosity = match (args.quiet, args.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, false) => Verbosity::Normal,
            (false, true) => Verbosity::Verbose,
        };
        let opts = ConsoleOptions {
            state_dir: Some(cli.state_dir()),
            cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
            ..ConsoleOptions::plain(verbosity)
        };
        // A detected CI system renders its own plain console into log
        // groups; no live area is drawn into a CI log.
        let live = ci.is_none()
            && console::live_allowed(std::io::stdout().is_terminal(), |k| std::env::var(k).ok());
        Arc::new(Console::stdout(opts, live))
    };
    let reporter = ci_reporter(cli, args, ci, reporter);
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let run_id = Arc::new(Mutex::new(None));
    let reporter: Arc<dyn Reporter> = Arc::new(RunIdTap {
        inner: reporter,
        run_id: run_id.clone(),
    });
    // Before any stage: the fallback's subreaper must be in place before
    // the first program can leave an orphan.
    procs::init();
    let mut signals = Signals::watch();
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(None);
    let opts = run::RunOptions {
        pipeline: args.pipeline.clone(),
        state_dir: cli.state_dir(),
        cache_dir: cli.cache_dir(),
        jobs,
        fail_fast: !args.keep_going,
        resume: args.resume.clone(),
        policy: args.policy.clone(),
        operator_policy: cli.operator_policy.clone(),
        allow_unsigned: args.allow_unsigned,
        provenance_key: args.provenance_key.clone(),
        require_clean: args.require_clean,
        builder_id: args.builder_id.clone(),
        interrupt: Some(interrupt_rx),
        stop_wait_ms: Arc::default(),
    };
    let oci = run::OciRunOptions {
        registry: args.registry.access(),
        locked: args.locked,
    };
    let stop_wait = opts.stop_wait_ms.clone();
    let fleet = run::FleetRunOptions {
        target: args.agent.clone().or_else(|| args.executor.clone()),
        refused: Arc::default(),
    };
    let run = run::run_on(&opts, &oci, &fleet, reporter);
    tokio::pin!(run);
    let outcome = tokio::select! {
        outcome = &mut run => outcome,
        first = Signals::next(&mut signals) => {
            // Ask the scheduler to stop: it cancels the running stages,
            // records them `cancelled` with the signal as the reason and
            // ends the run `interrupted`. A run still in its setup
            // (compiling plugins) is dropped instead after a short wait:
            // it has no record yet.
            let _ = interrupt_tx.send(Some(format!("interrupted by {}", first.name())));
            let stopped = tokio::select! {
                outcome = tokio::time::timeout(stop_wait_after_signal(&stop_wait), &mut run) => outcome.ok(),
                _ = Signals::next(&mut signals) => {
                    let _ = tokio::task::spawn_blocking(procs::kill_all_now).await;
                    None
                }
            };
            let id = run_id.lock().ok().and_then(|id| id.clone());
            let recorded = matches!(&stopped, Some(Ok(r)) if r.status == RunStatus::Interrupted);
            return interrupted(first, signals, id, recorded, &opts.state_dir).await;
        }
    };
    // Stages cancelled by fail-fast may still be in their kill grace.
    end_stage_processes(&mut signals).await;
    match outcome {
        Ok(record) => code(sluice::error::run_exit_code_refused(
            record.status,
            fleet.refused.load(std::sync::atomic::Ordering::Relaxed),
        )),
        Err(e) => fail(&e.into()),
    }
}

/// `sluice stage test`: one stage through the run's code path; its
/// processes are stopped afterwards, as after `sluice run`.
async fn stage_test_command(cli: &Cli, args: &sluice::cli::StageTestArgs) -> ExitCode {
    procs::init();
    let mut signals = Signals::watch();
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(None);
    let globals = commands::stage_test::Globals {
        state_dir: cli.state_dir.clone().filter(|p| !p.as_os_str().is_empty()),
        cache_dir: cli.cache_dir(),
        operator_policy: cli.operator_policy.clone(),
        interrupt: Some(interrupt_rx),
    };
    let test = commands::stage_test::stage_test(args, &globals);
    tokio::pin!(test);
    // A signal cancels the stage as in `sluice run` (its grace period, its
    // programs stopped); the result so far is still printed.
    let mut signalled = None;
    let outcome = tokio::select! {
        outcome = &mut test => outcome,
        first = Signals::next(&mut signals) => {
            signalled = Some(first);
            let _ = interrupt_tx.send(Some(format!("interrupted by {}", first.name())));
            tokio::select! {
                outcome = &mut test => outcome,
                _ = Signals::next(&mut signals) => {
                    let _ = tokio::task::spawn_blocking(procs::kill_all_now).await;
                    std::process::exit(match first {
                        Interrupt::Int => exit::SIGINT,
                        Interrupt::Term => exit::SIGTERM,
                    })
                }
            }
        }
    };
    end_stage_processes(&mut signals).await;
    let result = match outcome {
        Ok(o) => match print_output(&o.stdout) {
            Ok(()) => code(o.code),
            Err(e) => fail(&CliError::Output(e)),
        },
        Err(e) => fail(&e.into()),
    };
    match signalled {
        Some(Interrupt::Int) => code(exit::SIGINT),
        Some(Interrupt::Term) => code(exit::SIGTERM),
        None => result,
    }
}

/// `reporter` wrapped for the CI system in effect (docs/ci.md), if any.
fn ci_reporter(
    cli: &Cli,
    args: &RunArgs,
    system: Option<sluice::ci::CiSystem>,
    reporter: Arc<dyn Reporter>,
) -> Arc<dyn Reporter> {
    use sluice::ci;
    let var = |k: &str| std::env::var_os(k);
    let Some(system) = system else {
        return reporter;
    };
    let file = |k: &str| {
        var(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    let opts = ci::CiOptions {
        system,
        json: args.json,
        show_logs: !args.quiet,
        verbose: args.verbose,
        state_dir: cli.state_dir(),
        cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
        reports_dir: args.ci_reports.clone(),
        step_summary: file("GITHUB_STEP_SUMMARY"),
        output: file("GITHUB_OUTPUT"),
    };
    Arc::new(ci::CiReporter::new(opts, Some(reporter)))
}

/// Passes events on, remembering the run id for the interruption message.
struct RunIdTap {
    inner: Arc<dyn Reporter>,
    run_id: Arc<Mutex<Option<String>>>,
}

impl Reporter for RunIdTap {
    fn event(&self, event: &Event<'_>) {
        if let Event::RunStarted { run_id, .. } = event {
            if let Ok(mut id) = self.run_id.lock() {
                *id = Some(run_id.to_string());
            }
        }
        self.inner.event(event);
    }
}

/// SIGINT and SIGTERM, once `sluice run` handles them itself.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

#[derive(Clone, Copy)]
enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT (Ctrl-C)",
            Interrupt::Term => "SIGTERM",
        }
    }
}

/// How long an interrupted run may take to stop by itself (cancel its
/// stages, write its record) before it is dropped, while it is being set
/// up; once its stages run, see [`stop_wait_after_signal`].
const SETUP_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long to wait for an interrupted run: its cancelled stages' longest
/// grace period plus the scheduler's backstop (what the run reported once
/// its stages started), and a little for writing the record; at least
/// [`SETUP_STOP_WAIT`]. A second signal ends the wait at once.
fn stop_wait_after_signal(stop_wait_ms: &std::sync::atomic::AtomicU64) -> std::time::Duration {
    let ms = stop_wait_ms.load(std::sync::atomic::Ordering::Relaxed);
    SETUP_STOP_WAIT.max(std::time::Duration::from_millis(ms) + std::time::Duration::from_secs(5))
}

impl Signals {
    /// `None` (default handling: the runner dies) when they cannot be
    /// watched.
    fn watch() -> Option<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some(Signals { int, term }),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot handle SIGINT/SIGTERM; stage processes may outlive an interrupted run");
                    None
                }
            }
        }
        #[cfg(not(unix))]
        None
    }

    async fn next(signals: &mut Option<Signals>) -> Interrupt {
        match signals {
            #[cfg(unix)]
            Some(s) => tokio::select! {
                _ = s.int.recv() => Interrupt::Int,
                _ = s.term.recv() => Interrupt::Term,
            },
            _ => std::future::pending().await,
        }
    }
}

/// SIGTERM to every stage process left, the kill grace, SIGKILL; a signal
/// meanwhile cuts the grace short.
async fn end_stage_processes(signals: &mut Option<Signals>) {
    let stop = tokio::task::spawn_blocking(|| procs::stop_all(procs::kill_grace()));
    tokio::select! {
        _ = stop => {}
        _ = Signals::next(signals) => {
            let _ = tokio::task::spawn_blocking(procs::kill_all_now).await;
        }
    }
}

/// First signal: every stage process gets SIGTERM, the kill grace, then
/// SIGKILL; a second signal kills them at once. Then one line and exit
/// 130 (SIGINT) or 143 (SIGTERM), like a shell reports a signal.
async fn interrupted(
    first: Interrupt,
    mut signals: Option<Signals>,
    run_id: Option<String>,
    stopped_cleanly: bool,
    state_dir: &Path,
) -> ExitCode {
    end_stage_processes(&mut signals).await;
    let (name, status) = match first {
        Interrupt::Int => ("SIGINT", exit::SIGINT),
        Interrupt::Term => ("SIGTERM", exit::SIGTERM),
    };
    let recorded = |id: &str| {
        sluice_record::RunStore::new(state_dir)
            .run_dir(id)
            .join("run.json")
            .exists()
    };
    match run_id {
        Some(id) if stopped_cleanly => eprintln!(
            "sluice: run {id} interrupted by {name}; the stages that were running are recorded as cancelled and their processes were stopped. Resume it with `sluice run --resume {id}`"
        ),
        Some(id) if recorded(&id) => eprintln!(
            "sluice: run {id} interrupted by {name}; its stage processes were stopped. Resume it with `sluice run --resume {id}`"
        ),
        Some(id) => eprintln!(
            "sluice: run {id} interrupted by {name} before it was recorded; there is nothing to resume"
        ),
        None => eprintln!("sluice: interrupted by {name} before the run started"),
    }
    // Not a return: stage tasks may still be unwinding on the runtime,
    // and nothing of theirs is left to wait for.
    std::process::exit(status)
}

/// Writes a command's output to stdout. A closed pipe (`sluice … | head
/// -1`) is not an error: the reader has what it wanted, so the rest is
/// dropped quietly and the command keeps its exit code, as ripgrep does
/// (`print!` would panic, exit 101). Any other write error is reported.
fn print_output(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}

/// A command's output printed (exit 0), or its failure reported.
fn finish<E: Into<CliError>>(result: Result<String, E>) -> ExitCode {
    let failure = match result {
        Ok(text) => match print_output(&text) {
            Ok(()) => return code(exit::PASSED),
            Err(e) => CliError::Output(e),
        },
        Err(e) => e.into(),
    };
    fail(&failure)
}

async fn dispatch(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Run(args) => run_command(&cli, args).await,
        Command::Validate {
            pipeline,
            pull,
            locked,
            registry,
        } => {
            let oci = commands::validate::ValidateOci {
                registry: registry.access(),
                pull: *pull,
                locked: *locked,
            };
            finish(commands::validate::validate_with(pipeline, &cli.cache_dir(), &oci).await)
        }
        Command::Lock { pipeline, registry } => finish(
            commands::lock::lock(pipeline, &cli.cache_dir(), &registry.access())
                .await
                .map_err(CliError::from),
        ),
        Command::Plugin {
            command:
                PluginCommand::Inspect {
                    file,
                    json,
                    policy,
                    key,
                },
        } => {
            // Verify first: nothing of an untrusted file is parsed.
            if policy.is_some() || key.is_some() {
                let verified = commands::trust::plugin_verify(
                    file,
                    commands::trust::VerifyWith {
                        policy: policy.as_deref(),
                        key: key.as_deref(),
                        operator_policy: cli.operator_policy.as_deref(),
                        pipeline: None,
                        stage: None,
                    },
                );
                if let Err(f) = verified {
                    return fail(&f.into());
                }
            }
            finish(commands::inspect::inspect(&cli.cache_dir(), file, *json).await)
        }
        Command::Artifacts { command } => {
            match command {
                ArtifactsCommand::List {
                    run_id,
                    select,
                    json,
                } => finish(commands::artifacts::list(
                    &cli.state_dir(),
                    run_id,
                    select.as_deref(),
                    *json,
                )),
                ArtifactsCommand::Get {
                    run_id,
                    select,
                    output,
                } => finish(commands::artifacts::get(
                    &cli.state_dir(),
                    run_id,
                    select,
                    output.as_deref(),
                )),
                ArtifactsCommand::Export { run_id, select, to } => finish(
                    commands::artifacts::export(&cli.state_dir(), run_id, select.as_deref(), to),
                ),
            }
        }
        Command::Runs { command } => match command {
            RunsCommand::List { json } => finish(commands::runs::list(&cli.state_dir(), *json)),
            RunsCommand::Show { run_id, json } => {
                finish(commands::runs::show(&cli.state_dir(), run_id, *json))
            }
            RunsCommand::Repair { run_id } => {
                finish(commands::runs::repair(&cli.state_dir(), run_id))
            }
        },
        Command::Plugin {
            command:
                PluginCommand::Sign {
                    file,
                    key,
                    registry,
                },
        } => match file
            .to_str()
            .filter(|f| f.starts_with(sluice_types::oci::OCI_SCHEME))
        {
            Some(reference) => finish(commands::oci::sign(reference, key, registry).await),
            None => finish(commands::trust::plugin_sign(file, key)),
        },
        Command::Plugin {
            command:
                PluginCommand::Push {
                    file,
                    reference,
                    sign,
                    registry,
                },
        } => finish(commands::oci::push(file, reference, sign.as_deref(), registry).await),
        Command::Plugin {
            command:
                PluginCommand::Pull {
                    reference,
                    output,
                    registry,
                },
        } => finish(commands::oci::pull(reference, output.as_deref(), registry).await),
        Command::Plugin {
            command:
                PluginCommand::Attest {
                    file,
                    key,
                    predicate_type,
                    predicate,
                },
        } => finish(commands::trust::plugin_attest(
            file,
            key,
            predicate_type,
            predicate,
        )),
        Command::Plugin {
            command:
                PluginCommand::Verify {
                    file,
                    policy,
                    key,
                    pipeline,
                    stage,
                    registry,
                },
        } => {
            let with = commands::trust::VerifyWith {
                policy: policy.as_deref(),
                key: key.as_deref(),
                operator_policy: cli.operator_policy.as_deref(),
                pipeline: pipeline.as_deref(),
                stage: stage.as_deref(),
            };
            match file.to_str().filter(|f| f.starts_with("oci://")) {
                Some(reference) => finish(
                    async {
                        let reference =
                            reference
                                .parse::<sluice_types::OciReference>()
                                .map_err(|e| {
                                    commands::trust::Failure::Invalid(format!("{e}; {}", e.hint()))
                                })?;
                        commands::trust::plugin_verify_oci(
                            &reference,
                            with,
                            &registry.access(),
                            &cli.cache_dir(),
                        )
                        .await
                    }
                    .await,
                ),
                None => finish(commands::trust::plugin_verify(file, with)),
            }
        }
        Command::Key {
            command: KeyCommand::Generate { out, force },
        } => finish(commands::trust::key_generate(out, *force)),
        Command::Policy {
            command: PolicyCommand::Check { policy },
        } => finish(commands::trust::policy_check(
            policy,
            cli.operator_policy.as_deref(),
        )),
        Command::VerifyArtifact {
            file,
            provenance,
            key,
        } => finish(commands::trust::verify_artifact(file, provenance, key)),
        Command::Gc { dry_run } => finish(commands::gc::gc(
            &cli.state_dir(),
            &cli.cache_dir(),
            *dry_run,
        )),
        Command::Report {
            run_id,
            out,
            no_files,
            open,
        } => finish(sluice::html_report::report(
            &sluice::html_report::ReportArgs {
                state_dir: &cli.state_dir(),
                run_id,
                out: out.as_deref(),
                files: !no_files,
                open: *open,
            },
        )),
        Command::Stage {
            command: StageCommand::Test(args),
        } => stage_test_command(&cli, args).await,
        Command::New { command } => finish(commands::new::new(command)),
        Command::Approve { run_id, stage, by } => finish(commands::approve::approve(
            &cli.state_dir(),
            run_id,
            stage,
            by.clone(),
        )),
        Command::Agent { config, listen } => {
            finish(commands::agent::agent(config, listen.as_deref()).await)
        }
        Command::Agents {
            command: AgentsCommand::List { nats, json },
        } => finish(commands::agents::list(nats, *json).await),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return code(if e.use_stderr() {
                exit::INVALID
            } else {
                exit::PASSED
            });
        }
    };
    init_tracing(&cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&CliError::Runtime(e)),
    };
    runtime.block_on(dispatch(cli))
}
