//! `build.json` (what was built: version, main digest, every output with
//! digest, size and media type, and the commands that ran) and the short
//! markdown summary of the report.

use std::fmt::Write;

use serde::Serialize;

use crate::commands::CommandRecord;
use crate::outputs::Output;

/// Name of the manifest artifact.
pub const NAME: &str = "build.json";
/// Its media type.
pub const MEDIA_TYPE: &str = "application/json";

/// The content of `build.json`.
#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    /// Format version of this file.
    pub schema: u32,
    /// The resolved version, if one was configured.
    pub version: Option<&'a str>,
    /// Digest of the main (first) output.
    pub digest: &'a str,
    /// Every published output, main first.
    pub artifacts: &'a [Output],
    /// The commands that ran, in order.
    pub commands: &'a [CommandRecord],
}

impl Manifest<'_> {
    /// Pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// `1.2 MiB`-style sizes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// `built 2 artifacts (12.3 KiB), version 0.3.0` and a table of outputs.
pub fn summary(outputs: &[Output], version: Option<&str>) -> String {
    let bytes: u64 = outputs.iter().map(|o| o.size).sum();
    let mut s = format!(
        "built {} artifact{} ({})",
        outputs.len(),
        if outputs.len() == 1 { "" } else { "s" },
        human_size(bytes)
    );
    if let Some(v) = version {
        let _ = write!(s, ", version {v}");
    }
    s.push_str("\n\n| artifact | size | digest |\n|---|---:|---|\n");
    for o in outputs {
        let short = o
            .digest
            .get(..("sha256:".len() + 12))
            .unwrap_or(o.digest.as_str());
        let _ = writeln!(s, "| `{}` | {} | `{short}…` |", o.name, human_size(o.size));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(name: &str, size: u64) -> Output {
        Output {
            name: name.into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size,
            media_type: "application/zip".into(),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn summary_lists_outputs() {
        let s = summary(
            &[output("dist/q.pyz", 2048), output("dist/q.sha256", 80)],
            Some("0.3.0"),
        );
        assert!(
            s.starts_with("built 2 artifacts (2.1 KiB), version 0.3.0\n"),
            "{s}"
        );
        assert!(
            s.contains("| `dist/q.pyz` | 2.0 KiB | `sha256:abababababab…` |"),
            "{s}"
        );
    }

    #[test]
    fn manifest_json() -> Result<(), serde_json::Error> {
        let outputs = [output("dist/q.pyz", 3)];
        let commands = [CommandRecord {
            argv: vec!["python3".into()],
            status: 0,
            duration_s: 0.5,
        }];
        let m = Manifest {
            schema: 1,
            version: None,
            digest: &outputs[0].digest,
            artifacts: &outputs,
            commands: &commands,
        };
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes())?;
        assert_eq!(v["artifacts"][0]["media_type"], "application/zip");
        assert_eq!(v["version"], serde_json::Value::Null);
        assert_eq!(v["commands"][0]["argv"][0], "python3");
        Ok(())
    }
}
