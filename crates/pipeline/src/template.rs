//! `${{ … }}` expressions inside `with:` string values.
//!
//! Three forms exist, as in GitHub Actions:
//! - `${{ stages.NAME.outputs.KEY }}`: an output of a stage this stage needs
//!   (directly or transitively);
//! - `${{ env.NAME }}`: an environment variable of the runner;
//! - `${{ run.id }}`: the id of the current run.
//!
//! Whitespace inside the braces is optional, one string may hold several
//! expressions, and `$${{` stands for a literal `${{`. Only string values are
//! expanded (mapping keys are left alone), and the result is always a string:
//! `"${{ stages.build.outputs.count }}"` stays the string `"3"`, never the
//! number 3, so a plugin sees the same type whatever a stage produced.
//!
//! At load time [`check`] validates the syntax and the stage references; at
//! run time [`expand`] substitutes values.

use std::collections::{BTreeSet, HashMap};

use indexmap::IndexMap;

use sluice_files::locate::YamlPath;

/// One parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `stages.STAGE.outputs.KEY`
    Output {
        /// The stage that produced the output.
        stage: String,
        /// The output's key.
        key: String,
    },
    /// `env.NAME`
    Env(String),
    /// `run.id`
    RunId,
}

/// A piece of a templated string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Expr {
        expr: Expr,
        /// The expression as written, braces included, for messages.
        raw: String,
    },
}

/// A syntax error in a templated string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The offending text (from `${{`), for pointing at it.
    pub raw: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

const FORMS: &str = "use `${{ stages.NAME.outputs.KEY }}`, `${{ env.NAME }}` or `${{ run.id }}`";

/// Splits a string into text and expressions.
fn parse(s: &str) -> Result<Vec<Piece>, SyntaxError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        // `$${{` escapes a literal `${{`.
        if rest[..start].ends_with('$') {
            text.push_str(&rest[..start - 1]);
            text.push_str("${{");
            rest = &rest[start + 3..];
            continue;
        }
        text.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            let raw: String = rest[start..].chars().take(40).collect();
            return Err(SyntaxError {
                raw: raw.clone(),
                message: format!("`{raw}` is not closed"),
                hint: format!("end the expression with `}}}}`; {FORMS}"),
            });
        };
        let raw = &rest[start..start + 3 + end + 2];
        let expr = parse_expr(after[..end].trim(), raw)?;
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Expr {
            expr,
            raw: raw.to_owned(),
        });
        rest = &after[end + 2..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn parse_expr(inner: &str, raw: &str) -> Result<Expr, SyntaxError> {
    let error = |message: String, hint: String| SyntaxError {
        raw: raw.to_owned(),
        message,
        hint,
    };
    let parts: Vec<&str> = inner.split('.').collect();
    match parts.as_slice() {
        ["run", "id"] => Ok(Expr::RunId),
        ["env", name] if is_env_name(name) => Ok(Expr::Env((*name).to_owned())),
        ["stages", stage, "outputs", key @ ..]
            if is_stage_ref(stage) && !key.is_empty() && key.iter().all(|k| is_key(k)) =>
        {
            Ok(Expr::Output {
                stage: (*stage).to_owned(),
                key: key.join("."),
            })
        }
        [] | [""] => Err(error(
            format!("`{raw}` is empty"),
            format!("{FORMS}, or write `$${{{{` for a literal `${{{{`"),
        )),
        ["secrets", ..] => Err(error(
            format!("`{raw}`: secrets cannot be templated into `with:`"),
            "grant the secret in `grants.secrets` and read it in the plugin through the \
             secrets interface, so that its value stays out of configs and logs"
                .to_owned(),
        )),
        ["steps" | "needs" | "jobs", ..] => Err(error(
            format!("`{raw}` is not a sluice expression"),
            "outputs of other stages are written `${{ stages.NAME.outputs.KEY }}`".to_owned(),
        )),
        _ => Err(error(
            format!("`{raw}` is not a valid expression"),
            FORMS.to_owned(),
        )),
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_stage_ref(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A problem found by [`check`], located by its path inside the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// Path of the string value holding the expression.
    pub path: YamlPath,
    /// The expression as written (for finding its exact column).
    pub raw: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Validates every templated string in a stage's `with:` (at `with_path`):
/// syntax, and that each `stages.X` is a stage that `stage` (transitively)
/// needs, since only those are sure to have finished before it starts.
pub fn check(
    stage: &str,
    with: &serde_json::Value,
    with_path: &YamlPath,
    ancestors: &BTreeSet<String>,
    all_stages: &[&str],
) -> Result<(), CheckError> {
    let mut result = Ok(());
    walk_strings(with, with_path, &mut |path, s| {
        if result.is_err() {
            return;
        }
        result = check_string(stage, s, ancestors, all_stages).map_err(|e| CheckError {
            path: path.clone(),
            raw: e.raw,
            message: e.message,
            hint: e.hint,
        });
    });
    result
}

/// Whether any string in `with:` holds a template (`${{ … }}`); most do
/// not, and those need no ancestor checks.
pub fn has_templates(with: &serde_json::Value) -> bool {
    let mut found = false;
    walk_strings(with, &YamlPath::root(), &mut |_, s| {
        found |= s.contains("${{")
    });
    found
}

/// The stages whose outputs the templates in `with:` read
/// (`stages.X.outputs.Y`); a stage's attempt needs only these and its
/// `needs`, not the whole run.
pub fn referenced_stages(with: &serde_json::Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    walk_strings(with, &YamlPath::root(), &mut |_, s| {
        if !s.contains("${{") {
            return;
        }
        for piece in parse(s).unwrap_or_default() {
            if let Piece::Expr {
                expr: Expr::Output { stage, .. },
                ..
            } = piece
            {
                found.insert(stage);
            }
        }
    });
    found
}

fn check_string(
    stage: &str,
    s: &str,
    ancestors: &BTreeSet<String>,
    all_stages: &[&str],
) -> Result<(), SyntaxError> {
    for piece in parse(s)? {
        let Piece::Expr {
            expr: Expr::Output { stage: from, .. },
            raw,
        } = piece
        else {
            continue;
        };
        if ancestors.contains(&from) {
            continue;
        }
        let (message, hint) = if from == stage {
            (
                format!("`{raw}`: stage `{stage}` cannot use its own outputs"),
                "outputs exist only once a stage has finished; compute the value inside the plugin"
                    .to_owned(),
            )
        } else if all_stages.contains(&from.as_str()) {
            (
                format!("`{raw}`: stage `{stage}` does not need `{from}`, so `{from}` may not have run yet"),
                format!("add `{from}` to `needs` of stage `{stage}`"),
            )
        } else {
            let hint = match sluice_types::text::closest(&from, all_stages.iter().copied()) {
                Some(close) => format!(
                    "did you mean `{close}`? Stages are: {}",
                    all_stages.join(", ")
                ),
                None => format!("stages are: {}", all_stages.join(", ")),
            };
            (
                format!("`{raw}` refers to `{from}`, which is not a stage in this pipeline"),
                hint,
            )
        };
        return Err(SyntaxError { raw, message, hint });
    }
    Ok(())
}

/// Calls `f` on every string value, depth first, with its path.
fn walk_strings(value: &serde_json::Value, path: &YamlPath, f: &mut dyn FnMut(&YamlPath, &str)) {
    match value {
        serde_json::Value::String(s) => f(path, s),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(item, &path.index(i), f);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                walk_strings(item, &path.key(key), f);
            }
        }
        _ => {}
    }
}

/// What expressions expand to during a run.
pub struct TemplateContext<'a> {
    /// The id of the current run (`${{ run.id }}`).
    pub run_id: &'a str,
    /// Looks up an environment variable of the runner (`${{ env.NAME }}`);
    /// a closure so tests and callers can supply a fixed environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Outputs of finished stages, by stage name.
    pub outputs: &'a HashMap<String, IndexMap<String, String>>,
}

/// A template that cannot be expanded at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
///
/// It does not name the stage being configured: the caller reports it as
/// that stage's failure.
#[error("`{expr}` (in `{path}`): {problem}")]
pub struct TemplateError {
    /// Path of the value inside the stage, e.g. `with.target.root`.
    pub path: String,
    /// The expression as written, braces included.
    pub expr: String,
    /// What went wrong (boxed to keep `Result`s small).
    pub problem: Box<TemplateProblem>,
}

/// Why an expression could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    /// The string is not valid template syntax.
    #[error("{message}; {hint}")]
    Syntax {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// `${{ env.NAME }}` names a variable that is not set.
    #[error("environment variable `{name}` is not set; set it before starting sluice")]
    MissingEnv {
        /// The variable's name.
        name: String,
    },
    /// The referenced stage left no outputs (it did not run or did not succeed).
    #[error("stage `{from}` has no outputs (it did not run or did not succeed)")]
    NoOutputs {
        /// The stage the output was expected from.
        from: String,
    },
    /// The referenced stage did not report that output.
    #[error("stage `{from}` reported no output `{key}` (its outputs: {available})")]
    MissingOutput {
        /// The stage the output was expected from.
        from: String,
        /// The missing key.
        key: String,
        /// The keys it did report, comma-separated (or `none`).
        available: String,
    },
}

/// Expands every `${{ … }}` in the string values of `with`, returning a new
/// value; the structure and all non-string values are kept as they are.
pub fn expand(
    with: &serde_json::Value,
    ctx: &TemplateContext<'_>,
) -> Result<serde_json::Value, TemplateError> {
    expand_at(with, &YamlPath::root().key("with"), ctx)
}

fn expand_at(
    value: &serde_json::Value,
    path: &YamlPath,
    ctx: &TemplateContext<'_>,
) -> Result<serde_json::Value, TemplateError> {
    Ok(match value {
        serde_json::Value::String(s) => serde_json::Value::String(expand_string(s, path, ctx)?),
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| expand_at(item, &path.index(i), ctx))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, item)| Ok((key.clone(), expand_at(item, &path.key(key), ctx)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

fn expand_string(
    s: &str,
    path: &YamlPath,
    ctx: &TemplateContext<'_>,
) -> Result<String, TemplateError> {
    let error = |expr: &str, problem: TemplateProblem| TemplateError {
        path: path.to_string(),
        expr: expr.to_owned(),
        problem: Box::new(problem),
    };
    let pieces = parse(s).map_err(|e| {
        error(
            &e.raw,
            TemplateProblem::Syntax {
                message: e.message,
                hint: e.hint,
            },
        )
    })?;
    let mut out = String::with_capacity(s.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Expr { expr, raw } => {
                let value = resolve(&expr, ctx).map_err(|problem| error(&raw, problem))?;
                out.push_str(&value);
            }
        }
    }
    Ok(out)
}

fn resolve(expr: &Expr, ctx: &TemplateContext<'_>) -> Result<String, TemplateProblem> {
    match expr {
        Expr::RunId => Ok(ctx.run_id.to_owned()),
        Expr::Env(name) => {
            (ctx.env)(name).ok_or_else(|| TemplateProblem::MissingEnv { name: name.clone() })
        }
        Expr::Output { stage: from, key } => {
            let Some(outputs) = ctx.outputs.get(from) else {
                return Err(TemplateProblem::NoOutputs { from: from.clone() });
            };
            outputs.get(key).cloned().ok_or_else(|| {
                let keys: Vec<&str> = outputs.keys().map(String::as_str).collect();
                TemplateProblem::MissingOutput {
                    from: from.clone(),
                    key: key.clone(),
                    available: if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    },
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expr(s: &str) -> Result<Vec<Expr>, String> {
        parse(s)
            .map(|pieces| {
                pieces
                    .into_iter()
                    .filter_map(|p| match p {
                        Piece::Expr { expr, .. } => Some(expr),
                        Piece::Text(_) => None,
                    })
                    .collect()
            })
            .map_err(|e| e.message)
    }

    #[test]
    fn parses_all_forms_with_or_without_spaces() {
        assert_eq!(expr("${{run.id}}"), Ok(vec![Expr::RunId]));
        assert_eq!(
            expr("${{   env.HOME   }}"),
            Ok(vec![Expr::Env("HOME".into())])
        );
        assert_eq!(
            expr("v${{ stages.build.outputs.image.digest }}-${{ run.id }}"),
            Ok(vec![
                Expr::Output {
                    stage: "build".into(),
                    key: "image.digest".into()
                },
                Expr::RunId
            ])
        );
        assert_eq!(expr("no templates { here }"), Ok(vec![]));
        assert_eq!(
            parse("cost: $${{ not.an.expr }}"),
            Ok(vec![Piece::Text("cost: ${{ not.an.expr }}".into())])
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            expr("x ${{ run.id"),
            Err("`${{ run.id` is not closed".to_owned())
        );
        assert_eq!(expr("${{ }}"), Err("`${{ }}` is empty".to_owned()));
        assert_eq!(
            expr("${{ stages.build.output.v }}"),
            Err("`${{ stages.build.output.v }}` is not a valid expression".to_owned())
        );
        assert_eq!(
            expr("${{ env.1X }}"),
            Err("`${{ env.1X }}` is not a valid expression".to_owned())
        );
        assert!(expr("${{ secrets.TOKEN }}")
            .err()
            .is_some_and(|m| m.contains("secrets cannot be templated")));
    }

    #[test]
    fn check_requires_an_ancestor() {
        let with =
            json!({ "image": ["${{ stages.build.outputs.tag }}", "${{ stages.lint.outputs.x }}"] });
        let base = YamlPath::root().key("stages").key("deploy").key("with");
        let ancestors: BTreeSet<String> = ["build".to_owned()].into();
        let stages = ["lint", "build", "deploy"];
        let err = check("deploy", &with, &base, &ancestors, &stages).err();
        let err = err.expect("lint is not an ancestor");
        assert_eq!(err.path.to_string(), "stages.deploy.with.image[1]");
        assert_eq!(err.hint, "add `lint` to `needs` of stage `deploy`");
        let unknown = json!({ "v": "${{ stages.biuld.outputs.tag }}" });
        let err = check("deploy", &unknown, &base, &ancestors, &stages).err();
        assert!(err.is_some_and(|e| e.hint.starts_with("did you mean `build`?")));
        let fine = json!({ "v": "${{ stages.build.outputs.tag }}", "n": 3 });
        assert_eq!(check("deploy", &fine, &base, &ancestors, &stages), Ok(()));
    }

    fn with_ctx<T>(f: impl FnOnce(&TemplateContext<'_>) -> T) -> T {
        let env = |name: &str| (name == "HOME").then(|| "/home/ci".to_owned());
        let mut outputs = HashMap::new();
        let mut build = IndexMap::new();
        build.insert("version".to_owned(), "1.2.3".to_owned());
        build.insert("count".to_owned(), "3".to_owned());
        outputs.insert("build".to_owned(), build);
        let ctx = TemplateContext {
            run_id: "r-42",
            env: &env,
            outputs: &outputs,
        };
        f(&ctx)
    }

    #[test]
    fn expands_strings_everywhere_and_keeps_types() {
        let with = json!({
            "tag": "app:${{ stages.build.outputs.version }}-${{run.id}}",
            "count": "${{ stages.build.outputs.count }}",
            "nested": { "list": ["${{ env.HOME }}/x", 7, true, null] },
            "${{ run.id }}": "keys stay",
        });
        let expanded = with_ctx(|ctx| expand(&with, ctx));
        assert_eq!(
            expanded,
            Ok(json!({
                "tag": "app:1.2.3-r-42",
                "count": "3",
                "nested": { "list": ["/home/ci/x", 7, true, null] },
                "${{ run.id }}": "keys stay",
            }))
        );
    }

    #[test]
    fn expansion_errors_name_stage_and_expression() {
        let missing_env = json!({ "a": ["${{ env.NOPE }}"] });
        let err = with_ctx(|ctx| expand(&missing_env, ctx))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("`${{ env.NOPE }}` (in `with.a[0]`): environment variable `NOPE` is not set; set it before starting sluice")
        );
        let missing_key = json!({ "a": "${{ stages.build.outputs.digest }}" });
        let err = with_ctx(|ctx| expand(&missing_key, ctx))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("`${{ stages.build.outputs.digest }}` (in `with.a`): stage `build` reported no output `digest` (its outputs: version, count)")
        );
        let no_outputs = json!({ "a": "${{ stages.scan.outputs.x }}" });
        let err = with_ctx(|ctx| expand(&no_outputs, ctx)).err();
        assert!(
            matches!(err.map(|e| *e.problem), Some(TemplateProblem::NoOutputs { from }) if from == "scan")
        );
        let bad = json!({ "a": "${{ nope }}" });
        let err = with_ctx(|ctx| expand(&bad, ctx)).err();
        assert!(matches!(
            err.map(|e| *e.problem),
            Some(TemplateProblem::Syntax { .. })
        ));
    }
}
