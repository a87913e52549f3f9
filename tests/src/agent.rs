//! `sluice agent` processes for the fleet tests: started from a config
//! text, waited for until they take jobs, killed with SIGKILL when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{shared_cache, sluice_bin, Project};

/// A running `sluice agent`; its stderr goes to `<root>/<name>.stderr`.
pub struct AgentProcess {
    child: Child,
    stderr: PathBuf,
    /// The agent's name (`name:` of its config).
    pub name: String,
}

impl AgentProcess {
    /// Start `sluice agent --config <root>/<name>.yaml [--listen unix:…]`
    /// with `config` (to which `name:` and a compile cache shared between
    /// test runs are added) and wait until it takes jobs.
    pub fn start(p: &Project, name: &str, config: &str, listen: Option<&Path>) -> AgentProcess {
        let file = p.root().join(format!("{name}.yaml"));
        let text = format!(
            "name: {name}\ncache-dir: {}\n{config}",
            shared_cache().join("agents").join(name).display()
        );
        std::fs::write(&file, text).expect("write agent config");
        let stderr = p.root().join(format!("{name}.stderr"));
        let mut cmd = Command::new(sluice_bin());
        cmd.arg("agent").arg("--config").arg(&file);
        if let Some(socket) = listen {
            cmd.arg("--listen")
                .arg(format!("unix:{}", socket.display()));
        }
        let child = cmd
            .current_dir(p.root())
            // The agent decides by its own config, never by the test
            // environment's policy or log settings.
            .env_remove("SLUICE_POLICY")
            .env_remove("SLUICE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start sluice agent");
        let mut agent = AgentProcess {
            child,
            stderr,
            name: name.to_owned(),
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.log().contains("taking jobs from") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agent {} exited ({status}):\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agent {} did not start:\n{}", self.name, self.log());
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
