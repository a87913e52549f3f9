//! Running the build commands in order through the host's `exec`, stopping
//! at the first one that fails and quoting the end of its output.

use std::time::{Duration, Instant};

use serde::Serialize;
use sluice_sdk::exec::{Command, ExecError, ExecOutput};
use sluice_sdk::{Capability, StageError};

/// How many lines of a failed command's output the error quotes.
const TAIL_LINES: usize = 20;

/// One validated build command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    /// Bare program name, looked up in `grants.exec`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl BuildCommand {
    /// The command line as a person would type it.
    pub fn display(&self) -> String {
        sluice_sdk::exec::command_line(&self.program, &self.args)
    }
}

/// What one command did, as recorded in `build.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandRecord {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Exit status.
    pub status: i32,
    /// Wall time in seconds.
    pub duration_s: f64,
}

/// Where and how long the commands may run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Working directory relative to the workspace.
    pub cwd: Option<String>,
    /// Timeout per command.
    pub timeout: Option<Duration>,
}

/// Runs `commands` in order; the first that does not succeed fails the
/// stage with the end of its stderr (or stdout).
pub fn run_all(
    commands: &[BuildCommand],
    opts: &RunOptions,
) -> Result<Vec<CommandRecord>, StageError> {
    let mut records = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        let mut exec = Command::new(&cmd.program).args(cmd.args.iter().cloned());
        if let Some(cwd) = &opts.cwd {
            exec = exec.cwd(cwd);
        }
        if let Some(t) = opts.timeout {
            exec = exec.timeout(t);
        }
        let started = Instant::now();
        // Streamed into the log as it runs (a long build is not silent),
        // and kept to quote when the command fails.
        let out = exec
            .tee_output()
            .map(sluice_sdk::exec::Output::into_exec_output)
            .map_err(|e| exec_error(i, cmd, e))?;
        if !out.success() {
            return Err(failure(i, commands.len(), cmd, &out));
        }
        records.push(CommandRecord {
            argv: std::iter::once(cmd.program.clone())
                .chain(cmd.args.iter().cloned())
                .collect(),
            status: out.status,
            duration_s: started.elapsed().as_secs_f64(),
        });
    }
    Ok(records)
}

fn exec_error(i: usize, cmd: &BuildCommand, e: ExecError) -> StageError {
    let p = &cmd.program;
    match e {
        ExecError::Denied(_) => {
            sluice_sdk::error!(
                "build command {} runs `{p}`, which the stage may not run",
                i + 1
            );
            StageError::denied(Capability::exec(p.as_str()))
        }
        ExecError::NotFound(m) => StageError::failed(format!(
            "build command {} runs `{p}`, which is not installed on this machine: {m}",
            i + 1
        )),
        ExecError::InvalidArgument(m) => StageError::invalid_config(format!(
            "with.cwd: {m}; give a directory relative to the workspace root"
        )),
        ExecError::SpawnFailed(m) => {
            StageError::failed(format!("could not start `{}`: {m}", cmd.display()))
        }
    }
}

fn failure(i: usize, total: usize, cmd: &BuildCommand, out: &ExecOutput) -> StageError {
    let how = out.outcome();
    let tail = out.tail(TAIL_LINES);
    let quoted = if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{tail}")
    };
    StageError::failed(format!(
        "build command {} of {total} `{}` {how}{quoted}",
        i + 1,
        cmd.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stderr: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: b"building...\n".to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            timed_out: false,
        }
    }

    #[test]
    fn failure_names_the_command_and_quotes_stderr() {
        let cmd = BuildCommand {
            program: "python3".into(),
            args: vec!["-m".into(), "zipapp".into(), "src dir".into()],
        };
        let e = failure(
            1,
            3,
            &cmd,
            &out(1, "Traceback...\nFileNotFoundError: dist\n"),
        );
        assert_eq!(
            e,
            StageError::failed(
                "build command 2 of 3 `python3 -m zipapp \"src dir\"` exited 1:\nTraceback...\nFileNotFoundError: dist"
            )
        );
        let mut o = out(-1, "");
        o.timed_out = true;
        let e = failure(0, 1, &cmd, &o);
        assert!(
            e.message()
                .contains("was killed after its timeout:\nbuilding..."),
            "{e}"
        );
    }
}
