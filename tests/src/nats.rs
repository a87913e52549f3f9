//! A real NATS server with JetStream for the tests: Debian's `nats-server`
//! (2.9.10, installed by `scripts/setup-nats.sh`) on a free loopback port,
//! file storage in a temporary directory.
//!
//! [`NatsServer::shared`] is one server per test process, started on first
//! use; tests isolate themselves by fleet namespace
//! ([`NatsServer::namespace`]), so they run in parallel on it.
//! [`NatsServer::private`] is a server of a test's own, for tests that stop,
//! restart or `kill -9` it ([`NatsServer::restart`],
//! [`NatsServer::kill9_and_restart`] keep its store directory and port).
//!
//! The server runs under a small `sh` watchdog that reads its stdin: when
//! the test process exits (even without dropping the shared instance, which
//! lives in a static), the pipe closes and the watchdog stops the server,
//! so no server outlives the tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The watchdog: runs the server (`$1` binary, `$2` store dir, `$3` port),
/// writes its pid to `$2/pid`, and stops it once stdin closes (and removes
/// `$2` when `$4` is `cleanup`).
const WATCHDOG: &str = r#"
"$1" -js -sd "$2/store" -a 127.0.0.1 -p "$3" >>"$2/server.log" 2>&1 &
srv=$!
echo "$srv" >"$2/pid"
read -r _ignored || true
kill "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
if [ "$4" = cleanup ]; then rm -rf "$2"; fi
"#;

/// The `nats-server` binary: `SLUICE_NATS_SERVER`, else `nats-server` on
/// `PATH`, else `/usr/sbin/nats-server` (where Debian puts it), else a loud
/// failure naming the setup script.
pub fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let on_path = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return PathBuf::from("nats-server");
    }
    let debian = Path::new("/usr/sbin/nats-server");
    assert!(
        debian.exists(),
        "`nats-server` is not installed: the fleet tests run a real NATS server with JetStream. \
         Install it with `bash scripts/setup-nats.sh` (or point SLUICE_NATS_SERVER at one)"
    );
    debian.to_path_buf()
}

/// A running (or stopped) NATS server.
pub struct NatsServer {
    /// Holds the directory of a private instance (removed on drop); the
    /// shared instance's is removed by its watchdog at exit.
    _dir: Option<tempfile::TempDir>,
    root: PathBuf,
    port: u16,
    process: Mutex<Option<(Child, ChildStdin)>>,
}

impl NatsServer {
    /// The server of this test process, started on first use. Never stop
    /// it: other tests use it. Isolate with [`NatsServer::namespace`].
    pub fn shared() -> &'static NatsServer {
        static SHARED: OnceLock<NatsServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("sluice-nats-")
                .tempdir()
                .expect("temp dir");
            // Kept for the process's lifetime; the watchdog removes it.
            let root = dir.keep();
            NatsServer::start_in(None, root)
        })
    }

    /// A server of the caller's own; stopped and removed on drop.
    pub fn private() -> NatsServer {
        let dir = tempfile::Builder::new()
            .prefix("sluice-nats-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        NatsServer::start_in(Some(dir), root)
    }

    fn start_in(dir: Option<tempfile::TempDir>, root: PathBuf) -> NatsServer {
        let server = NatsServer {
            _dir: dir,
            root,
            port: crate::free_port(),
            process: Mutex::new(None),
        };
        server.start();
        server
    }

    /// A fleet namespace no other test of this process uses (`t1`, `t2` …).
    pub fn namespace() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// Starts the server (again) on its port and store directory and waits
    /// until JetStream answers.
    pub fn start(&self) {
        let mut process = self.process.lock().expect("nats lock");
        assert!(process.is_none(), "the NATS server is already running");
        let _ = std::fs::remove_file(self.root.join("pid"));
        let cleanup = if self._dir.is_none() {
            "cleanup"
        } else {
            "keep"
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(nats_server_binary())
            .arg(&self.root)
            .arg(self.port.to_string())
            .arg(cleanup)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the nats-server watchdog (sh)");
        let stdin = child.stdin.take().expect("watchdog stdin");
        *process = Some((child, stdin));
        drop(process);
        self.wait_ready();
    }

    /// Stops the server with SIGTERM and waits for it to exit (its store
    /// stays).
    pub fn stop(&self) {
        let taken = self.process.lock().expect("nats lock").take();
        if let Some((mut child, stdin)) = taken {
            // Closing the watchdog's stdin stops the server (SIGTERM).
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL (no flush, no goodbye) and waits for
    /// the watchdog.
    pub fn kill9(&self) {
        let pid = self.pid().expect("the NATS server's pid");
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {pid} failed");
        self.stop();
    }

    /// SIGTERM, then start again on the same port and store.
    pub fn restart(&self) {
        self.stop();
        self.start();
    }

    /// SIGKILL, then start again on the same port and store.
    pub fn kill9_and_restart(&self) {
        self.kill9();
        self.start();
    }

    /// Ready = the port accepts and a raw `$JS.API.INFO` request answers
    /// without an error (the client's account query fails on 2.9, so this
    /// speaks the protocol itself).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if jetstream_answers(self.port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server on port {} did not answer JetStream requests within 15 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One `$JS.API.INFO` request over the raw protocol.
fn jetstream_answers(port: u16) -> bool {
    let Ok(mut sock) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(clone) = sock.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    // INFO {...}
    if reader.read_line(&mut line).is_err() || !line.starts_with("INFO") {
        return false;
    }
    let hello = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n\
                 SUB _INBOX.ready 1\r\nPUB $JS.API.INFO _INBOX.ready 0\r\n\r\n";
    if sock.write_all(hello.as_bytes()).is_err() {
        return false;
    }
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line.starts_with("PING") {
            let _ = sock.write_all(b"PONG\r\n");
            continue;
        }
        if let Some(rest) = line.strip_prefix("MSG ") {
            let len: usize = rest
                .split_whitespace()
                .last()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut payload = vec![0; len + 2];
            if reader.read_exact(&mut payload).is_err() {
                return false;
            }
            let text = String::from_utf8_lossy(&payload);
            return text.contains("account_info_response") && !text.contains("\"error\"");
        }
        if line.starts_with("-ERR") {
            return false;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
