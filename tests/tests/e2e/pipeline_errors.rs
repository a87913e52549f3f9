//! Bad pipeline files: exit code 2 and an error naming file, line, column
//! and the fix.

use sluice_tests::Project;

fn invalid(yaml: &str) -> String {
    let p = Project::new();
    p.write("sluice.yaml", yaml);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let validate = p.sluice(&["validate"]);
    assert_eq!(validate.code, 2, "{}", validate.all());
    assert!(
        !p.state_dir().join("runs").exists()
            || std::fs::read_dir(p.state_dir().join("runs"))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0,
        "an invalid pipeline must not create a run"
    );
    run.stderr
}

#[test]
fn unknown_keys_are_located() {
    let err =
        invalid("version: 1\nname: x\nstages:\n  a:\n    uses: \"{fixture}\"\n    needz: [b]\n");
    assert!(err.contains("sluice.yaml:6:5"), "{err}");
    assert!(err.contains("needz"), "{err}");
}

#[test]
fn unknown_needs_suggest_a_fix() {
    let err = invalid(
        "version: 1\nname: x\nstages:\n  build:\n    uses: \"{fixture}\"\n  deploy:\n    uses: \"{fixture}\"\n    needs: [biuld]\n",
    );
    assert!(err.contains("sluice.yaml:8:"), "{err}");
    assert!(err.contains("biuld"), "{err}");
    assert!(err.contains("did you mean `build`"), "{err}");
}

#[test]
fn cycles_are_named() {
    let err = invalid(
        "version: 1\nname: x\nstages:\n  a: { uses: \"{fixture}\", needs: [c] }\n  b: { uses: \"{fixture}\", needs: [a] }\n  c: { uses: \"{fixture}\", needs: [b] }\n",
    );
    assert!(err.contains("cycle"), "{err}");
    assert!(
        err.contains("a -> c -> b -> a") || err.contains("a -> b -> c -> a") || err.contains("->"),
        "{err}"
    );
    assert!(err.contains("sluice.yaml:"), "{err}");
}

#[test]
fn bad_durations_sizes_and_missing_plugins() {
    let err = invalid("version: 1\nname: x\nstages:\n  a:\n    uses: \"{fixture}\"\n    timeout: 10 minutes please\n");
    assert!(err.contains("sluice.yaml:6:"), "{err}");
    let err = invalid("version: 1\nname: x\nstages:\n  a:\n    uses: \"{fixture}\"\n    grants: { memory: lots }\n");
    assert!(err.contains("sluice.yaml:6:"), "{err}");
    let err = invalid("version: 1\nname: x\nstages:\n  a:\n    uses: plugins/missing.wasm\n");
    assert!(err.contains("sluice.yaml:5:"), "{err}");
    assert!(err.contains("missing.wasm"), "{err}");
}

#[test]
fn a_missing_pipeline_file_is_explained() {
    let p = Project::new();
    let run = p.sluice(&["run", "nope.yaml"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("nope.yaml"), "{}", run.all());
}
