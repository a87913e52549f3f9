//! `scan-native`: the scanner of the `scan` stage, run natively, for
//! comparing its throughput with the same code running as a component.
//!
//! ```text
//! cargo run --release -p sluice-plugin-scan --bin scan-native -- DIR [--advisories OSV_DIR] [--repeat N] [--max-file-size BYTES] [--quiet] [--findings]
//! ```
//!
//! Prints the summary (as the stage reports it; every finding with
//! `--findings`) and, per repetition, the
//! time taken and throughput in MB/s (10^6 bytes per second of file data
//! read). Exit status 0 whatever was found; 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sluice_plugin_scan::config::{ByteSize, Options, Roots, Settings};
use sluice_plugin_scan::osv::AdvisoryDb;
use sluice_plugin_scan::{report, scan};

struct Args {
    dir: PathBuf,
    advisories: Option<PathBuf>,
    repeat: usize,
    max_file_size: Option<u64>,
    quiet: bool,
    findings: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut dir = None;
    let mut args = Args {
        dir: PathBuf::new(),
        advisories: None,
        repeat: 1,
        max_file_size: None,
        quiet: false,
        findings: false,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--advisories" => args.advisories = it.next().map(PathBuf::from),
            "--repeat" => {
                args.repeat = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--repeat needs a positive number")?;
            }
            "--max-file-size" => {
                let v = it.next().unwrap_or_default();
                args.max_file_size = Some(
                    v.parse::<ByteSize>()
                        .map_err(|e| format!("{e}; {}", e.hint))?
                        .as_u64(),
                );
            }
            "--quiet" => args.quiet = true,
            "--findings" => args.findings = true,
            "-h" | "--help" => return Err(String::new()),
            other if dir.is_none() && !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    args.dir = dir.ok_or("missing DIR")?;
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("usage: scan-native DIR [--advisories OSV_DIR] [--repeat N] [--max-file-size BYTES] [--quiet] [--findings]");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        max_file_size: args.max_file_size.map(ByteSize),
        ..Options::default()
    };
    let roots = Roots {
        workspace: args.dir.clone(),
        inputs: args.dir.clone(),
    };
    let settings = match Settings::from_options(options, &roots) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let db = match &args.advisories {
        Some(dir) => match AdvisoryDb::load(dir) {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("error: advisories: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let skip: Vec<PathBuf> = args.advisories.iter().cloned().collect();
    for round in 1..=args.repeat {
        let start = Instant::now();
        let outcome = match scan::run(&args.dir, &settings, db.as_ref(), &skip) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let secs = start.elapsed().as_secs_f64();
        if round == 1 && !args.quiet {
            println!("{}", report::summary(&outcome));
            for w in &outcome.warnings {
                println!("warning: {w}");
            }
            if args.findings {
                for s in &outcome.secrets {
                    println!("secret {}", report::secret_line(s));
                }
                for v in &outcome.vulns {
                    println!("vuln {}", report::vuln_line(v));
                }
            }
        }
        let mb = outcome.bytes as f64 / 1e6;
        println!(
            "run {round}: {} files, {:.2} MB in {:.3} s: {:.1} MB/s",
            outcome.files,
            mb,
            secs,
            if secs > 0.0 { mb / secs } else { 0.0 }
        );
    }
    ExitCode::SUCCESS
}
