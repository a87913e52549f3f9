//! The CLI surface: inspect, validate, runs list/show, JSON events, the
//! compile cache.

use sluice_tests::{plugin, Project};

#[test]
fn plugin_inspect_shows_describe_and_imports() {
    let p = Project::new();
    let fixture = plugin("fixture");
    let run = p.sluice(&["plugin", "inspect", fixture.to_str().expect("utf8")]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.starts_with("fixture "), "{}", run.all());
    assert!(run.stdout.contains("digest: sha256:"), "{}", run.all());
    assert!(
        run.stdout.contains("sluice:stage/exec@0.2.0"),
        "{}",
        run.all()
    );
    // 0.2 exports the interface, 0.1 the functions.
    assert!(
        run.stdout.contains("sluice:stage/plugin@0.2.0"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("wit: sluice:stage@0.2.0"),
        "{}",
        run.all()
    );

    let json = p.sluice(&[
        "plugin",
        "inspect",
        "--json",
        fixture.to_str().expect("utf8"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["name"], "fixture");
    assert!(v["config_schema"].is_object(), "{}", json.stdout);

    p.write("not-a-plugin.wasm", "hello");
    let bad = p.sluice(&["plugin", "inspect", "not-a-plugin.wasm"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr.contains("not a valid WebAssembly component"),
        "{}",
        bad.all()
    );
}

#[test]
fn json_events_and_runs_commands() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: events\nstages:\n  a: { uses: \"{fixture}\", with: { mode: pass } }\n  b: { uses: \"{fixture}\", needs: [a], with: { mode: pass } }\n",
    );
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    for line in run.stdout.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["event"].is_string(), "{line}");
    }
    let events = run.events();
    assert_eq!(
        events.first().map(|e| e["event"].clone()),
        Some("run_started".into())
    );
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some("passed".into())
    );
    let id = run.run_id();

    let list = p.sluice(&["runs", "list"]);
    assert!(
        list.stdout.contains(&id) && list.stdout.contains("passed"),
        "{}",
        list.all()
    );
    let show = p.sluice(&["runs", "show", &id]);
    assert!(show.stdout.contains("a: passed"), "{}", show.all());
    assert!(
        show.stdout.contains("artifact greeting.txt sha256:"),
        "{}",
        show.all()
    );
    let show_json = p.sluice(&["runs", "show", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show_json.stdout).expect("json");
    assert_eq!(v["run_id"], id.as_str());
    let missing = p.sluice(&["runs", "show", "nope"]);
    assert_eq!(missing.code, 2);
}

#[test]
fn the_second_run_compiles_nothing() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: cache\nstages:\n  a: { uses: \"{fixture}\", with: { mode: pass } }\n  b: { uses: \"{hello}\", with: { greeting: hi } }\n",
    );
    let cache_home = tempfile::tempdir().expect("tempdir");
    let cache = cache_home.path().join("private-cache");
    let cache = cache.to_str().expect("utf8");
    let loaded = |run: &sluice_tests::Run| -> Vec<bool> {
        run.events()
            .iter()
            .filter(|e| e["event"] == "plugin_loaded")
            .map(|e| e["cached"].as_bool().unwrap_or(false))
            .collect()
    };
    let first = p.sluice(&["run", "--json", "--cache-dir", cache]);
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(loaded(&first), [false, false]);
    let second = p.sluice(&["run", "--json", "--cache-dir", cache]);
    assert_eq!(second.code, 0, "{}", second.all());
    assert_eq!(loaded(&second), [true, true]);
}

#[test]
fn a_compile_cache_inside_the_workspace_is_never_loaded() {
    // A stage granted `workspace: write` could plant native code in such a
    // cache; the runner compiles in memory instead and says why.
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: cache\nstages:\n  a: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    let loaded = |run: &sluice_tests::Run| -> Vec<bool> {
        run.events()
            .iter()
            .filter(|e| e["event"] == "plugin_loaded")
            .map(|e| e["cached"].as_bool().unwrap_or(false))
            .collect()
    };
    for _ in 0..2 {
        let run = p.sluice(&["run", "--json", "--cache-dir", ".sluice/cache"]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert_eq!(loaded(&run), [false]);
        assert!(
            run.stderr.contains("is inside the pipeline's workspace"),
            "{}",
            run.all()
        );
    }
    assert!(!p
        .path()
        .join(".sluice/cache")
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false));
}

#[test]
fn validate_describes_a_good_pipeline() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: ok\nstages:\n  a: { uses: \"{fixture}\", with: { mode: pass } }\n  b: { uses: \"{fixture}\", needs: [a], with: { mode: pass } }\n",
    );
    let run = p.sluice(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("pipeline `ok` is valid: 2 stages"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("b: ") && run.stdout.contains("(needs a)"),
        "{}",
        run.all()
    );
}
