//! [`PluginInfo`], [`StageKind`] and [`Capability`]: what a plugin says
//! about itself.

use std::fmt;

use crate::bindings::sluice::stage::types as wit;

/// The kind of access a stage asks for.
///
/// The runner warns when a pipeline grants less than a stage declares, and
/// never grants more than the pipeline names.
///
/// ```
/// use sluice_sdk::Capability;
/// let caps = [Capability::WorkspaceRead, Capability::exec("cargo"), Capability::network("*:443")];
/// # assert_eq!(caps.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Read the workspace at `/workspace`.
    WorkspaceRead,
    /// Write the workspace at `/workspace`.
    WorkspaceWrite,
    /// Read the named environment variable.
    Env(String),
    /// Connect over HTTP to `host:port` (patterns allowed, e.g. `*:443`).
    Network(String),
    /// Run the named host program through [`exec`](crate::exec).
    Exec(String),
    /// Read the named secret through [`secrets`](crate::secrets).
    Secret(String),
}

impl Capability {
    /// [`Capability::Env`].
    ///
    /// ```
    /// let c = sluice_sdk::Capability::env("CI");
    /// # assert_eq!(c, sluice_sdk::Capability::Env("CI".into()));
    /// ```
    pub fn env(name: impl Into<String>) -> Self {
        Self::Env(name.into())
    }

    /// [`Capability::Network`].
    ///
    /// ```
    /// let c = sluice_sdk::Capability::network("prometheus:9090");
    /// # assert!(matches!(c, sluice_sdk::Capability::Network(_)));
    /// ```
    pub fn network(host_port: impl Into<String>) -> Self {
        Self::Network(host_port.into())
    }

    /// [`Capability::Exec`].
    ///
    /// ```
    /// let c = sluice_sdk::Capability::exec("cargo");
    /// # assert!(matches!(c, sluice_sdk::Capability::Exec(_)));
    /// ```
    pub fn exec(program: impl Into<String>) -> Self {
        Self::Exec(program.into())
    }

    /// [`Capability::Secret`].
    ///
    /// ```
    /// let c = sluice_sdk::Capability::secret("DEPLOY_TOKEN");
    /// # assert!(matches!(c, sluice_sdk::Capability::Secret(_)));
    /// ```
    pub fn secret(name: impl Into<String>) -> Self {
        Self::Secret(name.into())
    }

    /// The pipeline grant that allows this capability, as a person would
    /// write it in the stage's `grants:`.
    ///
    /// ```
    /// use sluice_sdk::Capability;
    /// assert_eq!(Capability::exec("cargo").grant(), "exec: [cargo]");
    /// assert_eq!(Capability::WorkspaceWrite.grant(), "workspace: write");
    /// ```
    pub fn grant(&self) -> String {
        match self {
            Self::WorkspaceRead => "workspace: read".to_string(),
            Self::WorkspaceWrite => "workspace: write".to_string(),
            Self::Env(n) => format!("env: [{n}]"),
            Self::Network(n) => format!("network: [\"{n}\"]"),
            Self::Exec(n) => format!("exec: [{n}]"),
            Self::Secret(n) => format!("secrets: [{n}]"),
        }
    }

    pub(crate) fn into_wit(self) -> wit::Capability {
        match self {
            Self::WorkspaceRead => wit::Capability::WorkspaceRead,
            Self::WorkspaceWrite => wit::Capability::WorkspaceWrite,
            Self::Env(s) => wit::Capability::Env(s),
            Self::Network(s) => wit::Capability::Network(s),
            Self::Exec(s) => wit::Capability::Exec(s),
            Self::Secret(s) => wit::Capability::Secret(s),
        }
    }
}

impl fmt::Display for Capability {
    /// `workspace read`, `workspace write`, `env FOO`, `network host:443`,
    /// `exec cargo` or `secret TOKEN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WorkspaceRead => f.write_str("workspace read"),
            Self::WorkspaceWrite => f.write_str("workspace write"),
            Self::Env(n) => write!(f, "env {n}"),
            Self::Network(n) => write!(f, "network {n}"),
            Self::Exec(n) => write!(f, "exec {n}"),
            Self::Secret(n) => write!(f, "secret {n}"),
        }
    }
}

/// What kind of stage a plugin is; the runner and its reports use it for
/// display only.
///
/// Convert from text with `From<&str>`: the built-in kinds by name, anything
/// else becomes [`StageKind::Custom`].
///
/// ```
/// use sluice_sdk::StageKind;
/// assert_eq!(StageKind::from("lint"), StageKind::Lint);
/// assert_eq!(StageKind::from("docs"), StageKind::Custom("docs".into()));
/// assert_eq!(StageKind::Canary.as_str(), "canary");
/// assert_eq!(StageKind::Scan, "scan");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// Static checks.
    Lint,
    /// Tests.
    Test,
    /// Security scanning.
    Scan,
    /// Building something to ship.
    Build,
    /// Deploying it.
    Deploy,
    /// Smoke tests against a deployment.
    Smoke,
    /// Canary analysis.
    Canary,
    /// Watching a deployment.
    Monitor,
    /// Putting things right after a failure.
    Remediate,
    /// A kind of the author's own (lowercase, dash-separated).
    Custom(String),
}

impl StageKind {
    /// The kind's name: `lint` … `remediate`, or the custom word.
    ///
    /// ```
    /// assert_eq!(sluice_sdk::StageKind::Custom("docs".into()).as_str(), "docs");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::Lint => "lint",
            Self::Test => "test",
            Self::Scan => "scan",
            Self::Build => "build",
            Self::Deploy => "deploy",
            Self::Smoke => "smoke",
            Self::Canary => "canary",
            Self::Monitor => "monitor",
            Self::Remediate => "remediate",
            Self::Custom(s) => s,
        }
    }

    pub(crate) fn into_wit(self) -> wit::StageKind {
        match self {
            Self::Lint => wit::StageKind::Lint,
            Self::Test => wit::StageKind::Test,
            Self::Scan => wit::StageKind::Scan,
            Self::Build => wit::StageKind::Build,
            Self::Deploy => wit::StageKind::Deploy,
            Self::Smoke => wit::StageKind::Smoke,
            Self::Canary => wit::StageKind::Canary,
            Self::Monitor => wit::StageKind::Monitor,
            Self::Remediate => wit::StageKind::Remediate,
            Self::Custom(s) => wit::StageKind::Custom(s),
        }
    }
}

impl From<&str> for StageKind {
    fn from(s: &str) -> Self {
        match s {
            "lint" => Self::Lint,
            "test" => Self::Test,
            "scan" => Self::Scan,
            "build" => Self::Build,
            "deploy" => Self::Deploy,
            "smoke" => Self::Smoke,
            "canary" => Self::Canary,
            "monitor" => Self::Monitor,
            "remediate" => Self::Remediate,
            other => Self::Custom(other.to_string()),
        }
    }
}

impl From<String> for StageKind {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl PartialEq<str> for StageKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StageKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin says about itself, returned by
/// [`Stage::describe`](crate::Stage::describe).
///
/// ```
/// use sluice_sdk::{Capability, PluginInfo};
///
/// let info = PluginInfo::new("lint", env!("CARGO_PKG_VERSION"), "lint", "Runs clippy")
///     .config_schema(r#"{"type":"object","properties":{"paths":{"type":"array"}}}"#)
///     .capability(Capability::WorkspaceRead)
///     .capability(Capability::exec("cargo"));
/// assert_eq!(info.capabilities.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short name, for example `lint`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The stage kind.
    pub kind: StageKind,
    /// One sentence on what the stage does.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the `with:` block.
    pub config_schema: Option<String>,
    /// Capabilities the stage may use.
    pub capabilities: Vec<Capability>,
}

impl PluginInfo {
    /// Name, version, kind (a [`StageKind`] or its name) and one-sentence
    /// description.
    ///
    /// ```
    /// use sluice_sdk::{PluginInfo, StageKind};
    /// let info = PluginInfo::new("hello", "0.1.0", "custom", "Says hello");
    /// assert_eq!(info.kind, StageKind::Custom("custom".into()));
    /// let info = PluginInfo::new("lint", "0.1.0", StageKind::Lint, "Lints");
    /// assert_eq!(info.kind, "lint");
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<StageKind>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            kind: kind.into(),
            description: description.into(),
            config_schema: None,
            capabilities: Vec::new(),
        }
    }

    /// Replaces the stage kind.
    ///
    /// ```
    /// let info = sluice_sdk::PluginInfo::new("x", "0.1.0", "custom", "X").kind("scan");
    /// # assert_eq!(info.kind, sluice_sdk::StageKind::Scan);
    /// ```
    pub fn kind(mut self, kind: impl Into<StageKind>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Replaces the description.
    ///
    /// ```
    /// let info = sluice_sdk::PluginInfo::new("x", "0.1.0", "custom", "").description("Does X");
    /// # assert_eq!(info.description, "Does X");
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Publishes a JSON Schema for the `with:` block; the runner validates
    /// `with:` against it before the stage starts.
    ///
    /// ```
    /// let info = sluice_sdk::PluginInfo::new("x", "0.1.0", "custom", "X")
    ///     .config_schema(r#"{"type":"object","required":["url"]}"#);
    /// # assert!(info.config_schema.is_some());
    /// ```
    pub fn config_schema(mut self, json_schema: impl Into<String>) -> Self {
        self.config_schema = Some(json_schema.into());
        self
    }

    /// Adds one capability.
    ///
    /// ```
    /// let info = sluice_sdk::PluginInfo::new("x", "0.1.0", "custom", "X")
    ///     .capability(sluice_sdk::Capability::WorkspaceWrite);
    /// # assert_eq!(info.capabilities.len(), 1);
    /// ```
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Adds several capabilities.
    ///
    /// ```
    /// use sluice_sdk::Capability;
    /// let info = sluice_sdk::PluginInfo::new("x", "0.1.0", "custom", "X")
    ///     .capabilities([Capability::WorkspaceRead, Capability::env("HOME")]);
    /// # assert_eq!(info.capabilities.len(), 2);
    /// ```
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities.extend(capabilities);
        self
    }

    pub(crate) fn into_wit(self) -> wit::PluginInfo {
        wit::PluginInfo {
            name: self.name,
            version: self.version,
            kind: self.kind.into_wit(),
            description: self.description,
            config_schema: self.config_schema,
            capabilities: self
                .capabilities
                .into_iter()
                .map(Capability::into_wit)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_text() {
        for k in [
            "lint",
            "test",
            "scan",
            "build",
            "deploy",
            "smoke",
            "canary",
            "monitor",
            "remediate",
        ] {
            let kind = StageKind::from(k);
            assert!(!matches!(kind, StageKind::Custom(_)), "{k}");
            assert_eq!(kind.as_str(), k);
        }
        assert_eq!(
            StageKind::from("custom"),
            StageKind::Custom("custom".into())
        );
    }

    #[test]
    fn capabilities_name_their_grant() {
        assert_eq!(Capability::env("CI").grant(), "env: [CI]");
        assert_eq!(
            Capability::network("api:443").grant(),
            "network: [\"api:443\"]"
        );
        assert_eq!(Capability::secret("T").grant(), "secrets: [T]");
        assert_eq!(Capability::WorkspaceRead.to_string(), "workspace read");
    }
}
