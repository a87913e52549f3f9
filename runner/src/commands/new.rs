//! `sluice new stage NAME --lang L` and `sluice new pipeline`.
//!
//! Everything written comes from the binary itself (see `build.rs`): the
//! templates of `runner/templates/`, the `sluice:stage@0.2.0` WIT with its
//! WASI deps, and the Python and JavaScript SDK sources, so `sluice new`
//! works without the repository. Only two things point back at a
//! repository, and both can be given instead: the Rust SDK (`plugin-sdk`
//! is not on crates.io, so the generated crate depends on it by path) and
//! the reference plugins a starter pipeline `uses:`.

use std::path::{Path, PathBuf};

use crate::cli::{NewCommand, StageLang};

/// The files embedded by `build.rs`.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The repository this binary was built from (it may be gone).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Why `sluice new` wrote nothing (or not everything).
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The stage name is not a stage name.
    #[error("{problem}; use lowercase letters, digits, `-` and `_`, starting with a letter or digit (e.g. `todo-check`)")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The target directory exists and is not empty.
    #[error("{} already exists and is not empty; pick another --dir or remove it", dir.display())]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// The pipeline file exists already.
    #[error("{} already exists; sluice new pipeline does not overwrite it (move it away to start again)", file.display())]
    PipelineExists {
        /// The file.
        file: PathBuf,
    },
    /// This binary carries no template or SDK for the language.
    #[error(
        "this sluice binary was built without {what}; build it from a checkout that has {where_}"
    )]
    NotEmbedded {
        /// What is missing.
        what: &'static str,
        /// Where it comes from in the repository.
        where_: &'static str,
    },
    /// The Rust SDK cannot be found.
    #[error("the Rust SDK (plugin-sdk, not published on crates.io) is needed by path: {why}; give --sdk-path DIR pointing at a sluice checkout's plugin-sdk directory")]
    SdkPath {
        /// What is wrong.
        why: String,
    },
    /// The reference plugins cannot be found.
    #[error("the reference plugins (lint.wasm, test.wasm, scan.wasm, build.wasm) are needed: {why}; give --plugins DIR (a sluice checkout's dist/plugins, built by scripts/build-plugins.sh)")]
    Plugins {
        /// What is wrong.
        why: String,
    },
    /// The project type is not recognised.
    #[error("{} holds no project sluice new pipeline knows: looked for Cargo.toml (Rust), package.json with a \"test\" script (Node with npm), and pytest in pyproject.toml, setup.cfg or requirements*.txt, or a tests/ directory with test_*.py (Python)", dir.display())]
    UnknownProject {
        /// The directory.
        dir: PathBuf,
    },
    /// A file cannot be written (or a directory read).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `sluice new …`; returns what to print.
pub fn new(command: &NewCommand) -> Result<String, NewError> {
    match command {
        NewCommand::Stage {
            name,
            lang,
            dir,
            sdk_path,
        } => new_stage(name, *lang, dir.as_deref(), sdk_path.as_deref()),
        NewCommand::Pipeline { dir, plugins } => new_pipeline(dir.as_deref(), plugins.as_deref()),
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> NewError + '_ {
    move |source| NewError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The placeholders of a stage template.
struct Names {
    name: String,
    snake: String,
    camel: String,
}

impl Names {
    fn of(name: &str) -> Names {
        let snake = name.replace('-', "_");
        let mut camel = String::new();
        let mut upper = false;
        for c in name.chars() {
            if c == '-' || c == '_' {
                upper = !camel.is_empty();
            } else if upper {
                camel.extend(c.to_uppercase());
                upper = false;
            } else {
                camel.push(c);
            }
        }
        Names {
            name: name.to_owned(),
            snake,
            camel,
        }
    }

    fn apply(&self, text: &str, extra: &[(&str, String)]) -> String {
        let mut out = text
            .replace("{{name}}", &self.name)
            .replace("{{name_snake}}", &self.snake)
            .replace("{{name_camel}}", &self.camel)
            .replace("{{sluice_version}}", env!("CARGO_PKG_VERSION"));
        for (k, v) in extra {
            out = out.replace(k, v);
        }
        out
    }
}

fn lang_dir(lang: StageLang) -> &'static str {
    match lang {
        StageLang::Rust => "rust",
        StageLang::Python => "python",
        StageLang::Js => "js",
        StageLang::C => "c",
    }
}

/// `dir` is absent or an empty directory.
fn ensure_empty(dir: &Path) -> Result<(), NewError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(NewError::NotEmpty {
                    dir: dir.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(NewError::NotEmpty {
            dir: dir.to_path_buf(),
        }),
        Err(source) => Err(NewError::Write {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), NewError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    std::fs::write(path, bytes).map_err(write_err(path))?;
    #[cfg(unix)]
    if path.extension().is_some_and(|e| e == "sh") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(write_err(path))?;
    }
    Ok(())
}

/// The Rust SDK directory: `--sdk-path`, else the repository this binary
/// was built from.
fn sdk_path(given: Option<&Path>) -> Result<PathBuf, NewError> {
    let (dir, from_flag) = match given {
        Some(d) => (d.to_path_buf(), true),
        None => (Path::new(BUILT_FROM).join("plugin-sdk"), false),
    };
    let manifest = dir.join("Cargo.toml");
    let is_sdk = std::fs::read_to_string(&manifest)
        .map(|t| t.contains("name = \"sluice-sdk\""))
        .unwrap_or(false);
    if !is_sdk {
        let why = if from_flag {
            format!("{} is not the sluice-sdk crate", manifest.display())
        } else {
            format!(
                "the repository this binary was built from has no {}",
                manifest.display()
            )
        };
        return Err(NewError::SdkPath { why });
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

fn new_stage(
    name: &str,
    lang: StageLang,
    dir: Option<&Path>,
    sdk: Option<&Path>,
) -> Result<String, NewError> {
    sluice_types::StageName::new(name.to_owned()).map_err(|e| NewError::Name {
        name: name.to_owned(),
        problem: e.to_string(),
    })?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    ensure_empty(&dir)?;
    let prefix = format!("stage/{}/", lang_dir(lang));
    let template: Vec<(&str, &[u8])> = embedded::TEMPLATES
        .iter()
        .filter_map(|(path, bytes)| path.strip_prefix(prefix.as_str()).map(|p| (p, *bytes)))
        .collect();
    if template.is_empty() {
        return Err(NewError::NotEmbedded {
            what: "this language's stage template",
            where_: "runner/templates/stage/<lang>/",
        });
    }
    let sdk_files: &[(&str, &[u8])] = match lang {
        StageLang::Python => embedded::SDK_PYTHON,
        StageLang::Js => embedded::SDK_JS,
        StageLang::Rust | StageLang::C => &[],
    };
    if sdk_files.is_empty() && matches!(lang, StageLang::Python | StageLang::Js) {
        return Err(NewError::NotEmbedded {
            what: "this language's SDK",
            where_: "sdk/python/sluice_stage/ and sdk/js/src/",
        });
    }
    let mut extra = Vec::new();
    if lang == StageLang::Rust {
        extra.push(("{{sdk_path}}", sdk_path(sdk)?.display().to_string()));
    }
    let names = Names::of(name);
    for (rel, bytes) in &template {
        let target = dir.join(names.apply(rel, &extra));
        match std::str::from_utf8(bytes) {
            Ok(text) => write_file(&target, names.apply(text, &extra).as_bytes())?,
            Err(_) => write_file(&target, bytes)?,
        }
    }
    for (rel, bytes) in embedded::WIT.iter().chain(sdk_files) {
        write_file(&dir.join(rel), bytes)?;
    }
    let steps: &[&str] = match lang {
        StageLang::Rust => &[
            "cargo test                      # the logic, natively",
            "./build.sh                      # cargo build --target wasm32-wasip2 (rustup target add wasm32-wasip2)",
        ],
        StageLang::Python => &[
            "python3 -m pytest               # the logic, natively, with the SDK's fake host",
            "./build.sh                      # componentize-py (pip install componentize-py==0.25.1)",
        ],
        StageLang::Js => &[
            "npm install                     # ComponentizeJS, pinned in package.json",
            "node --test                     # the logic, natively, with the SDK's fake host",
            "./build.sh",
        ],
        StageLang::C => &[
            "./test.sh                       # the logic, natively",
            "./build.sh                      # wit-bindgen c + clang-19 (see README.md)",
        ],
    };
    let mut out = format!(
        "wrote the {} stage `{name}` to {}\n\nnext steps:\n  cd {}\n",
        lang_dir(lang),
        dir.display(),
        dir.display()
    );
    for step in steps {
        out.push_str(&format!("  {step}\n"));
    }
    out.push_str(&format!(
        "  sluice stage test {name}.wasm --with test/config.json --workspace test/workspace --expect test/expected.json\n  sluice plugin sign {name}.wasm --key KEY.key   # then use it in a pipeline: see README.md\n"
    ));
    Ok(out)
}

/// The kinds of project `new pipeline` knows.
#[derive(Debug, Clone, PartialEq)]
enum Project {
    Rust { outputs: String },
    Node { node_test: bool },
    Python,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    sluice_files::fsutil::read_input_file(&dir.join(file), 4 * 1024 * 1024, "project file")
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn detect(dir: &Path) -> Option<Project> {
    if let Some(cargo) = read(dir, "Cargo.toml") {
        let name = cargo
            .lines()
            .skip_while(|l| l.trim() != "[package]")
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
            });
        let outputs = match name {
            Some(n) if dir.join("src/main.rs").is_file() => format!("target/release/{n}"),
            Some(n) => format!("target/release/lib{}.rlib", n.replace('-', "_")),
            // A workspace: whatever it builds.
            None => "target/release/*".into(),
        };
        return Some(Project::Rust {
            outputs: format!("\"{outputs}\""),
        });
    }
    if let Some(pkg) = read(dir, "package.json") {
        let json: serde_json::Value = serde_json::from_str(&pkg).unwrap_or_default();
        if let Some(test) = json["scripts"]["test"].as_str() {
            return Some(Project::Node {
                node_test: test.trim() == "node --test" || test.starts_with("node --test "),
            });
        }
    }
    let mentions_pytest = ["pyproject.toml", "setup.cfg", "tox.ini"]
        .iter()
        .filter_map(|f| read(dir, f))
        .chain(
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("requirements") && n.ends_with(".txt")
                })
                .filter_map(|e| std::fs::read_to_string(e.path()).ok()),
        )
        .any(|text| text.contains("pytest"));
    let has_tests = std::fs::read_dir(dir.join("tests"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("test_") && n.ends_with(".py")
        });
    (mentions_pytest || has_tests).then_some(Project::Python)
}

/// A pipeline name from the directory's name.
fn pipeline_name(dir: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['-', '_', '.']).to_owned();
    if sluice_types::PipelineName::is_valid(&cleaned) {
        cleaned
    } else {
        "project".into()
    }
}

/// `to` relative to `from` when it lies below it, else absolute.
fn shown_from(from: &Path, to: &Path) -> String {
    match to.strip_prefix(from) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => to.display().to_string(),
    }
}

fn new_pipeline(dir: Option<&Path>, plugins: Option<&Path>) -> Result<String, NewError> {
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let file = dir.join("sluice.yaml");
    if file.exists() {
        return Err(NewError::PipelineExists { file });
    }
    let project = detect(&dir).ok_or_else(|| NewError::UnknownProject { dir: dir.clone() })?;
    let (plugins, from_flag) = match plugins {
        Some(p) => (p.to_path_buf(), true),
        None => (Path::new(BUILT_FROM).join("dist/plugins"), false),
    };
    let missing: Vec<&str> = ["lint", "test", "scan", "build"]
        .into_iter()
        .filter(|p| !plugins.join(format!("{p}.wasm")).is_file())
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{}{} has no {}",
            plugins.display(),
            if from_flag {
                ""
            } else {
                " (of the repository this binary was built from)"
            },
            missing
                .iter()
                .map(|m| format!("{m}.wasm"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(NewError::Plugins { why });
    }
    let plugins = plugins.canonicalize().map_err(write_err(&plugins))?;
    let project_dir = dir.canonicalize().map_err(write_err(&dir))?;
    let uses = shown_from(&project_dir, &plugins);
    let (template, kind) = match &project {
        Project::Rust { .. } => ("pipeline/rust.yaml", "Rust (cargo)"),
        Project::Node { .. } => ("pipeline/node.yaml", "Node (npm)"),
        Project::Python => ("pipeline/python.yaml", "Python (pytest)"),
    };
    let Some(text) = embedded::TEMPLATES
        .iter()
        .find(|(p, _)| *p == template)
        .and_then(|(_, b)| std::str::from_utf8(b).ok())
    else {
        return Err(NewError::NotEmbedded {
            what: "the pipeline templates",
            where_: "runner/templates/pipeline/",
        });
    };
    let test_with = match &project {
        Project::Node { node_test: true } => "      # The test script is `node --test`: its JUnit reporter writes the results.\n      command: [npm, test, --, --test-reporter=junit, --test-reporter-destination=reports/junit.xml]".to_owned(),
        _ => "      # Make the test script write JUnit XML to reports/junit.xml (jest-junit,\n      # mocha-junit-reporter, or node --test --test-reporter=junit).\n      command: [npm, test]".to_owned(),
    };
    let outputs = match &project {
        Project::Rust { outputs } => outputs.clone(),
        _ => String::new(),
    };
    // The template quotes `uses:`; escaped as in a JSON string, which YAML
    // reads the same way.
    let quoted = serde_json::Value::String(uses.clone()).to_string();
    let uses_text = quoted.trim_matches('"').to_owned();
    let text = text
        .replace("{{name}}", &pipeline_name(&dir))
        .replace("{{plugins_shown}}", &uses)
        .replace("{{plugins}}", &uses_text)
        .replace("{{test_with}}", &test_with)
        .replace("{{build_outputs}}", &outputs);
    write_file(&file, text.as_bytes())?;
    Ok(format!(
        "wrote {} for a {kind} project: lint -> test -> scan -> build, plugins from {}\n\nnext steps:\n  sluice validate {}\n  sluice run --allow-unsigned {}   # or add a trust policy (see the comments in the file)\n",
        file.display(),
        plugins.display(),
        file.display(),
        file.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_three_cases() {
        let n = Names::of("demo-check_x");
        assert_eq!(n.snake, "demo_check_x");
        assert_eq!(n.camel, "demoCheckX");
        assert_eq!(
            n.apply("{{name}}/{{name_snake}}.py", &[]),
            "demo-check_x/demo_check_x.py"
        );
    }

    #[test]
    fn the_wit_and_the_templates_are_embedded() {
        assert!(embedded::WIT.iter().any(|(p, _)| *p == "wit/stage.wit"));
        assert!(embedded::WIT
            .iter()
            .any(|(p, _)| p.starts_with("wit/deps/io/")));
        // The deps symlink of wit/v0.2 is not walked a second time.
        assert!(!embedded::WIT.iter().any(|(p, _)| p.starts_with("wit/v0.2")));
        assert!(embedded::TEMPLATES
            .iter()
            .any(|(p, _)| *p == "stage/c/sluice_stage.h"));
        for lang in ["rust", "c"] {
            assert!(embedded::TEMPLATES
                .iter()
                .any(|(p, _)| p.starts_with(&format!("stage/{lang}/"))));
        }
    }

    #[test]
    fn projects_are_detected_by_their_files() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(detect(d.path()), None);
        std::fs::write(d.path().join("requirements-dev.txt"), "pytest==8\n").expect("write");
        assert_eq!(detect(d.path()), Some(Project::Python));
        std::fs::write(
            d.path().join("package.json"),
            r#"{"scripts":{"test":"node --test"}}"#,
        )
        .expect("write");
        assert_eq!(detect(d.path()), Some(Project::Node { node_test: true }));
        std::fs::write(
            d.path().join("Cargo.toml"),
            "[package]\nname = \"my-lib\"\n",
        )
        .expect("write");
        assert_eq!(
            detect(d.path()),
            Some(Project::Rust {
                outputs: "\"target/release/libmy_lib.rlib\"".into()
            })
        );
    }
}
