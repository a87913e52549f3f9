//! Values of secrets and environment variables, from the agent's config.
//!
//! A job names what it is granted; the values come only from here. A
//! secret's value is read when a job asks for it (an environment variable
//! of the agent, or a file of at most
//! [`MAX_SECRET_FILE_BYTES`]), so a
//! rotated file is picked up by the next job.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_engine::executor::{EnvSource, SecretSource};

use crate::config::{AgentConfig, SecretSpec, MAX_SECRET_FILE_BYTES};

/// Variables every `exec` needs; taken from the agent's environment unless
/// the config's `env:` sets them.
const ALWAYS_PASSED: [&str; 2] = ["PATH", "HOME"];

/// Why the agent cannot hand out a secret a job names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    /// The config's `secrets:` does not list it.
    #[error("holds no secret `{name}` (its config's `secrets:` does not list it)")]
    NotHeld {
        /// The secret's name.
        name: String,
    },
    /// It is listed, but its source has no value now.
    #[error("cannot read secret `{name}`: {why}")]
    Unreadable {
        /// The secret's name.
        name: String,
        /// What is wrong with its source.
        why: String,
    },
}

/// The secrets an agent may hand out ([`SecretSource`]).
#[derive(Debug, Clone, Default)]
pub struct AgentSecrets {
    specs: BTreeMap<String, SecretSpec>,
}

impl AgentSecrets {
    /// The secrets of `config`.
    pub fn new(config: &AgentConfig) -> AgentSecrets {
        AgentSecrets {
            specs: config.secrets.clone(),
        }
    }

    /// The names it holds (for heartbeats: never the values).
    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    /// The value of `name`, or why there is none.
    pub fn value(&self, name: &str) -> Result<String, SecretProblem> {
        let unreadable = |why: String| SecretProblem::Unreadable {
            name: name.to_owned(),
            why,
        };
        match self.specs.get(name) {
            None => Err(SecretProblem::NotHeld {
                name: name.to_owned(),
            }),
            Some(SecretSpec::Env(var)) => std::env::var(var)
                .map_err(|_| unreadable(format!("the agent's environment has no `{var}`"))),
            Some(SecretSpec::File(path)) => read_secret_file(path).map_err(unreadable),
        }
    }

    /// Every value it can read now: what a job's log and report are
    /// redacted of (all of them, not only the job's: a stage must not leak
    /// another secret it learnt some other way either).
    pub fn values(&self) -> Vec<String> {
        self.specs
            .keys()
            .filter_map(|name| self.value(name).ok())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// A secret file's text, without one trailing newline.
fn read_secret_file(path: &Path) -> Result<String, String> {
    let bytes = sluice_files::fsutil::read_input_file(path, MAX_SECRET_FILE_BYTES, "secret file")
        .map_err(|e| e.to_string())?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

impl SecretSource for AgentSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        self.value(name).ok()
    }
}

/// Environment variables a job may be granted ([`EnvSource`]): the
/// config's fixed `env:` values, the variables `pass-env:` copies from the
/// agent's environment, and `PATH` and `HOME` for `exec`.
#[derive(Debug, Clone, Default)]
pub struct AgentEnv {
    fixed: BTreeMap<String, String>,
    passed: Vec<String>,
}

impl AgentEnv {
    /// The environment of `config`.
    pub fn new(config: &AgentConfig) -> AgentEnv {
        AgentEnv {
            fixed: config.env.clone(),
            passed: config.pass_env.clone(),
        }
    }
}

impl EnvSource for AgentEnv {
    fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.fixed.get(name) {
            return Some(v.clone());
        }
        let passed =
            ALWAYS_PASSED.contains(&name) || self.passed.iter().any(|p| p.as_str() == name);
        passed.then(|| std::env::var(name).ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(src: &str) -> AgentConfig {
        AgentConfig::parse(src, Path::new("/tmp/agent.yaml")).expect("config")
    }

    #[test]
    fn secrets_come_from_the_config_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("key");
        std::fs::write(&file, "s3cret-file\n").expect("write");
        let c = config(&format!(
            "allow-unsigned: true\nsecrets:\n  FROM_FILE: {{ file: {} }}\n  FROM_ENV: {{ env: SLUICE_AGENT_TEST_NO_SUCH_VAR }}\n  PATHISH: {{ env: PATH }}\n",
            file.display()
        ));
        let s = AgentSecrets::new(&c);
        assert_eq!(s.secret("FROM_FILE").as_deref(), Some("s3cret-file"));
        assert_eq!(s.secret("PATHISH"), std::env::var("PATH").ok());
        assert_eq!(
            s.value("FROM_ENV"),
            Err(SecretProblem::Unreadable {
                name: "FROM_ENV".into(),
                why: "the agent's environment has no `SLUICE_AGENT_TEST_NO_SUCH_VAR`".into()
            })
        );
        // A variable of the agent's environment is not a secret unless
        // listed.
        assert_eq!(
            s.value("HOME"),
            Err(SecretProblem::NotHeld {
                name: "HOME".into()
            })
        );
        assert_eq!(s.names(), ["FROM_ENV", "FROM_FILE", "PATHISH"]);
        assert!(s.values().contains(&"s3cret-file".to_owned()));
        // A file over the cap, or gone, is unreadable with a reason.
        std::fs::write(&file, vec![b'x'; 70 << 10]).expect("write");
        assert!(matches!(
            s.value("FROM_FILE"),
            Err(SecretProblem::Unreadable { .. })
        ));
        std::fs::remove_file(&file).expect("rm");
        assert!(s.secret("FROM_FILE").is_none());
    }

    #[test]
    fn env_is_fixed_values_passed_names_and_path() {
        let c = config("allow-unsigned: true\nenv: { CI: \"true\", HOME: /nonexistent }\npass-env: [LANG_SLUICE_TEST]\n");
        let e = AgentEnv::new(&c);
        assert_eq!(e.var("CI").as_deref(), Some("true"));
        assert_eq!(e.var("HOME").as_deref(), Some("/nonexistent"));
        assert_eq!(e.var("PATH"), std::env::var("PATH").ok());
        assert_eq!(e.var("LANG_SLUICE_TEST"), None);
        // Not listed: never read from the agent's environment.
        assert_eq!(e.var("USER"), None);
    }
}
