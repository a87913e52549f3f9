//! The operator's agent config file (`sluice agent --config FILE`).
//!
//! ```yaml
//! name: a1                          # default: <hostname>-<pid>
//! nats: { url: nats://127.0.0.1:4222, creds: /etc/sluice/agent.creds, namespace: sluice }
//! labels: [os=linux, net=egress]
//! concurrency: 4
//! policy: /etc/sluice/policy.yaml   # the agent's operator policy (required unless allow-unsigned)
//! accept: { max-grants: { exec: [python3, sleep], network: ["*.internal:443"], secrets: [NPM_TOKEN] } }
//! secrets: { NPM_TOKEN: { env: NPM_TOKEN }, DEPLOY_KEY: { file: /run/secrets/deploy_key } }
//! env: { CI: "true" }               # values for granted `env`
//! pass-env: [LANG]                  # copied from the agent's own environment
//! cache-dir: /var/cache/sluice-agent
//! workspace: shared                 # workspaces are at the coordinator's path here too
//! plugin-cache: 64                  # compiled plugins kept warm
//! ack-wait: 15s
//! heartbeat: 5s
//! ```
//!
//! Read like the pipeline and policy files: size cap, YAML limits, unknown
//! keys refused, every error located (file, line, column) with a fix.
//! `accept.max-grants` has exactly the shape and checks of a policy rule's
//! `max-grants`: it is handed to the trust crate's own parser (as the one
//! rule of a policy) rather than read a second way, and its errors are
//! pointed back at this file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_files::diagnostic;
use sluice_files::fsutil::{read_input_file, InputError};
use sluice_files::locate::{Location, SourceMap, YamlPath};
use sluice_files::yaml_limits;
use sluice_trust::{Policy, PolicyError, RequestedGrants};
use sluice_types::LabelSet;

/// Largest agent config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Largest secret file (`secrets: { X: { file: … } }`) read.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;

/// Default NATS namespace (subject prefix).
pub const DEFAULT_NAMESPACE: &str = "sluice";

/// Keys of the config file, for the hint of an unknown one.
const KEYS_HINT: &str = "an agent config has `name`, `nats` (`url`, `creds`, `namespace`), `labels`, \
     `concurrency`, `policy`, `allow-unsigned`, `accept` (`max-grants`), `secrets` (each `{ env: VAR }` \
     or `{ file: PATH }`), `env`, `pass-env`, `cache-dir`, `plugin-cache`, `workspace` (`shared` or `none`), `ack-wait` and `heartbeat`";

/// Why an agent config could not be loaded. `Display` renders the full
/// diagnostic, ready to print.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file was read but is not a valid agent config.
    #[error("{}", diagnostic::render_located(file, *line, *column, message, hint.as_deref(), source_line.as_deref()))]
    Invalid {
        /// The config file, as given.
        file: PathBuf,
        /// Line of the problem, 1-based.
        line: usize,
        /// Column of the problem (in characters), 1-based.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The text of line `line`.
        source_line: Option<String>,
    },
    /// The file could not be read (missing, not a regular file, too large).
    #[error("error: {problem}\n  = help: {hint}")]
    Input {
        /// What is wrong with the file, naming it.
        problem: InputError,
        /// How to fix it.
        hint: String,
    },
}

impl ConfigError {
    /// `(line, column)` of the problem, when the file was read.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
            ConfigError::Input { .. } => None,
        }
    }
}

/// Where the agent's NATS server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    /// A NATS `.creds` file (JWT + nkey seed), relative paths from the
    /// config's directory.
    pub creds: Option<PathBuf>,
    /// Prefix of every subject, stream and bucket.
    pub namespace: String,
}

/// Where the value of a secret the agent may hand out comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSpec {
    /// The agent's own environment variable.
    Env(String),
    /// A file, read at job start (at most [`MAX_SECRET_FILE_BYTES`]).
    File(PathBuf),
}

/// A loaded, checked agent config.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// The agent's name (heartbeats, records, refusals).
    pub name: String,
    /// NATS, when the agent takes jobs from a fleet.
    pub nats: Option<NatsConfig>,
    /// The labels it serves.
    pub labels: LabelSet,
    /// Jobs at once.
    pub concurrency: usize,
    /// The agent's operator policy file.
    pub policy: Option<PathBuf>,
    /// Run plugins unverified when there is no policy (development only).
    pub allow_unsigned: bool,
    /// `accept.max-grants`: the most any job may be granted.
    pub ceiling: Option<GrantCeiling>,
    /// Secrets it may hand out, by name.
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Fixed values of environment variables.
    pub env: BTreeMap<String, String>,
    /// Variables copied from the agent's own environment.
    pub pass_env: Vec<String>,
    /// Compile cache, CAS and job directories.
    pub cache_dir: PathBuf,
    /// Compiled plugins kept warm.
    pub plugin_cache: usize,
    /// How long a job may go unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// How often the agent says it is alive.
    pub heartbeat: Duration,
    /// `workspace: shared`: workspaces are at the coordinator's path on
    /// this machine too (the same machine, or a shared file system).
    pub shared_workspace: bool,
}

/// The grant ceiling (`accept.max-grants`): a policy whose one rule
/// matches every plugin and caps its grants, checked with the trust crate's
/// own `max-grants` logic.
#[derive(Debug, Clone)]
pub struct GrantCeiling {
    policy: Policy,
}

/// The name of the ceiling's rule, as refusals name it.
pub const CEILING_RULE: &str = "accept.max-grants";

impl GrantCeiling {
    /// Each grant over the ceiling, as a sentence naming it and the cap.
    pub fn excess(&self, reference: &str, grants: &RequestedGrants) -> Vec<String> {
        let input = sluice_trust::PluginInput {
            reference: reference.to_owned(),
            // No digest and no bytes: the rule has no pin and no
            // authorities, only caps, so nothing is hashed per job.
            digest: String::new(),
            bytes: &[],
            bundle: None,
            attestations: None,
            imports: Vec::new(),
            grants: grants.clone(),
        };
        self.policy
            .evaluate(&input)
            .refusals
            .into_iter()
            .map(|r| r.reason)
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nats: Option<NatsDoc>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    allow_unsigned: Option<bool>,
    #[serde(default)]
    accept: Option<AcceptDoc>,
    #[serde(default)]
    secrets: Option<BTreeMap<String, SecretDoc>>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pass_env: Option<Vec<String>>,
    #[serde(default)]
    cache_dir: Option<String>,
    #[serde(default)]
    plugin_cache: Option<u32>,
    #[serde(default)]
    ack_wait: Option<String>,
    #[serde(default)]
    heartbeat: Option<String>,
    #[serde(default)]
    workspace: Option<WorkspaceMode>,
}

/// `workspace:` of the config.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum WorkspaceMode {
    /// Workspaces are at the coordinator's path.
    Shared,
    /// The agent sees no workspace (stages without a workspace grant only).
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NatsDoc {
    url: String,
    #[serde(default)]
    creds: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AcceptDoc {
    // Kept as YAML: the trust crate reads it (see `GrantCeiling`).
    #[serde(default)]
    max_grants: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretDoc {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<String>,
}

/// Builds located errors for one config file.
struct Reporter<'a> {
    file: &'a Path,
    src: &'a str,
    positions: SourceMap,
}

impl Reporter<'_> {
    fn at(
        &self,
        Location { line, column }: Location,
        message: String,
        hint: String,
    ) -> ConfigError {
        let lines = self.src.lines().count().max(1);
        let (line, column) = match self.src.lines().last() {
            Some(last) if line > lines => (lines, last.chars().count() + 1),
            _ => (line.max(1), column.max(1)),
        };
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
            hint: Some(hint),
            source_line: self.src.lines().nth(line - 1).map(str::to_owned),
        }
    }

    fn value(&self, path: &YamlPath, message: String, hint: impl Into<String>) -> ConfigError {
        self.at(self.positions.value(path), message, hint.into())
    }
}

fn root() -> YamlPath {
    YamlPath::root()
}

impl AgentConfig {
    /// Reads and checks an agent config file. Relative paths in it start
    /// from the file's directory.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let bytes = read_input_file(path, MAX_CONFIG_BYTES, "agent config").map_err(|problem| {
            ConfigError::Input {
                hint: problem.hint(),
                problem,
            }
        })?;
        let src = match String::from_utf8(bytes) {
            Ok(src) => src,
            Err(e) => {
                let valid = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()])
                    .into_owned();
                return Err(ConfigError::Invalid {
                    file: path.to_path_buf(),
                    line: valid.matches('\n').count() + 1,
                    column: valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                    message: "the agent config is not valid UTF-8".to_owned(),
                    hint: Some("save the file as UTF-8".to_owned()),
                    source_line: None,
                });
            }
        };
        Self::parse(&src, path)
    }

    /// Checks the config in `src`, as if read from `file`.
    pub fn parse(src: &str, file: &Path) -> Result<AgentConfig, ConfigError> {
        let src = sluice_files::fsutil::strip_bom(src);
        if let Err(e) = yaml_limits::check(src) {
            let (line, column) = e.location();
            return Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                line,
                column,
                message: e.to_string(),
                hint: Some(e.hint()),
                source_line: src
                    .lines()
                    .nth(line.saturating_sub(1))
                    .and_then(|text| yaml_limits::excerpt(text, column)),
            });
        }
        let r = Reporter {
            file,
            src,
            positions: SourceMap::build(src),
        };
        if diagnostic::is_blank_yaml(src) {
            return Err(r.at(
                Location::START,
                "the agent config is empty".to_owned(),
                "give at least `policy:` (the agent's operator policy) and `labels:`; see docs/fleet.md"
                    .to_owned(),
            ));
        }
        if let Some(dup) = r.positions.duplicate() {
            return Err(r.at(
                dup.location,
                format!(
                    "`{}` is given twice (first at line {})",
                    dup.key, dup.first.line
                ),
                "keep one of them".to_owned(),
            ));
        }
        let doc: ConfigDoc = serde_yaml_ng::from_str(src).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let suffix = format!(" at line {line} column {column}");
            let message = e.to_string().replacen(&suffix, "", 1);
            r.at(Location { line, column }, message, KEYS_HINT.to_owned())
        })?;
        let base = file.parent().unwrap_or_else(|| Path::new(""));
        let relative = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let name = match doc.name {
            Some(name) => {
                check_name(&name).map_err(|why| {
                    r.value(
                        &root().key("name"),
                        format!("agent name `{name}` {why}"),
                        "use letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 63 characters",
                    )
                })?;
                name
            }
            None => default_name(),
        };

        let nats = match doc.nats {
            None => None,
            Some(n) => {
                let at = root().key("nats");
                if !(n.url.starts_with("nats://") || n.url.starts_with("tls://"))
                    || n.url.len() <= "nats://".len()
                {
                    return Err(r.value(
                        &at.key("url"),
                        format!("`{}` is not a NATS URL", n.url),
                        "write `nats://HOST:PORT` (or `tls://HOST:PORT`), e.g. `nats://127.0.0.1:4222`",
                    ));
                }
                let namespace = n.namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
                if !is_token(&namespace) {
                    return Err(r.value(
                        &at.key("namespace"),
                        format!("namespace `{namespace}` cannot be a NATS subject token"),
                        "use lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                    ));
                }
                let creds = n.creds.as_deref().map(relative);
                // Checked here, where the error can point at the line: the
                // NATS client would only say it at the first connect.
                if let Some(path) = &creds {
                    if let Err(e) = std::fs::File::open(path)
                        .and_then(|f| f.metadata())
                        .and_then(|m| {
                            if m.is_file() {
                                Ok(())
                            } else {
                                Err(std::io::Error::other("not a regular file"))
                            }
                        })
                    {
                        return Err(r.value(
                            &at.key("creds"),
                            format!("cannot read the NATS credentials file {}: {e}", path.display()),
                            "give the path of the agent's `.creds` file (from `nsc generate creds`); relative paths are from the config file's directory",
                        ));
                    }
                }
                Some(NatsConfig {
                    url: n.url,
                    creds,
                    namespace,
                })
            }
        };

        let mut labels = Vec::new();
        for (i, text) in doc.labels.iter().flatten().enumerate() {
            let label = text.parse::<sluice_types::Label>().map_err(|e| {
                r.value(
                    &root().key("labels").index(i),
                    e.to_string(),
                    e.hint.to_string(),
                )
            })?;
            labels.push(label);
        }
        let labels = LabelSet::new(labels)
            .map_err(|e| r.value(&root().key("labels"), e.to_string(), e.hint.to_string()))?;

        let concurrency = match doc.concurrency {
            None => 1,
            Some(0) => {
                return Err(r.value(
                    &root().key("concurrency"),
                    "concurrency 0 would never run a job".to_owned(),
                    "give the number of jobs the agent runs at once, 1 or more",
                ))
            }
            Some(n) if n > 256 => {
                return Err(r.value(
                    &root().key("concurrency"),
                    format!("concurrency {n} is more than 256"),
                    "run several agents instead; each stage instance reserves memory in the pooling allocator",
                ))
            }
            Some(n) => n as usize,
        };

        let allow_unsigned = doc.allow_unsigned.unwrap_or(false);
        let policy = doc.policy.as_deref().map(relative);
        if policy.is_none() && !allow_unsigned {
            return Err(r.at(
                Location::START,
                "the agent config names no operator policy: an agent verifies every plugin itself and never trusts the coordinator's word".to_owned(),
                "add `policy: /etc/sluice/policy.yaml` (a trust policy file, see docs/security.md); `allow-unsigned: true` runs unverified plugins (development only)".to_owned(),
            ));
        }

        let ceiling = match doc.accept.and_then(|a| a.max_grants) {
            None => None,
            Some(value) => Some(ceiling(&r, &value)?),
        };

        let mut secrets = BTreeMap::new();
        for (name, spec) in doc.secrets.into_iter().flatten() {
            let at = root().key("secrets").key(&name);
            let spec = match (spec.env, spec.file) {
                (Some(var), None) => SecretSpec::Env(var),
                (None, Some(file)) => SecretSpec::File(relative(&file)),
                _ => {
                    return Err(r.value(
                        &at,
                        format!("secret `{name}` needs exactly one of `env` and `file`"),
                        format!("write `{name}: {{ env: VARIABLE }}` or `{name}: {{ file: /run/secrets/{} }}`", name.to_lowercase()),
                    ))
                }
            };
            secrets.insert(name, spec);
        }

        let cache_dir = match &doc.cache_dir {
            Some(dir) => relative(dir),
            None => default_cache_dir(),
        };
        let plugin_cache = match doc.plugin_cache {
            None => 64,
            Some(0) => {
                return Err(r.value(
                    &root().key("plugin-cache"),
                    "plugin-cache 0 would compile every plugin for every job".to_owned(),
                    "keep at least 1 compiled plugin (the default is 64)",
                ))
            }
            Some(n) => n as usize,
        };
        let duration = |key: &str, text: Option<&String>, default: Duration| {
            let Some(text) = text else {
                return Ok(default);
            };
            let d = text
                .parse::<sluice_types::Duration>()
                .map_err(|e| r.value(&root().key(key), e.to_string(), e.hint.to_string()))?;
            if d.get() < Duration::from_millis(100) {
                return Err(r.value(
                    &root().key(key),
                    format!("{key} `{text}` is shorter than 100ms"),
                    "give at least `1s`",
                ));
            }
            Ok(d.get())
        };
        let ack_wait = duration("ack-wait", doc.ack_wait.as_ref(), Duration::from_secs(15))?;
        let heartbeat = duration("heartbeat", doc.heartbeat.as_ref(), Duration::from_secs(5))?;

        for (i, var) in doc.pass_env.iter().flatten().enumerate() {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(r.value(
                    &root().key("pass-env").index(i),
                    format!("`{var}` is not an environment variable name"),
                    "give the variable's name, e.g. `LANG`",
                ));
            }
        }

        Ok(AgentConfig {
            file: file.to_path_buf(),
            name,
            nats,
            labels,
            concurrency,
            policy,
            allow_unsigned,
            ceiling,
            secrets,
            env: doc.env.unwrap_or_default(),
            pass_env: doc.pass_env.unwrap_or_default(),
            cache_dir,
            plugin_cache,
            ack_wait,
            heartbeat,
            shared_workspace: doc.workspace == Some(WorkspaceMode::Shared),
        })
    }
}

/// `accept.max-grants` as the one rule of a policy, read by the trust
/// crate. The rule is written out one value per line, so that a line of
/// the generated policy maps back to a node of the config; an error there
/// is reported at that node.
fn ceiling(r: &Reporter<'_>, value: &serde_yaml_ng::Value) -> Result<GrantCeiling, ConfigError> {
    use serde_yaml_ng::Value;
    let at = root().key("accept").key("max-grants");
    let json = |v: &Value| serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned());
    let mut src = String::from("mode: enforce\nno-match: deny\nrules:\n");
    let _ = writeln!(src, "  - name: \"{CEILING_RULE}\"");
    src.push_str("    match: [\"**\", \"oci://**\"]\n");
    // Line (1-based) of the generated policy → node of the config.
    let mut lines: Vec<YamlPath> = vec![at.clone(); src.lines().count() + 1];
    let mut push = |src: &mut String, line: String, path: YamlPath| {
        src.push_str(&line);
        src.push('\n');
        lines.push(path);
    };
    match value {
        Value::Mapping(map) => {
            push(&mut src, "    max-grants:".to_owned(), at.clone());
            if map.is_empty() {
                // `max-grants: {}`: no caps at all.
                src.truncate(src.len() - 1);
                src.push_str(" {}\n");
            }
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => json(other),
                };
                let path = at.key(&key);
                match v {
                    Value::Sequence(items) => {
                        if items.is_empty() {
                            push(&mut src, format!("      {}: []", json(k)), path);
                        } else {
                            push(&mut src, format!("      {}:", json(k)), path.clone());
                            for (i, item) in items.iter().enumerate() {
                                push(&mut src, format!("        - {}", json(item)), path.index(i));
                            }
                        }
                    }
                    other => push(
                        &mut src,
                        format!("      {}: {}", json(k), json(other)),
                        path,
                    ),
                }
            }
        }
        other => push(
            &mut src,
            format!("    max-grants: {}", json(other)),
            at.clone(),
        ),
    }
    Policy::parse(&src, r.file)
        .map(|policy| GrantCeiling { policy })
        .map_err(|e| {
            let path = e
                .location()
                .and_then(|(line, _)| lines.get(line))
                .cloned()
                .unwrap_or_else(|| at.clone());
            let message = match &e {
                PolicyError::Invalid { message, .. } => message.clone(),
                other => other.message(),
            };
            let hint = e.hint().map(str::to_owned).unwrap_or_else(|| {
                "`max-grants` has `workspace`, `exec`, `secrets`, `network` and `env`".to_owned()
            });
            r.value(&path, format!("accept.max-grants: {message}"), hint)
        })
}

/// Why `name` is not a usable agent name, if it is not.
fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => return Err("must start with a letter or digit"),
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("has a character other than letters, digits, `-`, `_` and `.`");
    }
    if name.len() > 63 {
        return Err("is longer than 63 characters");
    }
    Ok(())
}

/// A NATS subject token of ours: `[a-z0-9][a-z0-9_-]*`, at most 63.
fn is_token(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 63
}

/// `<hostname>-<pid>`, made a valid name.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(48)
        .collect::<String>();
    let host = host.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let host = if host.is_empty() { "agent" } else { host };
    format!("{host}-{}", std::process::id())
}

/// `$XDG_CACHE_HOME/sluice-agent`, else `~/.cache/sluice-agent`, else a
/// directory under the system's temporary directory.
fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("sluice-agent");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache/sluice-agent");
    }
    std::env::temp_dir().join("sluice-agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(src, Path::new("/etc/sluice/agent.yaml"))
    }

    fn err(src: &str) -> (usize, usize, String, String) {
        match parse(src).expect_err("invalid") {
            ConfigError::Invalid {
                line,
                column,
                message,
                hint,
                ..
            } => (line, column, message, hint.unwrap_or_default()),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_full_config_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("agent.creds"), "creds").expect("creds");
        let c = AgentConfig::parse(
            "name: a1\nnats: { url: nats://127.0.0.1:4222, creds: agent.creds, namespace: t1 }\nlabels: [os=linux, net=egress]\nconcurrency: 4\npolicy: policy.yaml\naccept: { max-grants: { exec: [python3, sleep], secrets: [NPM_TOKEN] } }\nsecrets: { NPM_TOKEN: { env: NPM_TOKEN }, KEY: { file: /run/k } }\nenv: { CI: \"true\" }\npass-env: [LANG]\ncache-dir: cache\nack-wait: 2s\nheartbeat: 1s\n",
            &dir.path().join("agent.yaml"),
        )
        .expect("valid");
        assert_eq!(c.name, "a1");
        let nats = c.nats.expect("nats");
        assert_eq!(nats.namespace, "t1");
        assert_eq!(nats.creds, Some(dir.path().join("agent.creds")));
        assert_eq!(c.labels.token(), "net=egress,os=linux");
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.policy, Some(dir.path().join("policy.yaml")));
        assert_eq!(
            c.secrets.get("KEY"),
            Some(&SecretSpec::File(PathBuf::from("/run/k")))
        );
        assert_eq!(c.cache_dir, dir.path().join("cache"));
        assert_eq!(c.ack_wait, Duration::from_secs(2));
        assert_eq!(c.heartbeat, Duration::from_secs(1));
        let ceiling = c.ceiling.expect("ceiling");
        let grants = RequestedGrants {
            exec: vec!["sleep".into()],
            ..RequestedGrants::default()
        };
        assert!(ceiling.excess("../plugins/x.wasm", &grants).is_empty());
        let over = RequestedGrants {
            exec: vec!["curl".into()],
            secrets: vec!["NPM_TOKEN".into()],
            ..RequestedGrants::default()
        };
        let excess = ceiling.excess("oci://r.example/x", &over);
        assert_eq!(excess.len(), 1, "{excess:?}");
        assert!(excess[0].contains("exec: [curl]"), "{excess:?}");
    }

    #[test]
    fn defaults_apply() {
        let c = parse("allow-unsigned: true\n").expect("valid");
        assert!(c.name.ends_with(&format!("-{}", std::process::id())));
        assert!(check_name(&c.name).is_ok(), "{}", c.name);
        assert_eq!(c.labels, LabelSet::any());
        assert_eq!(c.concurrency, 1);
        assert_eq!(c.plugin_cache, 64);
        assert!(c.ceiling.is_none() && c.nats.is_none());
        assert_eq!(c.ack_wait, Duration::from_secs(15));
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let (line, _, message, hint) = err("policy: p.yaml\nlabels: [os=linux]\nconcurency: 2\n");
        assert_eq!(line, 3);
        assert!(message.contains("unknown field `concurency`"), "{message}");
        assert!(hint.contains("`concurrency`"), "{hint}");

        let (line, column, message, _) = err("policy: p.yaml\nlabels: [os=linux, OS=mac]\n");
        assert_eq!((line, column), (2, 20));
        assert!(message.contains("`OS=mac`"), "{message}");

        let (line, _, message, _) = err("policy: p.yaml\nack-wait: 15\n");
        assert_eq!(line, 2);
        assert_eq!(message, "`15` has no unit");

        let (line, _, message, _) = err("labels: [os=linux]\n");
        assert_eq!(line, 1);
        assert!(message.contains("no operator policy"), "{message}");

        let (line, _, message, _) = err("policy: p\nsecrets:\n  A: { env: A, file: /a }\n");
        assert_eq!(line, 3);
        assert!(message.contains("exactly one of"), "{message}");

        let (line, _, message, _) = err("policy: p\nnats: { url: http://x }\n");
        assert_eq!(line, 2);
        assert!(message.contains("not a NATS URL"), "{message}");

        // A credentials file that is not there fails here, at its line,
        // not at the first connect with no location.
        let (line, column, message, hint) = err(
            "policy: p\nnats:\n  url: nats://127.0.0.1:4222\n  creds: /nonexistent/agent.creds\n",
        );
        assert_eq!((line, column), (4, 10));
        assert!(
            message.contains("cannot read the NATS credentials file /nonexistent/agent.creds"),
            "{message}"
        );
        assert!(hint.contains(".creds"), "{hint}");

        let (line, _, message, _) = err("policy: p\nconcurrency: 0\n");
        assert_eq!(line, 2);
        assert!(message.contains("never run"), "{message}");

        let (line, _, message, _) = err("policy: p\nname: \"-x\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("start with"), "{message}");

        let (line, _, message, _) = err("policy: p\npolicy: q\n");
        assert_eq!(line, 2);
        assert!(message.contains("twice"), "{message}");

        let (_, _, message, _) = err("");
        assert!(message.contains("empty"), "{message}");
    }

    #[test]
    fn ceiling_errors_point_into_the_config() {
        let (line, column, message, _) = err(
            "policy: p\naccept:\n  max-grants:\n    exec: [sleep]\n    network:\n      - \"api.example.com:443\"\n      - \"bad host:99999\"\n",
        );
        assert_eq!((line, column), (7, 9), "{message}");
        assert!(message.starts_with("accept.max-grants: "), "{message}");

        let (line, _, message, _) = err("policy: p\naccept:\n  max-grants:\n    exce: [sleep]\n");
        assert_eq!(line, 4);
        assert!(message.contains("unknown field `exce`"), "{message}");

        let (line, _, message, _) = err("policy: p\naccept:\n  max-grants:\n    workspace: all\n");
        assert_eq!(line, 4);
        assert!(message.contains("all"), "{message}");

        let (line, _, _, _) = err("policy: p\naccept:\n  max-grants: [exec]\n");
        assert_eq!(line, 3);

        let c = parse("policy: p\naccept: { max-grants: {} }\n").expect("empty caps");
        let anything = RequestedGrants {
            exec: vec!["rm".into()],
            workspace: "write".into(),
            ..RequestedGrants::default()
        };
        assert!(c
            .ceiling
            .expect("ceiling")
            .excess("x.wasm", &anything)
            .is_empty());
    }

    #[test]
    fn workspace_and_network_caps_apply() {
        let c = parse(
            "policy: p\naccept: { max-grants: { workspace: read, network: [\"*.internal:443\"], env: [CI] } }\n",
        )
        .expect("valid");
        let ceiling = c.ceiling.expect("ceiling");
        let over = RequestedGrants {
            workspace: "write".into(),
            network: vec!["evil.example:443".parse().expect("pattern")],
            env: vec!["CI".into(), "AWS_SECRET".into()],
            ..RequestedGrants::default()
        };
        let excess = ceiling.excess("x.wasm", &over);
        assert_eq!(excess.len(), 3, "{excess:?}");
        assert!(
            excess.iter().all(|e| e.contains(CEILING_RULE)),
            "{excess:?}"
        );
    }

    #[test]
    fn files_that_are_not_configs_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("missing.yaml");
        let e = AgentConfig::load(&missing).expect_err("missing");
        assert!(e.to_string().contains("missing.yaml"), "{e}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, b"policy: p\nname: \xff\n").expect("write");
        let (line, _) = AgentConfig::load(&bad)
            .expect_err("not utf-8")
            .location()
            .expect("located");
        assert_eq!(line, 2);
    }
}
