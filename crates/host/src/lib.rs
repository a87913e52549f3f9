//! The wasmtime embedding.
//!
//! - [`engine`]: engine configuration, pooling allocator sizing, the epoch
//!   ticker and the compile cache.
//! - [`bindings`]: the single `bindgen!` over `wit/stage.wit`.
//! - [`state`]: per-stage store data (WASI context, limits, grants).
//! - [`sandbox`]: building a stage's sandbox from grants and running it.
//! - `exec`, `secrets`, [`net`]: the host side of `exec`, `secrets` and
//!   outbound HTTP, each deny-by-default.
//! - [`logpipe`]: the stage log (redacting, truncating, streaming).
//! - [`fsguard`]: checks wasmtime-wasi leaves to the embedder (no opening
//!   FIFOs or devices).
//! - [`capabilities`]: what a plugin declares (`describe`) against its
//!   grants.
//! - [`stage_exec`]: the local executor ([`stage_exec::LocalExecutor`]),
//!   which runs a stage job in this process.
//!
//! This is the only crate that links wasmtime. It implements the engine's
//! executor port ([`sluice_engine::executor::Executor`]); nothing below it
//! (engine, record, trust, pipeline, files) may depend on it, and the CLI
//! is the only crate that wires it in.

pub mod bindings;
pub mod capabilities;
pub mod engine;
mod exec;
pub mod exec_v2;
pub mod fsguard;
pub mod guest_api;
pub mod logpipe;
pub mod net;
pub mod procs;
pub mod sandbox;
mod secrets;
pub mod stage_exec;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{types::ComponentItem, Component, Linker};
use wasmtime::Engine;

pub use engine::{CacheOutcome, PoolSizing};
use engine::{CompileCache, EpochTicker};
use state::StageState;

/// Errors setting up the host or loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// wasmtime rejected the engine configuration.
    #[error("could not start the WebAssembly engine: {0}")]
    Engine(String),
    /// The compile cache directory is unusable.
    #[error("compile cache {}: {message}", path.display())]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The bytes are not a valid component.
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    /// The component does not fit the `sluice:stage` world.
    #[error("the component does not implement the sluice:stage@{version} world: {message}")]
    WrongWorld {
        /// The version it looked like (`0.2.0` when it exports
        /// `sluice:stage/plugin@0.2.0`, else `0.1.0`).
        version: WitVersion,
        /// wasmtime's reason.
        message: String,
    },
}

/// Which version of the `sluice:stage` package a plugin targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum WitVersion {
    /// `sluice:stage@0.1.0`: exports the functions `describe` and `run`.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `sluice:stage@0.2.0`: exports the interface `plugin`.
    #[serde(rename = "0.2.0")]
    V0_2,
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WitVersion::V0_1 => "0.1.0",
            WitVersion::V0_2 => "0.2.0",
        })
    }
}

/// The export that marks a 0.2 component.
pub const PLUGIN_EXPORT_V2: &str = "sluice:stage/plugin@0.2.0";

/// A linked plugin, by the version of the world it targets.
#[derive(Clone)]
pub(crate) enum PluginPre {
    V1(bindings::v1::StagePre<StageState>),
    V2(bindings::v2::StagePre<StageState>),
}

/// A plugin ready to instantiate: compiled, linked, checked against the
/// world.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) pre: PluginPre,
    /// The `sluice:stage` version it targets.
    pub wit: WitVersion,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
    /// Time spent compiling or loading it.
    pub load_time: Duration,
}

/// Imports and exports of a component, by name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentShape {
    /// Imported interfaces and functions.
    pub imports: Vec<String>,
    /// Exported interfaces and functions.
    pub exports: Vec<String>,
}

/// The runner's WebAssembly host: one engine, one linker, one compile cache.
pub struct Host {
    engine: Engine,
    linker: Linker<StageState>,
    cache: CompileCache,
    _ticker: EpochTicker,
}

impl Host {
    /// Start an engine sized for `pool` with its compile cache at
    /// `cache_dir` (`None`: compile in memory, read no cache).
    pub fn new(cache_dir: Option<&Path>, pool: &PoolSizing) -> Result<Host, HostError> {
        let engine = engine::build_engine(pool)?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| HostError::Engine(format!("linking host functions: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        fsguard::add_to_linker(&mut linker).map_err(link)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
        // Both versions side by side: their interfaces have different
        // names (`…@0.1.0`, `…@0.2.0`), and WASI is shared.
        type Own = wasmtime::component::HasSelf<StageState>;
        bindings::wit_exec_v1::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_secrets_v1::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_v1::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_exec::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_secrets::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_log::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit_cancel::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        bindings::wit::add_to_linker::<_, Own>(&mut linker, |s| s).map_err(link)?;
        let cache = match cache_dir {
            Some(dir) => CompileCache::open(dir, &engine)?,
            None => CompileCache::disabled(),
        };
        let ticker = EpochTicker::start(&engine);
        Ok(Host {
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }

    /// The engine (for tools such as `plugin inspect`).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile (or load from cache) and link a plugin whose bytes have
    /// already been read and hashed (`digest`). Blocking: call from a
    /// blocking thread when compiling several at once.
    pub fn load(&self, bytes: &[u8], digest: &str) -> Result<Plugin, HostError> {
        check_component_header(bytes)?;
        let (component, cache, load_time) =
            self.cache.load_or_compile(&self.engine, digest, bytes)?;
        let wit = wit_version(&component, &self.engine);
        let wrong = |e: wasmtime::Error| HostError::WrongWorld {
            version: wit,
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(wrong)?;
        let pre = match wit {
            WitVersion::V0_1 => PluginPre::V1(bindings::v1::StagePre::new(pre).map_err(wrong)?),
            WitVersion::V0_2 => PluginPre::V2(bindings::v2::StagePre::new(pre).map_err(wrong)?),
        };
        Ok(Plugin {
            pre,
            wit,
            digest: digest.to_string(),
            cache,
            load_time,
        })
    }

    /// Imports and exports of a component (compiled, not instantiated).
    pub fn shape(&self, bytes: &[u8]) -> Result<ComponentShape, HostError> {
        check_component_header(bytes)?;
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| HostError::InvalidComponent(format!("{e:#}")))?;
        Ok(shape_of(&component, &self.engine))
    }
}

/// 0.2 if the component exports [`PLUGIN_EXPORT_V2`], else 0.1 (whose
/// exports, the functions `describe` and `run`, the linking then checks).
fn wit_version(component: &Component, engine: &Engine) -> WitVersion {
    let exports_v2 = component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name == PLUGIN_EXPORT_V2);
    if exports_v2 {
        WitVersion::V0_2
    } else {
        WitVersion::V0_1
    }
}

/// [`sluice_engine::admission::check_component_header`], as a [`HostError`].
fn check_component_header(bytes: &[u8]) -> Result<(), HostError> {
    sluice_engine::admission::check_component_header(bytes)
        .map_err(|e| HostError::InvalidComponent(e.to_string()))
}

fn item_kind(item: &ComponentItem) -> &'static str {
    match item {
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::ComponentInstance(_) => "interface",
        ComponentItem::Resource(_) => "resource",
        ComponentItem::Type(_) => "type",
        _ => "item",
    }
}

fn shape_of(component: &Component, engine: &Engine) -> ComponentShape {
    let ty = component.component_type();
    let list = |items: Vec<(String, &'static str)>| {
        items
            .into_iter()
            .map(|(n, k)| {
                if k == "interface" {
                    n
                } else {
                    format!("{n} ({k})")
                }
            })
            .collect()
    };
    ComponentShape {
        imports: list(
            ty.imports(engine)
                .map(|(n, i)| (n.to_string(), item_kind(&i.ty)))
                .collect(),
        ),
        exports: list(
            ty.exports(engine)
                .map(|(n, i)| (n.to_string(), item_kind(&i.ty)))
                .collect(),
        ),
    }
}
