//! Choosing the input artifact to deploy (`with.artifact`).

use sluice_sdk::{Artifact, StageError};

/// The input `selector` names: an exact `stage/name`, or a glob over
/// `stage/name`. Without a selector: the only input, or else the only
/// `.tar.gz` / `.tgz` input.
pub fn select<'a>(
    inputs: &'a [Artifact],
    selector: Option<&str>,
) -> Result<&'a Artifact, StageError> {
    let full = |a: &Artifact| format!("{}/{}", a.stage, a.name);
    let listing = || {
        if inputs.is_empty() {
            "this stage has no input artifacts: add the build stage to `needs:`".to_string()
        } else {
            let names: Vec<_> = inputs.iter().map(full).collect();
            format!("inputs: {}", names.join(", "))
        }
    };
    let found: Vec<&Artifact> = match selector {
        Some(sel) => {
            if let Some(a) = inputs.iter().find(|a| full(a) == sel) {
                return Ok(a);
            }
            let pattern = glob::Pattern::new(sel).map_err(|e| {
                StageError::invalid_config(format!(
                    "with.artifact: `{sel}` is not a valid glob: {e}"
                ))
            })?;
            let opts = glob::MatchOptions {
                require_literal_separator: false,
                ..glob::MatchOptions::new()
            };
            inputs
                .iter()
                .filter(|a| pattern.matches_with(&full(a), opts))
                .collect()
        }
        None if inputs.len() == 1 => inputs.iter().collect(),
        None => inputs
            .iter()
            .filter(|a| {
                let n = a.name.to_ascii_lowercase();
                n.ends_with(".tar.gz") || n.ends_with(".tgz")
            })
            .collect(),
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(StageError::invalid_config(format!(
            "with.artifact: {} matches no input artifact ({})",
            selector.map_or("(not set)".to_string(), |s| format!("`{s}`")),
            listing()
        ))),
        many => Err(StageError::invalid_config(format!(
            "with.artifact: {} matches {} input artifacts ({}); name one as `stage/name`",
            selector.map_or("(not set)".to_string(), |s| format!("`{s}`")),
            many.len(),
            many.iter().map(|a| full(a)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(stage: &str, name: &str) -> Artifact {
        Artifact {
            stage: stage.into(),
            name: name.into(),
            digest: "sha256:00".into(),
            size: 1,
            media_type: "application/gzip".into(),
            ..Artifact::default()
        }
    }

    #[test]
    fn selects() {
        let inputs = vec![
            a("build", "out/app.tgz"),
            a("build", "build.json"),
            a("build", "provenance.intoto.json"),
        ];
        assert_eq!(select(&inputs, None).expect("default").name, "out/app.tgz");
        assert_eq!(
            select(&inputs, Some("build/build.json"))
                .expect("exact")
                .name,
            "build.json"
        );
        assert_eq!(
            select(&inputs, Some("*/out/*.tgz")).expect("glob").name,
            "out/app.tgz"
        );
        let e = select(&inputs, Some("build/*.json")).expect_err("many");
        assert!(e.message().contains("matches 2"), "{e}");
        let e = select(&inputs, Some("x/y")).expect_err("none");
        assert!(e.message().contains("inputs: build/out/app.tgz"), "{e}");
        assert!(select(&[], None)
            .expect_err("empty")
            .message()
            .contains("needs:"));
    }
}
