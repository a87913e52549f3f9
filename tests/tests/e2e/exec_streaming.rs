//! Output of programs a stage runs through `exec` streams into the stage
//! log as it arrives, stdout and stderr interleaved in the order written.

use sluice_tests::{plugin, Project};

/// Seconds since midnight of an RFC 3339 `ts` (`…T08:40:01.123456Z`).
fn seconds_of_day(ts: &str) -> f64 {
    let time = ts
        .split('T')
        .nth(1)
        .and_then(|t| t.strip_suffix('Z'))
        .unwrap_or_else(|| panic!("ts {ts} is not RFC 3339 UTC"));
    time.split(':')
        .map(|part| {
            part.parse::<f64>()
                .unwrap_or_else(|e| panic!("ts {ts}: {e}"))
        })
        .fold(0.0, |acc, v| acc * 60.0 + v)
}

#[test]
fn exec_output_streams_in_arrival_order() {
    let p = Project::new();
    let build = plugin("build").display().to_string();
    p.write(
        "sluice.yaml",
        &format!(
            r#"version: 1
name: streaming
stages:
  build:
    uses: {build}
    with:
      commands:
        - [sh, -c, "for i in $(seq 1 20); do echo out $i; echo err $i >&2; sleep 0.1; done; echo done > out.txt"]
      outputs: [out.txt]
    grants: {{ workspace: write, exec: [sh] }}
"#
        ),
    );
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<(String, String)> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "stage_log" && e["stage"] == "build")
        .filter_map(|e| {
            let line = e["line"].as_str()?.to_string();
            let ts = e["ts"].as_str()?.to_string();
            (line.starts_with("out ") || line.starts_with("err ")).then_some((line, ts))
        })
        .collect();
    let expected: Vec<String> = (1..=20)
        .flat_map(|i| [format!("out {i}"), format!("err {i}")])
        .collect();
    let got: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
    // Each line exactly once (the stage does not echo it a second time),
    // in the order the program wrote it.
    assert_eq!(got, expected, "{}", run.all());
    // Streamed, not delivered at exit: the first line reached the event
    // stream while the program was still running (it runs about 2 s).
    let first = seconds_of_day(&lines[0].1);
    let last = seconds_of_day(&lines[lines.len() - 1].1);
    let spread = (last - first).rem_euclid(86_400.0);
    assert!(
        spread >= 1.5,
        "`out 1` at {}, `err 20` at {}: the output arrived all at once",
        lines[0].1,
        lines[lines.len() - 1].1
    );
}
