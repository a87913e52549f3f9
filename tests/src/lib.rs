//! Helpers for the end-to-end tests: build the runner and the plugins once
//! per test process, give each test its own working directory, run the real
//! `sluice` binary there, and read what a user would see.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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

/// The `sluice` binary.
pub fn sluice_bin() -> PathBuf {
    ensure_built();
    repo_root().join("target/debug/sluice")
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
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
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
pub struct Project {
    dir: tempfile::TempDir,
    allow_unsigned: bool,
}

impl Project {
    /// An empty project.
    pub fn new() -> Project {
        ensure_built();
        Project {
            dir: tempfile::Builder::new()
                .prefix("sluice-e2e-")
                .tempdir()
                .expect("create a temp dir"),
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

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file (creating directories). `{fixture}` and `{hello}` in
    /// the text become the plugin paths.
    pub fn write(&self, rel: &str, text: &str) -> &Project {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let text = text
            .replace("{fixture}", &plugin("fixture").display().to_string())
            .replace("{hello}", &plugin("hello").display().to_string());
        std::fs::write(&path, text).expect("write file");
        self
    }

    /// Read a file of the project.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel))
            .unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// A command for `sluice args...` in this project.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sluice_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("SLUICE_CACHE_DIR", shared_cache())
            .env("NO_COLOR", "1")
            .env_remove("SLUICE_STATE_DIR")
            .env_remove("SLUICE_LOG")
            .env_remove("SLUICE_ALLOW_UNSIGNED")
            .env_remove("SLUICE_PROVENANCE_KEY")
            .env_remove("SLUICE_KEY_PASSWORD");
        if self.allow_unsigned {
            cmd.env("SLUICE_ALLOW_UNSIGNED", "1");
        }
        cmd
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

    /// The run record of `run_id` as JSON.
    /// The run record as the runner would load it: the `run.json` snapshot
    /// plus the newer entries of the run's journal (`journal.jsonl`, one
    /// JSON line per stage change; a torn last line is ignored).
    pub fn record(&self, run_id: &str) -> serde_json::Value {
        let text = self.read(&format!(".sluice/runs/{run_id}/run.json"));
        let mut record: serde_json::Value = serde_json::from_str(&text).expect("run.json is JSON");
        let journal = self
            .path()
            .join(format!(".sluice/runs/{run_id}/journal.jsonl"));
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

    /// A stage's log of `run_id`.
    pub fn log(&self, run_id: &str, stage: &str) -> String {
        self.read(&format!(".sluice/runs/{run_id}/logs/{stage}.log"))
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
