//! Running the test command through the host's `exec` (granted programs
//! only), and quoting the end of its output when it fails.

use std::time::Duration;

use sluice_sdk::exec::{Command, ExecError, ExecOutput};
use sluice_sdk::{Capability, StageError};

/// A validated `with.command` (+ `with.cwd`, `with.timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Bare program name, looked up in `grants.exec`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory relative to the workspace root.
    pub cwd: Option<String>,
    /// Kill it after this long (the host caps it at the stage's time left).
    pub timeout: Option<Duration>,
}

impl CommandSpec {
    /// The command line as a person would type it (for logs and messages).
    pub fn display(&self) -> String {
        sluice_sdk::exec::command_line(&self.program, &self.args)
    }

    /// Runs the command, its output streaming into the stage log as it
    /// arrives (a long test run is not silent) and kept to quote when it
    /// fails.
    ///
    /// A command that ran is `Ok` whatever its exit status. Not granted →
    /// [`StageError::Denied`] naming `grants.exec`; a bad `cwd` →
    /// [`StageError::InvalidConfig`] naming `with.cwd`; not installed or not
    /// startable → [`StageError::Failed`].
    pub fn run(&self) -> Result<ExecOutput, StageError> {
        let mut cmd = Command::new(&self.program).args(self.args.iter().cloned());
        if let Some(cwd) = &self.cwd {
            cmd = cmd.cwd(cwd);
        }
        if let Some(t) = self.timeout {
            cmd = cmd.timeout(t);
        }
        cmd.tee_output()
            .map(sluice_sdk::exec::Output::into_exec_output)
            .map_err(|e| self.exec_error(e))
    }

    fn exec_error(&self, e: ExecError) -> StageError {
        let p = &self.program;
        match e {
            ExecError::Denied(_) => {
                sluice_sdk::error!("the test command runs `{p}`, which the stage may not run");
                StageError::denied(Capability::exec(p.as_str()))
            }
            ExecError::NotFound(m) => StageError::failed(format!(
                "the test command runs `{p}`, which is not installed on this machine: {m}"
            )),
            ExecError::InvalidArgument(m) => StageError::invalid_config(format!(
                "with.cwd: {m}; give a directory relative to the workspace root"
            )),
            ExecError::SpawnFailed(m) => {
                StageError::failed(format!("could not start `{}`: {m}", self.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_needs_it() {
        let c = CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "cp a b".into(), String::new()],
            cwd: None,
            timeout: None,
        };
        assert_eq!(c.display(), r#"sh -c "cp a b" """#);
    }
}
