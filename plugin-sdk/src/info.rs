//! [`PluginInfo`] and [`Capability`]: what a plugin says about itself.

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
    /// lint, test, scan, build, deploy, smoke, canary, monitor, remediate or `custom`.
    pub kind: String,
    /// One sentence on what the stage does.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the `with:` block.
    pub config_schema: Option<String>,
    /// Capabilities the stage may use.
    pub capabilities: Vec<Capability>,
}

impl PluginInfo {
    /// Name, version, kind and one-sentence description.
    ///
    /// ```
    /// let info = sluice_sdk::PluginInfo::new("hello", "0.1.0", "custom", "Says hello");
    /// # assert_eq!(info.kind, "custom");
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
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
    /// # assert_eq!(info.kind, "scan");
    /// ```
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
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
            kind: self.kind,
            description: self.description,
            config_schema: self.config_schema,
            capabilities: self
                .capabilities
                .into_iter()
                .map(|c| match c {
                    Capability::WorkspaceRead => wit::Capability::WorkspaceRead,
                    Capability::WorkspaceWrite => wit::Capability::WorkspaceWrite,
                    Capability::Env(s) => wit::Capability::Env(s),
                    Capability::Network(s) => wit::Capability::Network(s),
                    Capability::Exec(s) => wit::Capability::Exec(s),
                    Capability::Secret(s) => wit::Capability::Secret(s),
                })
                .collect(),
        }
    }
}
