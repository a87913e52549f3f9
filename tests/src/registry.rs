//! A real OCI registry for the tests: Debian's `docker-registry`
//! (distribution 2.8, installed by `scripts/setup-registry.sh`) on a free
//! loopback port, with TLS from a CA created at test time (`openssl`) and
//! htpasswd auth (`htpasswd -B`), its storage in a temporary directory.
//!
//! [`Registry::shared`] is one instance per test process, started on first
//! use; [`Registry::start_private`] is an instance of a test's own (to stop
//! it, or to tamper with its storage without disturbing other tests).
//!
//! The registry runs under a small `sh` watchdog that reads its stdin: when
//! the test process exits (even without dropping the shared instance, which
//! lives in a static), the pipe closes and the watchdog stops the registry
//! and removes its directory, so no registry outlives the tests.
//!
//! distribution 2.8 has no OCI referrers API: the tests exercise sluice's
//! tag-schema fallback (`sha256-<hex>` image index tags).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{Project, Run};

/// The watchdog: runs the registry, stops it (and removes `$2`, the
/// instance's directory, when `$3` is `cleanup`) once stdin closes.
const WATCHDOG: &str = r#"
docker-registry serve "$1" >>"$1.log" 2>&1 &
reg=$!
read -r _ignored || true
kill "$reg" 2>/dev/null
wait "$reg" 2>/dev/null
if [ "$3" = cleanup ]; then rm -rf "$2"; fi
"#;

/// A running (or stopped) registry.
pub struct Registry {
    /// Holds the directory of a private instance (removed on drop); the
    /// shared instance's is removed by its watchdog at exit.
    _dir: Option<tempfile::TempDir>,
    root: PathBuf,
    port: u16,
    user: String,
    password: String,
    tls: bool,
    process: Mutex<Option<(Child, ChildStdin)>>,
}

/// `docker-registry`, `htpasswd` and `openssl` on PATH, or a loud failure
/// naming the setup script.
pub fn require_registry() {
    for (tool, args) in [
        ("docker-registry", &["--version"][..]),
        ("htpasswd", &["-h"][..]),
        ("openssl", &["version"][..]),
    ] {
        let found = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{tool}` is not installed: the registry tests run a real docker-registry with TLS \
             and htpasswd auth. Install it with `bash scripts/setup-registry.sh`"
        );
    }
}

/// `wkg` 0.16 on PATH, or a loud failure naming the setup script.
pub fn require_wkg() {
    let found = Command::new("wkg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`wkg` is not installed: the interop tests push and pull with it. Install it with \
         `bash scripts/setup-registry.sh` (cargo install --locked wkg --version 0.16.1)"
    );
}

/// Runs `cmd`, which must succeed (the failure names `what` and shows what
/// it printed); its standard output.
pub fn run_ok(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Base64 (standard, padded) for the Docker config's `auth` field.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Registry {
    /// The registry of this test process: TLS and auth, started on first
    /// use. Never stop it: other tests use it.
    pub fn shared() -> &'static Registry {
        static SHARED: OnceLock<Registry> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("sluice-registry-")
                .tempdir()
                .expect("temp dir");
            // Kept for the process's lifetime; the watchdog removes it.
            let root = dir.keep();
            Registry::start_in(None, root, true)
        })
    }

    /// A registry of the caller's own, with TLS and auth; stopped and
    /// removed on drop.
    pub fn start_private() -> Registry {
        Registry::start_own(true)
    }

    /// A registry of the caller's own over plain HTTP without auth (for
    /// `--insecure-registry`); stopped and removed on drop.
    pub fn start_plain() -> Registry {
        Registry::start_own(false)
    }

    /// A registry in a temporary directory of its own (removed on drop).
    fn start_own(tls: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("sluice-registry-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        Registry::start_in(Some(dir), root, tls)
    }

    fn start_in(dir: Option<tempfile::TempDir>, root: PathBuf, tls: bool) -> Registry {
        require_registry();
        let port = crate::free_port();
        let user = "sluice-tester".to_owned();
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        );
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.join("storage").display()
        );
        if tls {
            Registry::make_tls(&root);
            let htpasswd = run_ok(
                Command::new("htpasswd").args(["-Bbn", &user, &password]),
                "htpasswd",
            );
            std::fs::write(root.join("htpasswd"), htpasswd).expect("write htpasswd");
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: sluice-test\n    path: {}\n",
                root.join("server.pem").display(),
                root.join("server.key").display(),
                root.join("htpasswd").display()
            ));
            let docker = root.join("docker");
            std::fs::create_dir_all(&docker).expect("docker config dir");
            let auth = base64(format!("{user}:{password}").as_bytes());
            std::fs::write(
                docker.join("config.json"),
                format!(r#"{{"auths": {{"127.0.0.1:{port}": {{"auth": "{auth}"}}}}}}"#),
            )
            .expect("write docker config");
        }
        std::fs::write(root.join("config.yml"), config).expect("write registry config");
        let registry = Registry {
            _dir: dir,
            root,
            port,
            user,
            password,
            tls,
            process: Mutex::new(None),
        };
        registry.restart();
        registry
    }

    /// A CA and a server certificate for 127.0.0.1 (and localhost).
    fn make_tls(root: &Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run_ok(
            Command::new("openssl")
                .current_dir(root)
                .args(["req", "-x509"])
                .args(ec)
                .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
                .args(["-subj", "/CN=sluice test registry CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
            "openssl (CA)",
        );
        run_ok(
            Command::new("openssl")
                .current_dir(root)
                .arg("req")
                .args(ec)
                .args(["-keyout", "server.key", "-out", "server.csr"])
                .args(["-subj", "/CN=127.0.0.1"]),
            "openssl (server key)",
        );
        std::fs::write(
            root.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        run_ok(
            Command::new("openssl")
                .current_dir(root)
                .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem"])
                .args(["-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem"])
                .args(["-days", "2", "-extfile", "server.ext"]),
            "openssl (server certificate)",
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:PORT/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.registry())
    }

    /// The CA certificate (PEM) the registry's certificate chains to.
    pub fn ca_file(&self) -> PathBuf {
        assert!(self.tls, "a plain-HTTP registry has no CA");
        self.root.join("ca.pem")
    }

    /// A directory with a `config.json` holding the credentials, for
    /// `DOCKER_CONFIG`.
    pub fn docker_config(&self) -> PathBuf {
        assert!(self.tls, "a plain-HTTP registry has no credentials");
        self.root.join("docker")
    }

    /// The user name of the htpasswd file.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password of [`Registry::user`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The storage root (blobs under `docker/registry/v2/blobs/sha256/…`).
    pub fn storage(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// Where the registry keeps the blob `sha256:<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("config.yml.log")).unwrap_or_default()
    }

    /// The environment for `sluice` to reach this registry: credentials
    /// (`DOCKER_CONFIG`) and the CA (`SLUICE_REGISTRY_CA`); empty for a
    /// plain one.
    pub fn env(&self) -> Vec<(String, String)> {
        if !self.tls {
            return Vec::new();
        }
        vec![
            (
                "DOCKER_CONFIG".to_owned(),
                self.docker_config().display().to_string(),
            ),
            (
                "SLUICE_REGISTRY_CA".to_owned(),
                self.ca_file().display().to_string(),
            ),
        ]
    }

    /// `sluice args…` in `p`, reaching this registry ([`Registry::env`]),
    /// with `extra` added to the environment (a key password, a cache).
    pub fn sluice(&self, p: &Project, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let env = self.env();
        let mut all: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(extra);
        p.sluice_env(args, &all)
    }

    /// Stops the registry (its storage stays).
    pub fn stop(&self) {
        let taken = self.process.lock().expect("registry lock").take();
        if let Some((mut child, stdin)) = taken {
            // Closing the watchdog's stdin stops the registry.
            drop(stdin);
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the registry did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the registry again on the same port with the same storage
    /// (and starts it the first time); returns when it accepts connections.
    pub fn restart(&self) {
        let mut process = self.process.lock().expect("registry lock");
        if process.is_some() {
            return;
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(self.root.join("config.yml"))
            .arg(&self.root)
            .arg(if self._dir.is_none() {
                "cleanup"
            } else {
                "keep"
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the docker-registry watchdog");
        let stdin = child.stdin.take().expect("watchdog stdin");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "docker-registry exited ({status}) before listening on {}:\n{}",
                    self.registry(),
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {} within 20 s:\n{}",
                self.registry(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        *process = Some((child, stdin));
    }
}

/// The pinned reference (`oci://…@sha256:…`) `sluice plugin push` prints
/// on its last line.
pub fn pinned(push: &Run) -> String {
    let last = push
        .stdout
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        last.starts_with("oci://") && last.contains("@sha256:"),
        "push did not end with the pinned reference:\n{}",
        push.all()
    );
    last
}

/// The digest (`sha256:…`) of a pinned reference.
pub fn digest_of(pinned: &str) -> String {
    pinned
        .split_once('@')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_else(|| panic!("not a pinned reference: {pinned}"))
}

/// `sha256:<hex>` of `bytes` (by `sha256sum`).
pub fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().unwrap_or_default()
    )
}

/// `sha256:<hex>` of the file at `path`.
pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Ok(mut process) = self.process.lock() {
            if let Some((mut child, mut stdin)) = process.take() {
                let _ = stdin.write_all(b"stop\n");
                drop(stdin);
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::base64(b"user:pw"), "dXNlcjpwdw==");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
    }
}
