//! Embeds what `sluice new` writes into the binary (so it works without the
//! repository): the stage templates (`templates/`, and the C helper header
//! `../examples/stages/c/sluice_stage.h`), the WIT package
//! (`../wit/v0.2/*.wit` and its WASI deps `../wit/deps/`), and the Python
//! and JavaScript SDK sources (`../sdk/python/sluice_stage/`,
//! `../sdk/js/src/`). It writes `$OUT_DIR/embedded.rs`: one
//! `&[(&str, &[u8])]` table per set, each entry `include_bytes!` of a file.
//!
//! A build script rather than `include_dir!`: the SDK directories may be
//! absent (an empty set is embedded, and `sluice new` says so), the
//! `wit/v0.2/deps` symbolic link must not be walked twice, caches
//! (`__pycache__`, `node_modules`) are skipped, and every directory is a
//! `rerun-if-changed` input, so an edited template is picked up by the next
//! `cargo build`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directory and file names never embedded.
const SKIP: &[&str] = &["__pycache__", "node_modules", ".pytest_cache", ".DS_Store"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let mut code = String::new();
    let sets: [(&str, Vec<(String, PathBuf)>); 4] = [
        ("TEMPLATES", templates(&manifest, &root)),
        ("WIT", wit_files(&root.join("wit"))),
        (
            "SDK_PYTHON",
            walk(&root.join("sdk/python/sluice_stage"), "sluice_stage/"),
        ),
        ("SDK_JS", walk(&root.join("sdk/js/src"), "sluice-stage/")),
    ];
    println!("cargo:rerun-if-changed=build.rs");
    for dir in [
        manifest.join("templates"),
        root.join("wit"),
        root.join("sdk/python/sluice_stage"),
        root.join("sdk/js/src"),
        root.join("sdk"),
    ] {
        // Only existing ones: cargo reruns a script on every build for a
        // path that does not exist.
        if dir.exists() {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
    }
    for (name, files) in sets {
        let _ = writeln!(code, "/// Embedded files: (relative path, bytes).");
        let _ = writeln!(code, "pub static {name}: &[(&str, &[u8])] = &[");
        for (rel, path) in files {
            let _ = writeln!(
                code,
                "    ({rel:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
        let _ = writeln!(code, "];");
    }
    if let Err(e) = std::fs::write(out.join("embedded.rs"), code) {
        panic!("cannot write embedded.rs: {e}");
    }
}

/// `templates/**`, plus the C helper header, which lives beside the C
/// example (`examples/stages/c/sluice_stage.h`, one copy) and goes into
/// every C stage project.
fn templates(manifest: &Path, root: &Path) -> Vec<(String, PathBuf)> {
    let mut files = walk(&manifest.join("templates"), "");
    let helper = root.join("examples/stages/c/sluice_stage.h");
    println!("cargo:rerun-if-changed={}", helper.display());
    if helper.is_file() {
        files.push(("stage/c/sluice_stage.h".into(), helper));
    }
    files.sort();
    files
}

/// `wit/v0.2/*.wit` as `wit/<name>`, and `wit/deps/**` as `wit/deps/...`.
fn wit_files(wit: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(wit.join("v0.2")) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && path.extension().is_some_and(|e| e == "wit") {
                files.push((format!("wit/{}", entry.file_name().to_string_lossy()), path));
            }
        }
    }
    files.extend(walk(&wit.join("deps"), "wit/deps/"));
    files.sort();
    files
}

/// Every regular file under `dir` (symbolic links not followed), as
/// `prefix` + its `/`-separated path relative to `dir`, sorted.
fn walk(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), prefix.to_string())];
    while let Some((d, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if SKIP.contains(&name.as_str()) || name.ends_with(".pyc") {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push((entry.path(), format!("{rel}{name}/")));
            } else if kind.is_file() {
                files.push((format!("{rel}{name}"), entry.path()));
            }
        }
    }
    files.sort();
    files
}
