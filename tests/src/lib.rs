//! Helpers for the end-to-end tests: build the runner and the plugins once
//! per test process, give each test its own working directory, run the real
//! `sluice` binary there, and read what a user would see.

pub mod agent;
pub mod expect;
pub mod nats;
pub mod registry;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A loopback port that nothing listens on, for a server a test starts
/// (nginx, Prometheus, the example environment) that binds it a moment
/// later. Taken from below Linux's ephemeral range (32768–60999): a port
/// the kernel picked with `bind(0)` and released goes back to the pool the
/// kernel also gives the *client* side of outgoing connections, and with
/// thousands of requests in flight across the suite one of them could take
/// it before the server binds it. Every port is handed out once per
/// process, starting at an offset from the process id so that concurrent
/// test processes rarely probe the same ones.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < SPAN,
            "no free loopback port left in {LOW}..{}",
            LOW + SPAN
        );
        let port = u16::try_from(LOW + (start + n) % SPAN).expect("below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `GET path` on a loopback port with `Connection: close`: (status,
/// body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Some((status, body.to_string()))
}

/// A python3 script run with `python3 -c script args..` that binds a
/// loopback port and prints it as its first line (`8123` or `PORT 8123`);
/// killed on drop.
pub struct PyServer {
    child: std::process::Child,
    pub port: u16,
}

impl PyServer {
    pub fn start(script: &str, args: &[&str]) -> PyServer {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the e2e tests need python3 for their fixture HTTP servers and could not \
                     start it ({e}); install python3 (apt-get install python3)"
                )
            });
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out)
                .read_line(&mut line)
                .expect("read port");
        }
        let port = line.trim().trim_start_matches("PORT ").parse();
        let Ok(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the fixture server did not print its port: {line:?}")
        };
        PyServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prometheus` on PATH, or a loud failure naming the setup script.
pub fn require_prometheus() {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "prometheus is not installed: this test runs a real Prometheus. Install it with \
         `bash scripts/setup-delivery-services.sh` (apt-get install prometheus nginx)"
    );
}

/// A real Prometheus in `dir` on a free loopback port, reading `config`
/// (relative to `dir`), keeping its data in `<dir>/<data>` and writing its
/// output to `<dir>/<data>.log`; ready (`/-/ready`) when returned, killed
/// on drop.
pub struct Prometheus {
    child: std::process::Child,
    pub port: u16,
    log: PathBuf,
}

impl Prometheus {
    pub fn start(dir: &Path, config: &str, data: &str) -> Prometheus {
        require_prometheus();
        let port = free_port();
        let log = dir.join(format!("{data}.log"));
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent).expect("mkdir for the prometheus log");
        }
        let file = std::fs::File::create(&log).expect("create the prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={config}"))
            .arg(format!("--storage.tsdb.path={data}"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir)
            .stdout(file.try_clone().expect("prometheus log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start prometheus: {e}"));
        let mut prom = Prometheus { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/-/ready").map(|(s, _)| s) != Some(200) {
            prom.assert_running();
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prom
    }

    /// Panics with Prometheus' output when it already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let out = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("prometheus exited early ({status}):\n{out}");
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus' answer to the instant `query` on `port`: the JSON document
/// of a 200, or None.
pub fn prom_query(port: u16, query: &str) -> Option<serde_json::Value> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={encoded}"))?;
    if status != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// The first sample's value of the instant `query`, if any.
pub fn prom_value(port: u16, query: &str) -> Option<f64> {
    prom_query(port, query)?["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// Waits (up to 20 s) until Prometheus on `port` answers the instant
/// `query` with at least one sample.
pub fn wait_for_query(port: u16, query: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        last = prom_query(port, query);
        let has_data = last.as_ref().is_some_and(|v| {
            v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        });
        if has_data {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus on {port} has no data for `{query}` after 20 s: {last:?}");
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn build_once() -> &'static Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        // For quick local iterations on tests when everything is built.
        if std::env::var_os("SLUICE_TESTS_SKIP_BUILD").is_some() {
            return Ok(());
        }
        let root = repo_root();
        let steps: [(&str, Vec<&str>); 2] = [
            ("cargo", vec!["build", "-p", "sluice", "--bin", "sluice"]),
            ("bash", vec!["scripts/build-plugins.sh"]),
        ];
        for (program, args) in steps {
            let out = Command::new(program)
                .args(&args)
                .current_dir(&root)
                .output()
                .map_err(|e| format!("{program}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{program} {} failed:\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    })
}

/// Build everything (once) and panic with the build output if it fails.
pub fn ensure_built() {
    if let Err(e) = build_once() {
        panic!("building sluice and its plugins failed: {e}");
    }
}

/// The `sluice` binary: `target/debug/sluice`, or `$SLUICE_TESTS_BIN` when
/// set (to run the suite against another build of the runner, e.g. an
/// older one, to see which tests it fails).
pub fn sluice_bin() -> PathBuf {
    ensure_built();
    match std::env::var_os("SLUICE_TESTS_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => repo_root().join("target/debug/sluice"),
    }
}

/// A built plugin from `dist/plugins/<name>.wasm`.
pub fn plugin(name: &str) -> PathBuf {
    ensure_built();
    repo_root()
        .join("dist/plugins")
        .join(format!("{name}.wasm"))
}

/// Compile cache shared by all tests (entries are keyed by digest and
/// written atomically, so sharing is safe and saves compiling per test).
pub fn shared_cache() -> PathBuf {
    repo_root().join("target/sluice-test-cache")
}

/// What one `sluice` invocation did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The signal that killed the runner, if one did.
    pub signal: Option<i32>,
    /// The runner's peak resident memory (KiB) as last seen, for runs
    /// started with [`Project::sluice_timeout`].
    pub peak_rss_kib: Option<u64>,
    raw_stdout: Vec<u8>,
    raw_stderr: Vec<u8>,
}

impl Run {
    fn from(out: Output) -> Run {
        Run::from_parts(out.status, out.stdout, out.stderr)
    }

    fn from_parts(status: std::process::ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: status.code().unwrap_or(-1),
            signal: status.signal(),
            peak_rss_kib: None,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            raw_stdout: stdout,
            raw_stderr: stderr,
        }
    }

    /// Standard output, byte for byte.
    pub fn raw_stdout(&self) -> &[u8] {
        &self.raw_stdout
    }

    /// Standard error, byte for byte.
    pub fn raw_stderr(&self) -> &[u8] {
        &self.raw_stderr
    }

    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The JSON events printed with `--json`.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The run id from the output.
    pub fn run_id(&self) -> String {
        for e in self.events() {
            if let Some(id) = e.get("run_id").and_then(|v| v.as_str()) {
                return id.to_string();
            }
        }
        for line in self.stdout.lines() {
            let mut words = line.split_whitespace();
            if let (Some(a), Some(b), Some(id)) = (words.next(), words.next(), words.next()) {
                if a == "sluice" && (b == "run" || b == "resume") {
                    return id.to_string();
                }
            }
        }
        panic!("no run id in output:\n{}", self.all());
    }
}

/// A working directory with a pipeline, for one test.
///
/// Its temporary directory holds `project/` (the working directory of every
/// command, the default workspace, where [`write`](Self::write) and
/// [`read`](Self::read) work) and `state/` (the runner's state directory,
/// `SLUICE_STATE_DIR`: run records, the CAS, logs), so the state is never
/// inside the workspace. Files a test wants *outside* both go beside them
/// ([`write_outside`](Self::write_outside)).
pub struct Project {
    dir: tempfile::TempDir,
    project: PathBuf,
    state: PathBuf,
    allow_unsigned: bool,
}

impl Project {
    /// An empty project.
    pub fn new() -> Project {
        ensure_built();
        let dir = tempfile::Builder::new()
            .prefix("sluice-e2e-")
            .tempdir()
            .expect("create a temp dir");
        let project = dir.path().join("project");
        let state = dir.path().join("state");
        std::fs::create_dir(&project).expect("mkdir project");
        std::fs::create_dir(&state).expect("mkdir state");
        Project {
            dir,
            project,
            state,
            allow_unsigned: true,
        }
    }

    /// A project whose runs do not get `SLUICE_ALLOW_UNSIGNED=1` (the
    /// default for tests that are not about trust), so plugins must pass a
    /// trust policy.
    pub fn trusted_only() -> Project {
        let mut p = Project::new();
        p.allow_unsigned = false;
        p
    }

    /// The project directory (`<tmp>/project`): the working directory of
    /// every command.
    pub fn path(&self) -> &Path {
        &self.project
    }

    /// The runner's state directory (`<tmp>/state`, outside the project).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The temporary directory holding `project/` and `state/`.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Write `bytes` to `<tmp>/<rel>`, beside `project/` and `state/`:
    /// outside the workspace and the state directory (a canary a stage must
    /// never reach). Returns its absolute path.
    pub fn write_outside(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(rel);
        assert!(
            !path.starts_with(&self.project) && !path.starts_with(&self.state),
            "{rel} is not outside the project and the state"
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    /// Write a file (creating directories). `{fixture}`, `{hello}` and
    /// `{hostile}` in the text become the plugin paths.
    pub fn write(&self, rel: &str, text: &str) -> &Project {
        let path = self.project.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let text = text
            .replace("{fixture}", &plugin("fixture").display().to_string())
            .replace("{hello}", &plugin("hello").display().to_string())
            .replace("{hostile}", &plugin("hostile").display().to_string());
        std::fs::write(&path, text).expect("write file");
        self
    }

    /// Read a file of the project.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.project.join(rel))
            .unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Read a file under the state directory (`runs/<id>/run.json`,
    /// `cas/sha256/<2 hex>/<62 hex>`, ...).
    pub fn state(&self, rel: &str) -> String {
        std::fs::read_to_string(self.state.join(rel))
            .unwrap_or_else(|e| panic!("read state {rel}: {e}"))
    }

    /// A command for `sluice args...` in this project.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(args);
        self.configure(&mut cmd);
        cmd
    }

    /// The working directory and environment of every `sluice` command.
    fn configure(&self, cmd: &mut Command) {
        cmd.current_dir(&self.project)
            .env("SLUICE_CACHE_DIR", shared_cache())
            .env("NO_COLOR", "1")
            .env("SLUICE_STATE_DIR", &self.state)
            .env_remove("SLUICE_LOG")
            .env_remove("SLUICE_ALLOW_UNSIGNED")
            .env_remove("SLUICE_PROVENANCE_KEY")
            .env_remove("SLUICE_KEY_PASSWORD")
            // The machine's own operator policy and runner settings must not
            // change what a test sees; tests that need them set them.
            .env_remove("SLUICE_POLICY")
            .env(
                "SLUICE_OPERATOR_POLICY_DIR",
                self.root().join("no-operator-policy"),
            )
            .env_remove("SLUICE_BUILDER_ID")
            .env_remove("SLUICE_REQUIRE_CLEAN")
            .env_remove("SLUICE_KILL_GRACE")
            .env_remove("SLUICE_CONTAINMENT")
            // A runner's fleet setting would send every test's stages to
            // agents; the fleet tests pass `--executor` themselves.
            .env_remove("SLUICE_EXECUTOR")
            // Tests run inside CI systems too; their output must not turn
            // into that system's (docs/ci.md) unless a test asks for it.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("SLUICE_CI")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT");
        if self.allow_unsigned {
            cmd.env("SLUICE_ALLOW_UNSIGNED", "1");
        }
    }

    /// Run `sluice args...` and wait.
    pub fn sluice(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run sluice"))
    }

    /// Run `sluice args...` with extra environment variables.
    pub fn sluice_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run sluice"))
    }

    /// Run `sluice args...` with extra environment variables, but kill it
    /// and panic with what it printed if it has not exited after `limit`:
    /// a test of a hang must fail, never hang the suite. The runner also
    /// gets a data-segment limit of [`DATA_LIMIT_KIB`] (`ulimit -d`), so an
    /// unbounded allocation on the host (reading `/dev/zero`, say) ends the
    /// runner instead of exhausting the test machine.
    pub fn sluice_timeout(&self, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
        self.sluice_limited(args, env, limit, &[])
    }

    /// [`sluice_timeout`](Self::sluice_timeout) with more resource limits,
    /// as `ulimit` options (`"-n 4096"`: at most 4096 open files), set by a
    /// shell that then `exec`s the runner.
    pub fn sluice_limited(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
        ulimits: &[&str],
    ) -> Run {
        let mut script = format!("ulimit -d {DATA_LIMIT_KIB} && ");
        for u in ulimits {
            script.push_str(&format!("ulimit {u} && "));
        }
        script.push_str("exec \"$0\" \"$@\"");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg(sluice_bin()).args(args);
        self.configure(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        let stdout = Collector::start(child.stdout.take());
        let stderr = Collector::start(child.stderr.take());
        let start = Instant::now();
        let mut peak_rss_kib = None;
        let status = loop {
            if let Some(kib) = peak_rss(child.id()) {
                peak_rss_kib = peak_rss_kib.max(Some(kib));
            }
            if let Some(status) = child.try_wait().expect("wait for sluice") {
                break Some(status);
            }
            if start.elapsed() >= limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&stdout.finish(Duration::from_secs(5))).into_owned();
            let err = String::from_utf8_lossy(&stderr.finish(Duration::from_secs(5))).into_owned();
            panic!(
                "sluice {} did not exit within {limit:?}; killed it.\n--- stdout (last 20000 bytes)\n{}\n--- stderr (last 20000 bytes)\n{}",
                args.join(" "),
                tail(&out, 20_000),
                tail(&err, 20_000)
            );
        };
        // A program the runner started may still hold the pipes: wait for
        // the end of the output a little, then take what came.
        let out = stdout.finish(Duration::from_secs(10));
        let err = stderr.finish(Duration::from_secs(10));
        let mut run = Run::from_parts(status, out, err);
        run.peak_rss_kib = peak_rss_kib;
        run
    }

    /// Fails the test, naming the channel, if `needle` appears in `run`'s
    /// stdout or stderr, or in any regular file under the state directory
    /// (`run.json`, `journal.jsonl`, `logs/*`, every CAS blob, ...).
    /// Symbolic links and special files are not followed or read.
    pub fn assert_nothing_contains(&self, run: &Run, needle: &[u8]) {
        assert!(!needle.is_empty(), "assert_nothing_contains: empty needle");
        for (channel, bytes) in [("stdout", run.raw_stdout()), ("stderr", run.raw_stderr())] {
            if let Some(at) = find(bytes, needle) {
                panic!(
                    "{:?} leaked into the runner's {channel} at byte {at}: {}\n{}",
                    String::from_utf8_lossy(needle),
                    around(bytes, at, needle.len()),
                    tail(&run.all(), 20_000)
                );
            }
        }
        let mut files = Vec::new();
        regular_files(&self.state, &mut files);
        for file in files {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            if let Some(at) = find(&bytes, needle) {
                let rel = file.strip_prefix(&self.state).unwrap_or(&file);
                panic!(
                    "{:?} leaked into the state file {} at byte {at}: {}",
                    String::from_utf8_lossy(needle),
                    rel.display(),
                    around(&bytes, at, needle.len())
                );
            }
        }
    }

    /// The run record of `run_id` as JSON.
    /// The run record as the runner would load it: the `run.json` snapshot
    /// plus the newer entries of the run's journal (`journal.jsonl`, one
    /// JSON line per stage change; a torn last line is ignored).
    pub fn record(&self, run_id: &str) -> serde_json::Value {
        let text = self.state(&format!("runs/{run_id}/run.json"));
        let mut record: serde_json::Value = serde_json::from_str(&text).expect("run.json is JSON");
        let journal = self.state.join(format!("runs/{run_id}/journal.jsonl"));
        let seen = record["journal_seq"].as_u64().unwrap_or(0);
        for line in std::fs::read_to_string(journal).unwrap_or_default().lines() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                break;
            };
            if entry["seq"].as_u64().unwrap_or(0) <= seen {
                continue;
            }
            if let Some(stage) = entry["stage"].as_str() {
                record["stages"][stage] = entry["record"].clone();
            }
        }
        record
    }

    /// The text of artifact `name` of `stage` (a stage of a run record),
    /// read from the content-addressed store.
    pub fn artifact(&self, stage: &serde_json::Value, name: &str) -> String {
        let digest = stage["artifacts"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == name))
            .and_then(|a| a["digest"].as_str())
            .unwrap_or_else(|| panic!("no artifact {name} in {stage:#}"));
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.state(&format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
    }

    /// Stage `stage` of `record` (the record of run `run_id`), asserting
    /// that it ended `state`; the stage and its log are in the message
    /// when it did not.
    pub fn assert_stage<'a>(
        &self,
        record: &'a serde_json::Value,
        run_id: &str,
        stage: &str,
        state: &str,
    ) -> &'a serde_json::Value {
        let s = &record["stages"][stage];
        assert_eq!(s["state"], state, "{s:#}\n{}", self.log(run_id, stage));
        s
    }

    /// A stage's log of `run_id`.
    pub fn log(&self, run_id: &str, stage: &str) -> String {
        self.state(&format!("runs/{run_id}/logs/{stage}.log"))
    }
}

/// The data-segment limit (`ulimit -d`, KiB) of runners started with
/// [`Project::sluice_timeout`]: 4 GiB, above anything a stage may be
/// granted, far below what would exhaust the test machine.
pub const DATA_LIMIT_KIB: u64 = 4 << 20;

/// Reads a pipe to its end on a thread, keeping what came so far.
struct Collector {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Collector {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = std::sync::mpsc::channel();
        let sink = Arc::clone(&bytes);
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sink
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&buf[..n]),
                    }
                }
            }
            let _ = tx.send(());
        });
        Collector { bytes, done }
    }

    /// What was read, after waiting up to `grace` for the end of the pipe.
    fn finish(self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// `VmHWM` (peak resident set, KiB) of a running process.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    let first = needle[0];
    (0..=hay.len() - needle.len()).find(|&i| hay[i] == first && &hay[i..i + needle.len()] == needle)
}

/// Up to 80 bytes either side of a hit, quoted.
fn around(bytes: &[u8], at: usize, len: usize) -> String {
    let from = at.saturating_sub(80);
    let to = (at + len + 80).min(bytes.len());
    format!("{:?}", String::from_utf8_lossy(&bytes[from..to]))
}

/// The last `max` bytes of `text` (at a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut from = text.len().saturating_sub(max);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// Every regular file under `dir`, recursively, without following links.
fn regular_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            regular_files(&path, out);
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

/// The value of metric `name` in a stage's record (`p.record(id)["stages"][stage]`);
/// panics with the record when the stage did not report it.
pub fn metric(stage: &serde_json::Value, name: &str) -> f64 {
    stage["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("metric {name} missing in {stage:#}"))
}

/// Gate `name` in a stage's record; panics with the record when absent.
pub fn gate<'a>(stage: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stage["gates"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == name))
        .unwrap_or_else(|| panic!("gate {name} missing in {stage:#}"))
}

/// The sigstore-js interop scripts (`tests/interop/sigstore-js`), with their
/// npm packages installed (`npm ci` once if missing; `scripts/setup.sh`
/// normally did it). Panics loudly if npm is missing.
pub fn sigstore_js() -> PathBuf {
    let dir = repo_root().join("tests/interop/sigstore-js");
    if !dir.join("node_modules/@sigstore/mock").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed for the sigstore-js interop tests");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    dir
}

/// Runs `node ARGS…` in `dir`; returns the exit code (-1 for a signal) and
/// stdout followed by stderr.
pub fn node<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S]) -> (i32, String) {
    let out = Command::new("node")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Copies the directory `from` into `to`, recursively (test fixture trees
/// into a project).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// A `scan.json` vulnerability finding as (package, version, advisory id,
/// severity, file, line), the shape the scan tests compare.
pub fn vuln_row(f: &serde_json::Value) -> (&str, &str, &str, &str, &str, u64) {
    (
        f["package"].as_str().unwrap_or_default(),
        f["version"].as_str().unwrap_or_default(),
        f["id"].as_str().unwrap_or_default(),
        f["severity"].as_str().unwrap_or_default(),
        f["file"].as_str().unwrap_or_default(),
        f["line"].as_u64().unwrap_or_default(),
    )
}
