//! The example pipelines a newcomer runs, checked end to end.

use sluice_tests::{repo_root, Project};

use crate::stage_test_build::copy_example;

/// A copy of `examples/quickstart` whose plugin and key paths point at this
/// checkout's `dist/`.
fn quickstart_copy() -> Project {
    let p = Project::new();
    copy_example(&repo_root().join("examples/quickstart"), p.path());
    let dist = repo_root().join("dist");
    for file in ["sluice.yaml", "sluice-insecure.yaml", "sluice-policy.yaml"] {
        let text = p
            .read(file)
            .replace("../../dist", &dist.display().to_string());
        p.write(file, &text);
    }
    p
}

#[test]
fn the_insecure_example_is_blocked_with_the_exact_findings() {
    let p = quickstart_copy();
    let run = p.sluice(&["run", "sluice-insecure.yaml"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("scan blocked"), "{}", run.all());
    assert!(
        run.stdout
            .contains("requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("insecure/deploy_config.py:5"),
        "{}",
        run.all()
    );
    assert!(
        !run.stdout.contains("R8fKq2LmZx4Tn7Wv1Bc9Dh3Jp6Ys0Ue5Ai2Q"),
        "the planted token leaked into the output"
    );
    let record = p.record(&run.run_id());
    assert_eq!(record["stages"]["scan"]["state"], "blocked");
    assert_eq!(record["stages"]["report"]["state"], "passed");
    // Admitted by the example policy: signed by the demo key.
    let signer = record["stages"]["scan"]["plugin"]["signer"]
        .as_str()
        .unwrap_or_default();
    assert!(signer.starts_with("key sha256:"), "{record}");
}
