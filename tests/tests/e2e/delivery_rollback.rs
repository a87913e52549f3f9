//! `remediate` acts only on what its run changed, never returns to a
//! release it rolled back, and a redeploy keeps the rollback target
//! (issue 17, defects 2, 4, 5). The real `sluice` binary runs `build`,
//! `deploy` (local target, no servers), optionally a failing check (the
//! `fixture` plugin) and `remediate` (`when: failure`, verification off).

use serde_json::Value;
use sluice_tests::{plugin, Project};

const ROOT: &str = "deploy/production";

/// How a run of [`pipeline`] goes.
struct Run<'a> {
    strategy: &'a str,
    /// A `check` stage after `deploy` fails its gate.
    check_fails: bool,
    /// `remediate`'s `with.action`.
    action: &'a str,
}

/// The `app/` of release `version`, which [`build_stage`] packs.
pub(super) fn write_app(p: &Project, version: &str) {
    p.write("app/VERSION", &format!("{version}\n"));
    p.write("app/index.html", &format!("hello {version}\n"));
}

/// A `build` stage that runs `guard` (a shell command list ending in `&&`,
/// or nothing) and tars `app/` into `out/app.tgz`, its version read from
/// `app/VERSION`.
pub(super) fn build_stage(guard: &str) -> String {
    format!(
        r#"  build:
    uses: {build}
    with:
      commands:
        - [sh, -c, "{guard}mkdir -p out && tar czf out/app.tgz -C app ."]
      outputs: [out/app.tgz]
      version-file: app/VERSION
    grants: {{ workspace: write, exec: [sh] }}
"#,
        build = plugin("build").display(),
    )
}

/// A `deploy` stage of the build's version to production after `needs`,
/// with the `with:` lines `with` (indented 6) and `grants`.
pub(super) fn deploy_stage(needs: &str, with: &str, grants: &str) -> String {
    format!(
        r#"  deploy:
    uses: {deploy}
    needs: [{needs}]
    environment: production
    with:
      version: "${{{{ stages.build.outputs.version }}}}"
{with}    grants: {grants}
"#,
        deploy = plugin("deploy").display(),
    )
}

/// A `check` stage after `deploy` (the `fixture` plugin) that fails its
/// gate `error-rate` (2.5 > 1).
pub(super) fn failing_check() -> String {
    format!(
        r#"  check:
    uses: {fixture}
    needs: [deploy]
    with:
      mode: metric
      gates:
        - {{ name: error-rate, verdict: fail, observed: 2.5, threshold: 1, message: "error-rate 2.5 > 1" }}
"#,
        fixture = plugin("fixture").display()
    )
}

/// A `remediate` stage (`when: failure`, production) after `needs`, with
/// the `with:` lines `with` (indented 6) and `grants`.
pub(super) fn remediate_stage(needs: &str, with: &str, grants: &str) -> String {
    format!(
        r#"  remediate:
    uses: {remediate}
    needs: [{needs}]
    when: failure
    environment: production
    with:
{with}    grants: {grants}
"#,
        remediate = plugin("remediate").display(),
    )
}

/// Writes the pipeline: `build` (fails while the file `BUILD_FAILS`
/// exists) → `deploy` → [`check`] → `remediate`.
fn pipeline(p: &Project, r: &Run) {
    let target = format!("{{ kind: local, root: {ROOT} }}");
    let mut yaml = format!(
        "version: 1\nname: deliver\nstages:\n{}{}",
        build_stage("test ! -f BUILD_FAILS && "),
        deploy_stage(
            "build",
            &format!("      target: {target}\n      strategy: {}\n", r.strategy),
            "{ workspace: write }"
        ),
    );
    let mut needs = vec!["build", "deploy"];
    if r.check_fails {
        yaml.push_str(&failing_check());
        needs.push("check");
    }
    yaml.push_str(&remediate_stage(
        &needs.join(", "),
        &format!(
            "      target: {target}\n      action: {}\n      verify: {{ enabled: false }}\n",
            r.action
        ),
        "{ workspace: write }",
    ));
    p.write("sluice.yaml", &yaml);
}

/// Runs release `version` through the pipeline; returns (exit code, run
/// record, everything printed).
fn run(p: &Project, version: &str, r: &Run) -> (i32, Value, String) {
    write_app(p, version);
    pipeline(p, r);
    let run = p.sluice(&["run"]);
    let record = p.record(&run.run_id());
    (run.code, record, run.all())
}

/// A run that must pass (remediate skipped).
fn deploy_ok(p: &Project, version: &str, strategy: &str) {
    let r = Run {
        strategy,
        check_fails: false,
        action: "auto",
    };
    let (code, record, all) = run(p, version, &r);
    assert_eq!(code, 0, "{all}");
    assert_eq!(record["stages"]["deploy"]["state"], "passed", "{all}");
}

/// The remediation was carried out (verification is off, so the stage
/// warns: status `mitigated`).
fn assert_done(remediate: &Value, all: &str) {
    assert!(
        remediate["state"] == "passed" || remediate["state"] == "warned",
        "{remediate:#}\n{all}"
    );
    assert_eq!(remediate["outputs"]["status"], "mitigated", "{remediate:#}");
}

fn state(p: &Project) -> Value {
    serde_json::from_str(&p.read(&format!("{ROOT}/state.json"))).expect("state.json is JSON")
}

fn link(p: &Project, slot: &str) -> String {
    std::fs::read_link(p.path().join(ROOT).join("slots").join(slot))
        .expect("slot link")
        .display()
        .to_string()
}

fn verdict(state: &Value, version: &str) -> Value {
    state["releases"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["version"] == version))
        .map(|r| r["verdict"].clone())
        .unwrap_or(Value::Null)
}

/// Defect 2: with 1.1.0 stable and 1.0.0 previous, a run whose build
/// fails deployed nothing: `remediate` must not roll production back.
#[test]
fn a_failed_build_does_not_roll_production_back() {
    let p = Project::new();
    deploy_ok(&p, "1.0.0", "blue-green");
    deploy_ok(&p, "1.1.0", "blue-green");
    let before = state(&p);
    assert_eq!(before["stable"]["version"], "1.1.0", "{before:#}");
    assert_eq!(before["previous"]["version"], "1.0.0", "{before:#}");

    p.write("BUILD_FAILS", "");
    let r = Run {
        strategy: "blue-green",
        check_fails: false,
        action: "auto",
    };
    let (code, record, all) = run(&p, "1.2.0", &r);
    assert_eq!(code, 1, "the build failed: {all}");
    assert_eq!(record["stages"]["build"]["state"], "failed", "{all}");
    let remediate = &record["stages"]["remediate"];
    assert!(
        remediate["state"] == "passed" || remediate["state"] == "warned",
        "{remediate:#}\n{all}"
    );
    assert!(
        all.contains("nothing to remediate: this run changed nothing in production"),
        "{all}"
    );
    assert_ne!(remediate["outputs"]["status"], "resolved", "{remediate:#}");
    assert_ne!(remediate["outputs"]["action"], "rollback", "{remediate:#}");
    let after = state(&p);
    assert_eq!(after["stable"], before["stable"], "{after:#}");
    assert_eq!(after["previous"], before["previous"], "{after:#}");
    assert_eq!(link(&p, "green"), "../releases/1.1.0");
    let history = p.read(&format!("{ROOT}/history.jsonl"));
    assert!(!history.contains("\"rollback\""), "{history}");
    // The incident says nobody was exposed by this run (before: SEV2
    // "wide", 100% of the traffic, from the weights an earlier run left).
    let run_id = record["run_id"].as_str().expect("run_id");
    let incident = super::delivery_demo::incident_json(&p, run_id);
    assert_eq!(incident["status"], "no-action", "{incident:#}");
    assert_eq!(incident["severity"], "none", "{incident:#}");
    assert_eq!(incident["exposure_share"], 0.0, "{incident:#}");
}

/// Defect 4: after 2.0.0 is rolled back, it is marked bad and is not
/// `previous`; a later `action: rollback` says there is no good release
/// to return to instead of restoring 2.0.0.
#[test]
fn a_rolled_back_release_is_never_restored() {
    let p = Project::new();
    deploy_ok(&p, "1.0.0", "recreate");
    let failing = |action| Run {
        strategy: "recreate",
        check_fails: true,
        action,
    };
    let (code, record, all) = run(&p, "2.0.0", &failing("auto"));
    assert_eq!(code, 1, "{all}");
    let remediate = &record["stages"]["remediate"];
    assert_done(remediate, &all);
    assert_eq!(remediate["outputs"]["action"], "rollback", "{remediate:#}");
    assert_eq!(remediate["outputs"]["version"], "1.0.0", "{remediate:#}");
    assert_eq!(link(&p, "main"), "../releases/1.0.0");
    let s = state(&p);
    assert_eq!(s["stable"]["version"], "1.0.0", "{s:#}");
    assert_ne!(s["previous"]["version"], "2.0.0", "{s:#}");
    assert_eq!(verdict(&s, "2.0.0"), "bad", "{s:#}");

    // 1.0.0 again, its check fails, and remediation is asked to roll back.
    let (code, record, all) = run(&p, "1.0.0", &failing("rollback"));
    assert_eq!(code, 1, "{all}");
    let remediate = &record["stages"]["remediate"];
    // The failing `remediation` gate blocks the stage.
    assert_eq!(remediate["state"], "blocked", "{remediate:#}\n{all}");
    assert_ne!(remediate["outputs"]["status"], "resolved", "{remediate:#}");
    assert!(all.contains("no known-good release"), "{all}");
    assert!(all.contains("known bad: 2.0.0"), "{all}");
    assert_eq!(link(&p, "main"), "../releases/1.0.0");
    assert_eq!(state(&p)["stable"]["version"], "1.0.0");
}

/// Defect 5: redeploying the stable version keeps `previous`, so a
/// rollback still returns to the release before it.
#[test]
fn redeploying_the_stable_version_keeps_the_rollback_target() {
    let p = Project::new();
    deploy_ok(&p, "2.0.0", "blue-green");
    deploy_ok(&p, "2.1.0", "blue-green");
    deploy_ok(&p, "2.1.0", "blue-green");
    let s = state(&p);
    assert_eq!(s["stable"]["version"], "2.1.0", "{s:#}");
    assert_eq!(s["previous"]["version"], "2.0.0", "{s:#}");

    let r = Run {
        strategy: "blue-green",
        check_fails: true,
        action: "auto",
    };
    let (code, record, all) = run(&p, "2.1.0", &r);
    assert_eq!(code, 1, "{all}");
    let remediate = &record["stages"]["remediate"];
    assert_done(remediate, &all);
    assert_eq!(remediate["outputs"]["version"], "2.0.0", "{remediate:#}");
    let s = state(&p);
    assert_eq!(s["stable"]["version"], "2.0.0", "{s:#}");
    let slot = s["stable"]["slot"].as_str().unwrap_or_default().to_string();
    assert_eq!(link(&p, &slot), "../releases/2.0.0");
    assert_eq!(verdict(&s, "2.1.0"), "bad", "{s:#}");
}
