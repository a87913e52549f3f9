//! `sluice agent --config FILE [--listen unix:PATH]`: a long-lived agent
//! that runs stage jobs for coordinators (see `sluice_agent`).
//!
//! With `--listen unix:PATH` it serves `sluice run --agent unix:PATH` on
//! this machine; without it, it takes jobs from the NATS server of its
//! config's `nats:`. SIGTERM or SIGINT stop it gracefully: it takes no
//! more jobs, cancels the running ones and settles them before it exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use sluice_agent::{Agent, AgentConfig, ConfigError, StartError};
use sluice_fleet::transport::JobSource;
use sluice_fleet::uds::{Describer, UdsJobSource};
use sluice_fleet::FleetError;

/// Why `sluice agent` stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The config file is invalid (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The agent could not start: its policy is invalid (exit 2), or its
    /// engine or cache directory is unusable (exit 1).
    #[error(transparent)]
    Start(#[from] StartError),
    /// `--listen` is not `unix:PATH`.
    #[error("--listen `{value}` is not `unix:PATH`; give the socket's path, e.g. `--listen unix:/run/user/1000/sluice/agent.sock`")]
    BadListen {
        /// As given.
        value: String,
    },
    /// Neither `--listen` nor `nats:` in the config: nowhere to take jobs
    /// from.
    #[error("the agent has nowhere to take jobs from: give `--listen unix:PATH` for a local agent, or `nats: {{ url: nats://HOST:4222 }}` in {}", file.display())]
    NoSource {
        /// The config file.
        file: PathBuf,
    },
    /// The transport failed (the socket, NATS).
    #[error(transparent)]
    Transport(#[from] FleetError),
}

/// Run an agent until it is stopped; the text is its last word.
pub async fn agent(config_file: &Path, listen: Option<&str>) -> Result<String, AgentError> {
    let config = AgentConfig::load(config_file)?;
    let socket = listen
        .map(|value| {
            value
                .strip_prefix("unix:")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| AgentError::BadListen {
                    value: value.to_owned(),
                })
        })
        .transpose()?;
    if socket.is_none() && config.nats.is_none() {
        return Err(AgentError::NoSource {
            file: config.file.clone(),
        });
    }
    // Building the engine (and its pooling allocator) takes a moment.
    let agent = tokio::task::spawn_blocking(move || Agent::start(config))
        .await
        .map_err(|e| {
            StartError::Host(sluice_host::HostError::Engine(format!(
                "the starting thread failed: {e}"
            )))
        })??;
    let name = agent.name().to_owned();
    let config = agent.config();
    let (source, place): (Arc<dyn JobSource>, String) = match &socket {
        Some(path) => {
            let describer: Arc<dyn Describer> = agent.clone();
            let source = UdsJobSource::bind(
                path,
                &name,
                env!("CARGO_PKG_VERSION"),
                config.labels.clone(),
                describer,
            )
            .await?;
            (Arc::new(source), format!("unix:{}", path.display()))
        }
        None => {
            let Some(nats) = &config.nats else {
                return Err(AgentError::NoSource {
                    file: config.file.clone(),
                });
            };
            let mut settings = sluice_fleet::nats::NatsConfig::parse(&nats.url)?;
            settings.namespace = nats.namespace.clone();
            settings.creds = nats.creds.clone();
            settings.client_name = format!("sluice-agent {name}");
            settings.retry_on_initial_connect = true;
            settings.layout.ack_wait = config.ack_wait;
            settings.layout.heartbeat_ttl = config.heartbeat * 3;
            let layout = settings.connect().await?;
            let source = sluice_fleet::nats::NatsJobSource::new(
                layout,
                name.clone(),
                config.labels.clone(),
                u32::try_from(config.concurrency).unwrap_or(u32::MAX),
            )
            .await?;
            (
                Arc::new(source),
                format!("{} (namespace {})", nats.url, nats.namespace),
            )
        }
    };
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    tokio::spawn(sluice_agent::heartbeat::beat(
        agent.clone(),
        source.clone(),
        config.heartbeat,
        stop.clone(),
    ));
    // The line tests and scripts wait for: the agent takes jobs from now.
    eprintln!(
        "sluice agent {name}: taking jobs from {place} (labels {}, concurrency {})",
        config.labels, config.concurrency
    );
    let served = agent.serve(source, stop.clone()).await;
    stop.cancel();
    served?;
    Ok(format!(
        "sluice agent {name}: stopped after {} jobs\n",
        agent.jobs_done()
    ))
}

/// Cancel `stop` at the first SIGTERM or SIGINT.
async fn stop_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch for SIGTERM/SIGINT; stop the agent with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: no more jobs; running jobs are cancelled");
    stop.cancel();
}
