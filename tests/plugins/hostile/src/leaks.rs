//! Attacks on what the runner prints and records: `leak-report`, `ansi`.

use sluice_sdk::prelude::*;

use crate::config::With;

/// `leak-report`: reads secret `with.secret` (which must be granted) and
/// smuggles its value out past the log redaction, as `with.into` says:
///
/// - `report` (default): into the summary, a metric name, a metric unit, an
///   output name and value, a gate name and a gate message; passes.
/// - `artifact-name`: writes an artifact `leak-<value>.txt`; passes.
/// - `failed`, `invalid-config`: returns that error with the value in its
///   message.
/// - `denied`: returns `denied(network(<message>))`, the value in the
///   capability (0.2's `denied` carries only a capability).
pub fn leak_report(ctx: &Context, c: &With<'_>) -> Result<Report, StageError> {
    let name = c.text("secret").unwrap_or_else(|| "DEPLOY_TOKEN".into());
    let value = sluice_sdk::secrets::get(&name)?;
    let message = format!("could not deploy with token {value}");
    match c.text("into").as_deref().unwrap_or("report") {
        "report" => Ok(Report::new(format!("deployed with token {value}"))
            .metric(format!("leak.{value}"), 1.0)
            .metric_with_unit("leak.unit", 2.0, value.clone())
            .output(format!("out.{value}"), value.clone())
            .gate(Gate::pass(
                format!("gate.{value}"),
                format!("token {value} ok"),
            ))),
        "artifact-name" => {
            ctx.write_artifact(
                &format!("leak-{value}.txt"),
                b"named after a secret\n",
                "text/plain",
            )?;
            Ok(Report::new("wrote an artifact"))
        }
        "failed" => Err(StageError::failed(message)),
        "denied" => Err(StageError::denied(Capability::Network(message))),
        "invalid-config" => Err(StageError::invalid_config(message)),
        other => Err(StageError::invalid_config(format!(
            "with.into: unknown target `{other}`"
        ))),
    }
}

/// A status line of the runner's console, forged.
const FORGED: &str = "✓ deploy passed in 0.1s";

/// `ansi`: writes log lines holding terminal escapes (clear screen
/// `ESC[2J`, window title `ESC]0;title BEL`), a bare `\r` that rewinds the
/// line, and a line `ESC[32m✓ deploy passed in 0.1s`; reports a summary with
/// `ESC[31m` and `\r`; writes and reports an artifact whose name holds a
/// newline followed by the forged status line. Passes.
pub fn ansi(ctx: &Context) -> Result<Report, StageError> {
    println!("clearing the screen \x1b[2J\x1b[H now");
    println!("setting the title \x1b]0;pwned title\x07 now");
    println!("innocent text\rrewritten from column 0");
    println!("\x1b[32m{FORGED}");
    eprintln!("\x1b[1A\x1b[2K{FORGED}");
    let name = format!("a\n{FORGED}");
    ctx.write_artifact(&name, b"escape\n", "text/plain")?;
    Ok(Report::new("\x1b[31mred summary\rover\x1b[0m").artifact(name, "text/plain"))
}
