//! `sluice agents list [--nats URL] [--json]`: the agents of a fleet, from
//! their heartbeats in NATS (an agent whose heartbeats stopped drops out
//! after three intervals).

use std::fmt::Write as _;

use sluice_fleet::nats::NatsConfig;
use sluice_fleet::proto::Heartbeat;
use sluice_fleet::FleetError;

/// Why `sluice agents list` failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// The URL is wrong, or NATS cannot be reached or answered wrongly.
    #[error(transparent)]
    Nats(#[from] FleetError),
}

/// The live agents, as a table or as JSON (one array of heartbeats).
pub async fn list(nats: &str, json: bool) -> Result<String, AgentsError> {
    let mut config = NatsConfig::parse(nats)?;
    config.client_name = format!("sluice agents list {}", std::process::id());
    let layout = config.connect().await?;
    let mut agents = sluice_fleet::nats::dispatch::live_agents(&layout).await?;
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        let mut text =
            serde_json::to_string_pretty(&agents).map_err(|source| FleetError::Encode {
                what: "the agent list",
                source,
            })?;
        text.push('\n');
        return Ok(text);
    }
    Ok(table(&agents, &config.namespace))
}

/// The heartbeats as a table.
fn table(agents: &[Heartbeat], namespace: &str) -> String {
    if agents.is_empty() {
        return format!(
            "no live agents in namespace `{namespace}` (start one with `sluice agent --config FILE`)\n"
        );
    }
    let rows: Vec<[String; 6]> = agents
        .iter()
        .map(|a| {
            let mut name = a.name.clone();
            if a.allow_unsigned {
                name.push_str(" (unsigned allowed)");
            }
            [
                name,
                a.labels.to_string(),
                format!("{}/{}", a.running.len(), a.slots),
                a.version.clone(),
                a.host.clone(),
                a.started_at.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "LABELS", "RUNNING", "VERSION", "HOST", "STARTED"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up_and_says_when_there_is_nobody() {
        let beat = |name: &str, labels: &str| Heartbeat {
            name: name.into(),
            version: "0.1.0".into(),
            labels: labels.parse().expect("labels"),
            slots: 2,
            running: Vec::new(),
            secrets: Vec::new(),
            host: "h".into(),
            started_at: "2026-12-07T13:00:00Z".into(),
            shared_workspace: true,
            allow_unsigned: false,
        };
        let text = table(&[beat("a1", "os=linux"), beat("agent-two", "any")], "t1");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME       LABELS"), "{text}");
        assert!(lines[1].starts_with("a1         os=linux  0/2"), "{text}");
        assert!(table(&[], "t1").contains("no live agents in namespace `t1`"));
    }
}
