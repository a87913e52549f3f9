//! Issue 18 (points 4 and 6): a run's artifacts out of the store with
//! `sluice artifacts list|get|export`, every digest verified on the way
//! out; `runs show` with each plugin's signer and policy rule and each
//! stage's metrics; the state directory ignoring itself in git.

use sluice_tests::{plugin, repo_root, Project};

/// A run of two `fixture` stages (`build` leaves `greeting.txt`, `check`
/// reports a metric), signed plugins under a policy that names the demo key.
fn signed_run(p: &Project) -> String {
    p.write(
        "policy.yaml",
        &format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: demo-signed\n    match: [\"**/dist/plugins/*.wasm\"]\n    authorities:\n      - key: {}\n",
            repo_root().join("dist/keys/demo.pub").display()
        ),
    );
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: arts\npolicy: policy.yaml\nstages:\n  build: {{ uses: \"{f}\", with: {{ mode: pass }} }}\n  check:\n    uses: \"{f}\"\n    needs: [build]\n    with:\n      mode: metric\n      metrics: {{ coverage.line: 87.5 }}\n",
            f = plugin("fixture").display()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    run.run_id()
}

#[test]
fn artifacts_are_listed_copied_and_exported_with_their_digests_verified() {
    let p = Project::trusted_only();
    let id = signed_run(&p);

    let list = p.sluice(&["artifacts", "list", &id]);
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(list.stdout.contains("build"), "{}", list.all());
    assert!(list.stdout.contains("greeting.txt"), "{}", list.all());
    let json = p.sluice(&["artifacts", "list", &id, "build", "--json"]);
    let items: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let greeting = items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "greeting.txt"))
        .cloned()
        .expect("greeting.txt listed");
    let digest = greeting["digest"].as_str().expect("digest").to_string();

    // To standard output, byte for byte.
    let out = p.sluice(&["artifacts", "get", &id, "build/greeting.txt"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let bytes = out.raw_stdout().to_vec();
    assert_eq!(bytes.len() as u64, greeting["size"].as_u64().expect("size"));

    // Export: DIR/<stage>/<name>, the same bytes.
    let export = p.sluice(&["artifacts", "export", &id, "--to", "out"]);
    assert_eq!(export.code, 0, "{}", export.all());
    assert!(
        export.stdout.contains("every digest verified"),
        "{}",
        export.all()
    );
    assert_eq!(
        std::fs::read(p.path().join("out/build/greeting.txt")).expect("exported"),
        bytes
    );

    // A blob changed in the store is refused, and nothing is written under
    // its name.
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    let blob = p
        .state_dir()
        .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]));
    let mut perms = std::fs::metadata(&blob).expect("blob").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).expect("chmod");
    std::fs::write(&blob, b"tampered").expect("tamper");
    let bad = p.sluice(&["artifacts", "get", &id, "build/greeting.txt", "-o", "g.txt"]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(
        bad.stderr.contains(&digest),
        "names the digest: {}",
        bad.all()
    );
    assert!(!p.path().join("g.txt").exists());
    let bad = p.sluice(&["artifacts", "export", &id, "build", "--to", "again"]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(!p.path().join("again/build/greeting.txt").exists());

    // Wrong names are input errors that say what exists.
    let wrong = p.sluice(&["artifacts", "get", &id, "deploy/x"]);
    assert_eq!(wrong.code, 2, "{}", wrong.all());
    assert!(
        wrong
            .stderr
            .contains("has no stage `deploy`; its stages: build, check"),
        "{}",
        wrong.all()
    );
    let wrong = p.sluice(&["artifacts", "list", "no-such-run"]);
    assert_eq!(wrong.code, 2, "{}", wrong.all());
}

#[test]
fn runs_show_names_signers_rules_and_metrics_and_the_state_dir_ignores_itself() {
    let p = Project::trusted_only();
    let id = signed_run(&p);
    let show = p.sluice(&["runs", "show", &id]);
    assert_eq!(show.code, 0, "{}", show.all());
    assert!(show.stdout.contains("signed by "), "{}", show.all());
    assert!(
        show.stdout.contains("policy rule demo-signed"),
        "{}",
        show.all()
    );
    assert!(
        show.stdout.contains("metric coverage.line = 87.5"),
        "{}",
        show.all()
    );
    let ignore = std::fs::read_to_string(p.state_dir().join(".gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "*"), "{ignore}");
}
