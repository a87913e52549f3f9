//! Running the test command through the host's `exec` (granted programs
//! only), and quoting the end of its output when it fails.

use std::time::Duration;

use sluice_sdk::exec::{Command, ExecError, ExecOutput};
use sluice_sdk::StageError;

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
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                {
                    format!("{a:?}")
                } else {
                    a.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command and echoes its output into the stage log.
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
        let out = cmd.run().map_err(|e| self.exec_error(e))?;
        echo(&out);
        Ok(out)
    }

    fn exec_error(&self, e: ExecError) -> StageError {
        let p = &self.program;
        match e {
            ExecError::Denied(_) => StageError::denied(format!(
                "the test command runs `{p}`, which the stage may not run: add `{p}` to the \
                 stage's grants.exec (grants: {{ exec: [{p}] }})"
            )),
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

/// Copies the program's output into the stage log, so a person can read
/// the test runner's own report there.
fn echo(out: &ExecOutput) {
    if !out.stdout.is_empty() {
        println!("{}", out.stdout_str().trim_end());
    }
    if !out.stderr.is_empty() {
        eprintln!("{}", out.stderr_str().trim_end());
    }
    if out.truncated {
        sluice_sdk::warn("the command's output was cut at the stage's output cap (grants.output)");
    }
}

/// The last `max_lines` non-empty lines of stderr (or of stdout when stderr
/// is empty: many runners report errors there), at most ~2000 characters.
pub fn tail(out: &ExecOutput, max_lines: usize) -> String {
    let stderr = out.stderr_str();
    let stdout = out.stdout_str();
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(max_lines);
    let mut tail = lines[start..].join("\n");
    const MAX: usize = 2000;
    if tail.len() > MAX {
        let mut cut = tail.len() - MAX;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    tail
}

/// How the command ended, for messages: `exited 2` or `was killed after its timeout`.
pub fn status(out: &ExecOutput) -> String {
    if out.timed_out {
        "was killed after its timeout".to_string()
    } else if out.status < 0 {
        "was killed by a signal".to_string()
    } else {
        format!("exited {}", out.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            status: 1,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            timed_out: false,
        }
    }

    #[test]
    fn tail_prefers_stderr_and_keeps_the_end() {
        let o = out("ignored", "a\n\nb\nc\nd\n");
        assert_eq!(tail(&o, 2), "c\nd");
        assert_eq!(tail(&out("only stdout\n", "  \n"), 5), "only stdout");
        let long = "é".repeat(3000);
        let t = tail(&out("", &long), 5);
        assert!(t.starts_with('…') && t.len() <= 2010, "{}", t.len());
    }

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

    #[test]
    fn status_words() {
        let mut o = out("", "");
        assert_eq!(status(&o), "exited 1");
        o.timed_out = true;
        assert_eq!(status(&o), "was killed after its timeout");
    }
}
