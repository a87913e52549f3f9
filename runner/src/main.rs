//! The `sluice` binary: parse arguments, dispatch, print errors with their
//! causes, and pick the exit code.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use sluice::cli::{Cli, Command, KeyCommand, PluginCommand, PolicyCommand, RunArgs, RunsCommand};
use sluice::commands::trust::Failure;
use sluice::record::RunStatus;
use sluice::report::{console::Console, json::JsonLines, Reporter};
use sluice::{commands, exit, run};

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(1))
}

async fn run_command(cli: &Cli, args: &RunArgs) -> ExitCode {
    let reporter: Arc<dyn Reporter> = if args.json {
        Arc::new(JsonLines::stdout())
    } else {
        Arc::new(Console::stdout(!args.quiet))
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let opts = run::RunOptions {
        pipeline: args.pipeline.clone(),
        state_dir: cli.state_dir.clone(),
        cache_dir: cli.cache_dir(),
        jobs,
        fail_fast: !args.keep_going,
        resume: args.resume.clone(),
        policy: args.policy.clone(),
        allow_unsigned: args.allow_unsigned,
        provenance_key: args.provenance_key.clone(),
    };
    match run::run(&opts, reporter).await {
        Ok(record) => code(match record.status {
            RunStatus::Passed => exit::PASSED,
            RunStatus::Paused => exit::PAUSED,
            RunStatus::Failed | RunStatus::Running => exit::FAILED,
        }),
        Err(e) => {
            // Pipeline errors carry their own rustc-style rendering.
            match e {
                run::RunError::Pipeline(_) | run::RunError::Policy(_) => eprintln!("{e}"),
                _ => eprintln!("error: {e}"),
            }
            code(e.exit_code())
        }
    }
}

fn emit(result: anyhow::Result<String>, err_code: i32) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            code(exit::PASSED)
        }
        Err(e) => {
            print_error(&e);
            code(err_code)
        }
    }
}

fn finish(result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            code(exit::PASSED)
        }
        Err(f) => {
            // Policy errors render themselves (with `error:` and a snippet).
            if f.message.starts_with("error:") || f.message.starts_with("plugin ") {
                eprint!("{}", f.message);
                if !f.message.ends_with('\n') {
                    eprintln!();
                }
            } else {
                eprintln!("error: {}", f.message);
            }
            code(f.code)
        }
    }
}

async fn dispatch(cli: Cli) -> ExitCode {
    match &cli.command {
        Command::Run(args) => run_command(&cli, args).await,
        Command::Validate { pipeline } => match commands::validate::validate(pipeline) {
            Ok(text) => {
                print!("{text}");
                code(exit::PASSED)
            }
            Err(e) => {
                eprintln!("{e}");
                code(exit::INVALID)
            }
        },
        Command::Plugin {
            command: PluginCommand::Inspect { file, json },
        } => emit(
            commands::inspect::inspect(&cli.cache_dir(), file, *json).await,
            exit::INVALID,
        ),
        Command::Runs { command } => match command {
            RunsCommand::List { json } => emit(
                commands::runs::list(&cli.state_dir, *json).map_err(Into::into),
                exit::INVALID,
            ),
            RunsCommand::Show { run_id, json } => emit(
                commands::runs::show(&cli.state_dir, run_id, *json).map_err(Into::into),
                exit::INVALID,
            ),
        },
        Command::Plugin {
            command: PluginCommand::Sign { file, key },
        } => finish(commands::trust::plugin_sign(file, key)),
        Command::Plugin {
            command: PluginCommand::Verify { file, policy, key },
        } => finish(commands::trust::plugin_verify(
            file,
            policy.as_deref(),
            key.as_deref(),
        )),
        Command::Key {
            command: KeyCommand::Generate { out, force },
        } => finish(commands::trust::key_generate(out, *force)),
        Command::Policy {
            command: PolicyCommand::Check { policy },
        } => finish(commands::trust::policy_check(policy)),
        Command::VerifyArtifact {
            file,
            provenance,
            key,
        } => finish(commands::trust::verify_artifact(file, provenance, key)),
        Command::Approve { run_id, stage, by } => emit(
            commands::approve::approve(&cli.state_dir, run_id, stage, by.clone()),
            exit::INVALID,
        ),
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
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return code(exit::FAILED);
        }
    };
    runtime.block_on(dispatch(cli))
}
