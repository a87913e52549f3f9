//! Writing the `lint.sarif` artifact: a SARIF 2.1.0 log with one run per
//! tool (`sluice-lint` first, then each external linter), built with the
//! `serde-sarif` types.
//!
//! Each run lists the rules its results use (with description, help URI
//! and default level when known) and each result has `ruleId`,
//! `ruleIndex`, `level`, `message.text` and, when the finding has a place,
//! one `physicalLocation` whose `artifactLocation.uri` is relative to the
//! workspace root (`uriBaseId` `%SRCROOT%`, as GitHub code scanning
//! expects) with `region.startLine` / `startColumn`.

use serde_sarif::sarif::{
    ArtifactLocation, Invocation, Location, Message, MultiformatMessageString, PhysicalLocation,
    Region, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run,
    Sarif, Tool, ToolComponent,
};

use crate::external::ToolRun;
use crate::finding::{Finding, Level};

/// The `$schema` written into the log.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The base id relative URIs are given against: the workspace root.
pub const SRCROOT: &str = "%SRCROOT%";

/// The SARIF log for `runs`.
pub fn to_sarif(runs: &[ToolRun]) -> Sarif {
    let mut log = Sarif::builder()
        .version(serde_json::Value::String("2.1.0".into()))
        .runs(runs.iter().map(run).collect::<Vec<_>>())
        .build();
    log.schema = Some(SCHEMA.to_string());
    log
}

/// The SARIF log for `runs`, pretty-printed.
pub fn to_json(runs: &[ToolRun]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&to_sarif(runs))
}

fn run(r: &ToolRun) -> Run {
    // Every rule a result names is listed, documented or not.
    let mut docs = r.rules.clone();
    for f in &r.findings {
        docs.entry(f.rule.clone()).or_default();
    }
    let ids: Vec<&String> = docs.keys().collect();
    let rules: Vec<ReportingDescriptor> = docs
        .iter()
        .map(|(id, doc)| {
            let mut d = ReportingDescriptor::builder().id(id.clone()).build();
            d.short_description = doc
                .description
                .as_ref()
                .map(|t| MultiformatMessageString::builder().text(t.clone()).build());
            d.help_uri = doc.help_uri.clone();
            d.default_configuration = doc.level.map(|l| {
                let mut c = ReportingConfiguration::builder().build();
                c.level = Some(serde_json::Value::String(l.as_str().into()));
                c
            });
            d
        })
        .collect();
    let results: Vec<SarifResult> = r
        .findings
        .iter()
        .map(|f| result(f, ids.iter().position(|id| **id == f.rule)))
        .collect();
    let mut driver = ToolComponent::builder().name(r.name.clone()).build();
    driver.version = r.version.clone();
    driver.information_uri = r.information_uri.clone();
    driver.rules = Some(rules);
    let mut out = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .build();
    out.results = Some(results);
    out.column_kind = r
        .column_kind
        .as_ref()
        .map(|k| serde_json::Value::String(k.clone()));
    out.invocations = Some(vec![invocation(r)]);
    out
}

fn invocation(r: &ToolRun) -> Invocation {
    let mut inv = Invocation::builder().execution_successful(true).build();
    if let Some(i) = &r.invocation {
        inv.command_line = Some(i.command_line.clone());
        inv.exit_code = Some(i64::from(i.exit_code));
    }
    inv
}

fn result(f: &Finding, rule_index: Option<usize>) -> SarifResult {
    let mut res = SarifResult::builder()
        .message(Message::builder().text(f.message.clone()).build())
        .build();
    res.rule_id = Some(f.rule.clone());
    res.rule_index = rule_index.and_then(|i| i64::try_from(i).ok());
    res.level = Some(match f.level {
        Level::Error => ResultLevel::Error,
        Level::Warning => ResultLevel::Warning,
        Level::Note => ResultLevel::Note,
    });
    res.locations = f.location.as_ref().map(|loc| {
        let mut artifact = ArtifactLocation::builder().build();
        if loc.path.starts_with('/') {
            artifact.uri = Some(format!("file://{}", encode_path(&loc.path)));
        } else {
            artifact.uri = Some(encode_path(&loc.path));
            artifact.uri_base_id = Some(SRCROOT.to_string());
        }
        let mut physical = PhysicalLocation::builder().build();
        physical.artifact_location = Some(artifact);
        if let Some(line) = loc.line {
            let mut region = Region::builder().build();
            region.start_line = Some(i64::from(line));
            region.start_column = loc.column.map(i64::from);
            physical.region = Some(region);
        }
        let mut l = Location::builder().build();
        l.physical_location = Some(physical);
        vec![l]
    });
    res
}

/// Percent-encodes a path for a URI, keeping `/` and RFC 3986's unreserved
/// characters.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::{Invocation as Inv, RuleDoc};
    use crate::finding::{Location as Loc, SELF_TOOL};

    fn finding(rule: &str, level: Level, loc: Option<Loc>) -> Finding {
        Finding {
            tool: SELF_TOOL.into(),
            rule: rule.into(),
            level,
            message: format!("{rule} message"),
            location: loc,
        }
    }

    fn runs() -> Vec<ToolRun> {
        let mut own = ToolRun::new(SELF_TOOL);
        own.version = Some("0.1.0".into());
        own.column_kind = Some("unicodeCodePoints".into());
        own.rules.insert(
            "yaml-syntax".into(),
            RuleDoc {
                level: Some(Level::Error),
                description: Some("YAML file does not parse".into()),
                help_uri: None,
            },
        );
        own.findings.push(finding(
            "yaml-syntax",
            Level::Error,
            Some(Loc::at("ci/bad file.yaml", Some(3), Some(5))),
        ));
        own.findings.push(finding(
            "large-file",
            Level::Warning,
            Some(Loc::at("data.bin", None, None)),
        ));
        let mut ext = ToolRun::new("ruff");
        ext.invocation = Some(Inv {
            command_line: "ruff check".into(),
            exit_code: 1,
        });
        ext.findings.push(finding(
            "F401",
            Level::Note,
            Some(Loc::at("/opt/x.py", Some(1), None)),
        ));
        ext.findings.push(finding("E999", Level::Error, None));
        vec![own, ext]
    }

    #[test]
    fn writes_sarif_2_1_0_with_one_run_per_tool() {
        let json = to_json(&runs()).expect("serializes");
        let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(v["$schema"], SCHEMA);
        let runs = v["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0]["tool"]["driver"]["name"], SELF_TOOL);
        assert_eq!(runs[0]["tool"]["driver"]["version"], "0.1.0");
        assert_eq!(runs[0]["columnKind"], "unicodeCodePoints");
        assert_eq!(runs[1]["tool"]["driver"]["name"], "ruff");
        assert_eq!(runs[1]["invocations"][0]["commandLine"], "ruff check");
        assert_eq!(runs[1]["invocations"][0]["exitCode"], 1);
        assert_eq!(runs[1]["invocations"][0]["executionSuccessful"], true);

        let rules = runs[0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids, ["large-file", "yaml-syntax"]);
        assert_eq!(
            rules[1]["shortDescription"]["text"],
            "YAML file does not parse"
        );
        assert_eq!(rules[1]["defaultConfiguration"]["level"], "error");

        let r0 = &runs[0]["results"][0];
        assert_eq!(r0["ruleId"], "yaml-syntax");
        assert_eq!(r0["ruleIndex"], 1);
        assert_eq!(r0["level"], "error");
        assert_eq!(r0["message"]["text"], "yaml-syntax message");
        let pl = &r0["locations"][0]["physicalLocation"];
        assert_eq!(pl["artifactLocation"]["uri"], "ci/bad%20file.yaml");
        assert_eq!(pl["artifactLocation"]["uriBaseId"], SRCROOT);
        assert_eq!(pl["region"]["startLine"], 3);
        assert_eq!(pl["region"]["startColumn"], 5);
        let r1 = &runs[0]["results"][1];
        assert!(r1["locations"][0]["physicalLocation"]
            .get("region")
            .is_none());

        let e0 = &runs[1]["results"][0];
        assert_eq!(e0["level"], "note");
        assert_eq!(
            e0["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "file:///opt/x.py"
        );
        assert!(runs[1]["results"][1].get("locations").is_none());
    }

    #[test]
    fn an_empty_run_is_still_a_run() {
        let json = to_json(&[ToolRun::new(SELF_TOOL)]).expect("serializes");
        let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(v["runs"][0]["results"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path("a b/c#d.txt"), "a%20b/c%23d.txt");
        assert_eq!(encode_path("é"), "%C3%A9");
        assert_eq!(encode_path("src/main.rs"), "src/main.rs");
    }
}
