//! `sluice:stage/exec`: run a granted host program with a cleared
//! environment, a working directory inside the workspace, a timeout and
//! capped output.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::bindings::wit_exec::{ErrorCode, Host, Output};
use super::state::{ExecGrant, StageState};

impl Host for StageState {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        cwd: Option<String>,
        timeout_ms: Option<u32>,
    ) -> Result<Output, ErrorCode> {
        if !self.exec.programs.contains(&program) {
            let msg = format!(
                "exec of `{program}` is not allowed: grants.exec is [{}]; add `{program}` to the stage's grants.exec to allow it",
                self.exec.programs.join(", ")
            );
            self.denials.push(&self.log, msg.clone());
            return Err(ErrorCode::Denied(msg));
        }
        let binary = find_on_path(&program, &self.exec.env).ok_or_else(|| {
            ErrorCode::NotFound(format!(
                "`{program}` is granted but was not found on the host PATH"
            ))
        })?;
        let dir = resolve_cwd(&self.exec, cwd.as_deref()).map_err(ErrorCode::InvalidArgument)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout = timeout_ms
            .map(|ms| Duration::from_millis(ms.into()).min(left))
            .unwrap_or(left);
        let started = Instant::now();
        let result = spawn_and_wait(&binary, &args, &dir, &self.exec, timeout).await;
        match &result {
            Ok(out) => self.log.note(&format!(
                "exec {program} {} -> {} in {:.2}s{}",
                args.join(" "),
                if out.timed_out {
                    "killed (timeout)".to_string()
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

/// Find `program` in the `PATH` the program will run with.
fn find_on_path(program: &str, env: &[(String, String)]) -> Option<PathBuf> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
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
fn resolve_cwd(grant: &ExecGrant, cwd: Option<&str>) -> Result<PathBuf, String> {
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
    timeout: Duration,
) -> Result<Output, ErrorCode> {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(grant.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| ErrorCode::SpawnFailed(format!("{}: {e}", binary.display())))?;
    let pid = child.id();
    let cap = grant.output_cap;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let collect = async {
        let (out, err) = tokio::join!(read_capped(stdout, cap), read_capped(stderr, cap));
        let status = child.wait().await;
        (out, err, status)
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(((stdout, t1), (stderr, t2), status)) => {
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
        Err(_) => {
            kill_group(pid);
            Ok(Output {
                status: -1,
                stdout: Vec::new(),
                stderr: format!("killed after {:.1}s timeout\n", timeout.as_secs_f64())
                    .into_bytes(),
                truncated: false,
                timed_out: true,
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

/// Kill the program and everything it started (it leads its own process
/// group).
#[cfg(unix)]
#[allow(unsafe_code)]
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; a stale pgid at worst hits no
        // process (ESRCH).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: Option<u32>) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(ws: Option<PathBuf>, scratch: PathBuf) -> ExecGrant {
        ExecGrant {
            programs: vec!["sh".into()],
            workspace: ws,
            scratch,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            output_cap: 16,
        }
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
        let ws = tempfile::tempdir().expect("tempdir");
        let g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let args = vec![
            "-c".to_string(),
            "echo 0123456789abcdefghij; echo err >&2".into(),
        ];
        let out = spawn_and_wait(&sh, &args, ws.path(), &g, Duration::from_secs(10))
            .await
            .expect("runs");
        assert_eq!(out.status, 0);
        assert_eq!(out.stdout.len(), 16);
        assert!(out.truncated);
        assert_eq!(out.stderr, b"err\n");
        let args = vec!["-c".to_string(), "sleep 30".into()];
        let started = Instant::now();
        let out = spawn_and_wait(&sh, &args, ws.path(), &g, Duration::from_millis(200))
            .await
            .expect("runs");
        assert!(out.timed_out);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn environment_is_cleared() {
        let ws = tempfile::tempdir().expect("tempdir");
        let mut g = grant(Some(ws.path().to_path_buf()), ws.path().to_path_buf());
        g.output_cap = 4096;
        let sh = find_on_path("sh", &g.env).expect("sh on PATH");
        let args = vec!["-c".to_string(), "env".into()];
        let out = spawn_and_wait(&sh, &args, ws.path(), &g, Duration::from_secs(10))
            .await
            .expect("runs");
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(env.contains("PATH=/usr/bin:/bin"));
        assert!(!env.contains("HOME="), "{env}");
    }
}
