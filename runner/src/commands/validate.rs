//! `sluice validate`.

use std::path::Path;

use sluice_pipeline::{self as pipeline, PipelineError};

/// Check a pipeline and describe it in one paragraph.
pub fn validate(path: &Path) -> Result<String, PipelineError> {
    let p = pipeline::load(path)?;
    let mut out = format!(
        "{}: pipeline `{}` is valid: {} stage{}\n",
        path.display(),
        p.name,
        p.stages.len(),
        if p.stages.len() == 1 { "" } else { "s" }
    );
    for name in p.topo_order() {
        if let Some(s) = p.stages.get(name) {
            let needs = if s.needs.is_empty() {
                String::new()
            } else {
                format!(" (needs {})", s.needs.join(", "))
            };
            out.push_str(&format!("  {name}: {}{needs}\n", s.uses));
        }
    }
    Ok(out)
}
