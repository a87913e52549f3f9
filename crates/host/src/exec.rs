//! `sluice:stage/exec`: run a granted host program with a cleared
//! environment, a working directory inside the workspace, a timeout and
//! capped output. Every program runs in the stage's process set
//! ([`super::procs`]): what it leaves behind is stopped when it exits
//! (once no program the stage `spawn`ed still runs), and everything ends
//! with the stage. The checks here are shared with 0.2's `spawn`
//! ([`super::exec_v2`]).
//!
//! Programs are looked up only in absolute `PATH` entries (like sudo and
//! systemd): an empty or relative entry would make the lookup depend on
//! the working directory, which is the workspace a stage may write to.
//! The `PATH` programs get is filtered the same way.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::bindings::wit_exec_v1::{ErrorCode, Host, Output};
use super::logpipe::StageLog;
use super::procs::{ProcHandle, ProcsError, StageProcs};
use super::state::{Denials, DeniedCall, ExecGrant, StageState};

/// Why a program cannot be started, shared by every version of `exec`
/// (each maps it to its own `error-code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not in `grants.exec`.
    Denied(String),
    /// Granted but not on the host PATH.
    NotFound(String),
    /// A bad `cwd`, `env` or argument.
    InvalidArgument(String),
    /// The system (or the ending stage) refused to start it.
    SpawnFailed(String),
}

impl From<Refusal> for ErrorCode {
    fn from(r: Refusal) -> ErrorCode {
        match r {
            Refusal::Denied(m) => ErrorCode::Denied(m),
            Refusal::NotFound(m) => ErrorCode::NotFound(m),
            Refusal::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
            Refusal::SpawnFailed(m) => ErrorCode::SpawnFailed(m),
        }
    }
}

/// The file `program` runs: refused (and recorded as a denial) unless
/// granted; looked up on the PATH once per attempt, which is noted in the
/// log.
pub(crate) fn granted_binary(
    grant: &mut ExecGrant,
    denials: &Denials,
    log: &StageLog,
    program: &str,
) -> Result<PathBuf, Refusal> {
    if !grant.programs.iter().any(|p| p == program) {
        let msg = format!(
            "exec of `{program}` is not allowed: grants.exec is [{}]; add `{program}` to the stage's grants.exec to allow it",
            grant.programs.join(", ")
        );
        denials.push(log, DeniedCall::Exec(program.to_owned()), msg.clone());
        return Err(Refusal::Denied(msg));
    }
    if let Some(binary) = grant.resolved.get(program) {
        return Ok(binary.clone());
    }
    // Once per attempt: later calls run the same file even if PATH
    // directories change meanwhile.
    let binary = find_on_path(program, &grant.env).ok_or_else(|| {
        Refusal::NotFound(format!(
            "`{program}` is granted but was not found in the absolute directories of the host PATH"
        ))
    })?;
    log.note(&format!("exec: `{program}` is {}", binary.display()));
    grant.resolved.insert(program.to_string(), binary.clone());
    Ok(binary)
}

/// The stage's process set, created on first use.
pub(crate) fn process_set(procs: &mut StageProcs) -> Result<ProcHandle, Refusal> {
    procs.handle().map_err(|e| match e {
        ProcsError::Stopping => Refusal::SpawnFailed(e.to_string()),
        ProcsError::Spawn(e) => Refusal::SpawnFailed(e.to_string()),
    })
}

impl Host for StageState {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        cwd: Option<String>,
        timeout_ms: Option<u32>,
    ) -> Result<Output, ErrorCode> {
        let binary = granted_binary(&mut self.exec, &self.denials, &self.log, &program)?;
        let dir = resolve_cwd(&self.exec, cwd.as_deref()).map_err(ErrorCode::InvalidArgument)?;
        let procs = process_set(&mut self.procs)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout = timeout_ms
            .map(|ms| Duration::from_millis(ms.into()).min(left))
            .unwrap_or(left);
        let started = Instant::now();
        let result = spawn_and_wait(
            &binary,
            &args,
            &dir,
            &self.exec,
            &procs,
            timeout,
            &self.cancel,
        )
        .await;
        match &result {
            Ok(out) => self.log.note(&format!(
                "exec {program} {} -> {} in {:.2}s{}",
                args.join(" "),
                if out.timed_out {
                    "killed (timeout)".to_string()
                } else if out.status == -1 && self.cancel.is_cancelled() {
                    "killed (the stage was cancelled)".to_string()
                } else {
                    format!("exit {}", out.status)
                },
                started.elapsed().as_secs_f64(),
                if out.truncated {
                    ", output truncated"
                } else {
                    ""
                }
            )),
            Err(e) => self.log.note(&format!("exec {program} failed: {e:?}")),
        }
        result
    }
}

/// Find `program` in the absolute directories of the `PATH` the program
/// will run with.
pub(crate) fn find_on_path(program: &str, env: &[(String, String)]) -> Option<PathBuf> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    let found = absolute_dirs(OsStr::new(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_absolute() && is_executable(candidate));
    found
}

/// The absolute entries of a `PATH` value; empty and relative entries
/// (`.`, `bin`, `::`) name the current directory or one below it.
fn absolute_dirs(path: &OsStr) -> impl Iterator<Item = PathBuf> + '_ {
    std::env::split_paths(path).filter(|dir| dir.is_absolute())
}

/// `PATH` without its empty and relative entries, for the program itself
/// (a shell script it runs looks commands up in it).
fn absolute_path_only(path: &str) -> String {
    std::env::join_paths(absolute_dirs(OsStr::new(path)))
        .ok()
        .and_then(|p| p.into_string().ok())
        .unwrap_or_default()
}

/// The program's environment: the granted one, with `PATH` filtered.
pub(crate) fn program_env(env: &[(String, String)]) -> impl Iterator<Item = (String, String)> + '_ {
    env.iter().map(|(k, v)| {
        if k == "PATH" {
            (k.clone(), absolute_path_only(v))
        } else {
            (k.clone(), v.clone())
        }
    })
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Map the guest's `cwd` to a host directory inside the workspace.
pub(crate) fn resolve_cwd(grant: &ExecGrant, cwd: Option<&str>) -> Result<PathBuf, String> {
    let Some(root) = &grant.workspace else {
        return match cwd {
            // Made on first use: most stages never run a program.
            None => std::fs::create_dir_all(&grant.scratch)
                .map(|()| grant.scratch.clone())
                .map_err(|e| format!("cannot create {}: {e}", grant.scratch.display())),
            Some(c) => Err(format!(
                "cwd `{c}` needs a workspace, but the stage has no workspace grant"
            )),
        };
    };
    let Some(cwd) = cwd else {
        return Ok(root.clone());
    };
    let rel = cwd
        .strip_prefix("/workspace")
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(cwd);
    let rel_path = Path::new(rel);
    if rel_path.is_absolute()
        || rel_path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!(
            "cwd `{cwd}` is outside the workspace; give a path relative to /workspace without `..`"
        ));
    }
    let joined = root.join(rel_path);
    // Symlinks inside the workspace could still point out of it.
    let real = joined
        .canonicalize()
        .map_err(|e| format!("cwd `{cwd}`: {e}"))?;
    let real_root = root.canonicalize().map_err(|e| format!("workspace: {e}"))?;
    if !real.starts_with(&real_root) || !real.is_dir() {
        return Err(format!(
            "cwd `{cwd}` is not a directory inside the workspace"
        ));
    }
    Ok(real)
}

async fn spawn_and_wait(
    binary: &Path,
    args: &[String],
    dir: &Path,
    grant: &ExecGrant,
    procs: &ProcHandle,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Output, ErrorCode> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(program_env(&grant.env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own process group: a Ctrl-C on the terminal reaches the runner
    // only, which then stops the stage's processes itself.
    #[cfg(unix)]
    cmd.process_group(0);
    let (mut child, running) = procs
        .spawn_program(&mut cmd)
        .await
        .map_err(|e| ErrorCode::SpawnFailed(format!("{}: {e}", binary.display())))?;
    let pid = child.id();
    let cap = grant.output_cap;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let exited = async {
        let status = child.wait().await;
        procs.reaped(pid);
        drop(running);
        // What it left running goes now (unless a program the stage
        // spawned still runs); that also closes the pipes those processes
        // inherited, which the reads below wait for.
        procs.stop_leftovers().await;
        status
    };
    let collect =
        async { tokio::join!(read_capped(stdout, cap), read_capped(stderr, cap), exited) };
    tokio::pin!(collect);
    tokio::select! {
        ((stdout, t1), (stderr, t2), status) = &mut collect => {
            let status = status
                .map_err(|e| ErrorCode::SpawnFailed(e.to_string()))?
                .code()
                .unwrap_or(-1);
            Ok(Output {
                status,
                stdout,
                stderr,
                truncated: t1 || t2,
                timed_out: false,
            })
        }
        () = tokio::time::sleep(timeout) => {
            // Programs the stage `spawn`ed run beside this one: stop this
            // program's process group only, not the whole set.
            if procs.others_running(pid) {
                procs.stop_program(pid, super::procs::kill_grace()).await;
            } else {
                procs.stop_gracefully().await;
            }
            Ok(Output {
                status: -1,
                stdout: Vec::new(),
                stderr: format!("killed after {:.1}s timeout\n", timeout.as_secs_f64())
                    .into_bytes(),
                truncated: false,
                timed_out: true,
            })
        }
        // A stage blocked in this call cannot see its cancellation: end the
        // program so that the stage gets control back within its grace
        // period (programs it `spawn`ed are its own to stop).
        () = cancel.cancelled() => {
            if procs.others_running(pid) {
                procs.stop_program(pid, super::procs::kill_grace()).await;
            } else {
                procs.stop_gracefully().await;
            }
            Ok(Output {
                status: -1,
                stdout: Vec::new(),
                stderr: b"killed: the stage was cancelled\n".to_vec(),
                truncated: false,
                timed_out: false,
            })
        }
    }
}

/// Read a pipe to its end, keeping at most `cap` bytes (draining the rest so
/// the program never blocks on a full pipe).
async fn read_capped<R: AsyncRead + Unpin>(pipe: Option<R>, cap: u64) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = (cap as usize).saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

#[cfg(test)]
mod tests {
    use super::super::logpipe::StageLog;
    use super::super::procs::{tests::serial, StageProcs};
    use super::*;

    fn grant(ws: Option<PathBuf>, scratch: PathBuf) -> ExecGrant {
        ExecGrant {
            programs: vec!["sh".into()],
            workspace: ws,
            scratch,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            output_cap: 16,
            resolved: Default::default(),
        }
    }

    /// `spawn_and_wait` for a stage that is never cancelled.
    async fn run_uncancelled(
        binary: &Path,
        args: &[String],
        dir: &Path,
        grant: &ExecGrant,
        procs: &ProcHandle,
        timeout: Duration,
    ) -> Output {
        let never = tokio_util::sync::CancellationToken::new();
        spawn_and_wait(binary, args, dir, grant, procs, timeout, &never)
            .await
            .expect("runs")
    }

    fn procs() -> StageProcs {
        StageProcs::new(StageLog::discarding().expect("null log"))
    }

    #[test]
    fn cwd_stays_inside_the_workspace() {
        let ws = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(ws.path().join("sub")).expect("mkdir");
        let g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        assert!(resolve_cwd(&g, Some("sub")).is_ok());
        assert!(resolve_cwd(&g, Some("/workspace/sub")).is_ok());
        assert!(resolve_cwd(&g, Some("../")).is_err());
        assert!(resolve_cwd(&g, Some("/etc")).is_err());
        assert!(resolve_cwd(&g, Some("missing")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", ws.path().join("link")).expect("symlink");
            assert!(resolve_cwd(&g, Some("link")).is_err());
        }
    }

    #[tokio::test]
    async fn output_is_capped_and_timeouts_kill() {
        let _serial = serial().await;
        let ws = tempfile::tempdir().expect("tempdir");
        let g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        let mut procs = procs();
        let handle = procs.handle().expect("process set");
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let args = vec![
            "-c".to_string(),
            "echo 0123456789abcdefghij; echo err >&2".into(),
        ];
        let out =
            run_uncancelled(&sh, &args, ws.path(), &g, &handle, Duration::from_secs(10)).await;
        assert_eq!(out.status, 0);
        assert_eq!(out.stdout.len(), 16);
        assert!(out.truncated);
        assert_eq!(out.stderr, b"err\n");
        let args = vec!["-c".to_string(), "sleep 30".into()];
        let started = Instant::now();
        let out = run_uncancelled(
            &sh,
            &args,
            ws.path(),
            &g,
            &handle,
            Duration::from_millis(200),
        )
        .await;
        assert!(out.timed_out);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn environment_is_cleared_and_path_is_absolute_only() {
        let _serial = serial().await;
        let ws = tempfile::tempdir().expect("tempdir");
        let mut g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        g.output_cap = 4096;
        g.env = vec![("PATH".into(), ".::bin:/usr/bin:/bin:".into())];
        let mut procs = procs();
        let handle = procs.handle().expect("process set");
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let args = vec!["-c".to_string(), "env".into()];
        let out =
            run_uncancelled(&sh, &args, ws.path(), &g, &handle, Duration::from_secs(10)).await;
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(env.lines().any(|l| l == "PATH=/usr/bin:/bin"), "{env}");
        assert!(!env.contains("HOME="), "{env}");
    }

    #[test]
    fn lookup_ignores_empty_and_relative_path_entries() {
        let ws = tempfile::tempdir().expect("tempdir");
        let bin = ws.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        for dir in [ws.path(), bin.as_path()] {
            let fake = dir.join("sluice-fake-tool");
            std::fs::write(&fake, "#!/bin/sh\nexit 0\n").expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        // Relative entries are looked up against the runner's cwd; these
        // name the temp dir only through it, so point them there.
        let rel = pathdiff(ws.path());
        let env = |path: String| vec![("PATH".to_string(), path)];
        for path in [
            rel.clone(),
            format!("{rel}/bin"),
            format!(":{rel}::"),
            String::new(),
            ".".to_string(),
        ] {
            assert_eq!(
                find_on_path("sluice-fake-tool", &env(path.clone())),
                None,
                "{path}"
            );
        }
        assert_eq!(
            find_on_path(
                "sluice-fake-tool",
                &env(format!(".:{rel}:{}", bin.display()))
            ),
            Some(bin.join("sluice-fake-tool"))
        );
        assert_eq!(absolute_path_only(".:/usr/bin::bin:/bin:"), "/usr/bin:/bin");
        assert_eq!(absolute_path_only("."), "");
    }

    /// `dir` relative to the current directory (the tests' cwd is the
    /// crate directory, never inside the temp dir).
    fn pathdiff(dir: &Path) -> String {
        let cwd = std::env::current_dir().expect("cwd");
        let up = cwd.components().count().saturating_sub(1);
        let rel: PathBuf = std::iter::repeat_n(Component::ParentDir.as_os_str(), up)
            .map(PathBuf::from)
            .chain(dir.strip_prefix("/").map(Path::to_path_buf))
            .collect();
        rel.display().to_string()
    }

    #[tokio::test]
    async fn background_children_end_with_the_program() {
        let _serial = serial().await;
        let ws = tempfile::tempdir().expect("tempdir");
        let mut g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        g.output_cap = 4096;
        let mut procs = procs();
        let handle = procs.handle().expect("process set");
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let marker = ws.path().join("marker");
        // The background child keeps stdout open: the call still returns
        // once the program exits, because the child is stopped.
        let args = vec![
            "-c".to_string(),
            format!("(sleep 2; touch {}) & echo started", marker.display()),
        ];
        let started = Instant::now();
        let out =
            run_uncancelled(&sh, &args, ws.path(), &g, &handle, Duration::from_secs(20)).await;
        assert_eq!(out.status, 0);
        assert!(!out.timed_out);
        assert_eq!(out.stdout, b"started\n");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "the background child survived");
    }

    /// A stage blocked in `run` cannot see its cancellation: the program is
    /// ended so that the stage gets control back in its grace period.
    #[tokio::test]
    async fn cancelling_the_stage_ends_a_blocking_run() {
        let _serial = serial().await;
        let ws = tempfile::tempdir().expect("tempdir");
        let g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        let mut procs = procs();
        let handle = procs.handle().expect("process set");
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let args = vec!["-c".to_string(), "sleep 30".into()];
        let cancel = tokio_util::sync::CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let started = Instant::now();
        let out = spawn_and_wait(
            &sh,
            &args,
            ws.path(),
            &g,
            &handle,
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .expect("runs");
        assert_eq!(out.status, -1);
        assert!(!out.timed_out);
        assert_eq!(out.stderr, b"killed: the stage was cancelled\n");
        assert!(started.elapsed() < Duration::from_secs(20), "ended early");
    }
}
