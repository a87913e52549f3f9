//! `scan`: the sluice reference stage that finds **committed secrets** and
//! **vulnerable dependencies**.
//!
//! It reads the workspace (grant `workspace: read`), writes `scan.sarif`
//! (SARIF 2.1.0) and `scan.json`, logs every finding (redacted), and
//! reports metrics that pipelines gate on:
//!
//! ```yaml
//! scan:
//!   uses: plugins/scan.wasm
//!   grants: { workspace: read }
//!   with:
//!     advisories: security/osv          # a directory of OSV .json files
//!     exclude: ["**/node_modules/**", "tests/fixtures/**"]
//!     allow: ["docs/setup.md:aws-access-key-id:12", "GHSA-xxxx-xxxx-xxxx"]
//!   gates:
//!     - { metric: secrets.found, max: 0 }
//!     - { metric: vulns.critical, max: 0 }
//!     - { metric: vulns.high, max: 0 }
//!     - { metric: vulns.medium, max: 5, on-fail: warn }
//! ```
//!
//! # `with:` options
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `include` | `["**"]` | globs of files to scan, relative to the workspace (`*` stays within a directory, `**` crosses directories) |
//! | `exclude` | `**/node_modules/**`, `**/target/**`, `**/.venv/**`, `**/venv/**`, `**/__pycache__/**` | globs of files and directories to skip; **replaces** the default. `.git`, `.hg`, `.svn`, `.sluice` and the advisory directory are always skipped |
//! | `max-file-size` | `1MiB` | files larger than this are not scanned for secrets; bytes or `512KiB`, `2MB`, … (lockfiles are read up to 64 MiB regardless) |
//! | `secrets` | `true` | scan for secrets |
//! | `dependencies` | `true` | read lockfiles and match them against `advisories` |
//! | `advisories` | none | where OSV advisories come from, one source or a list: a directory of OSV JSON files or an OSV `all.zip` dump (relative to the workspace or under `/artifacts/in/<stage>/`), an `https://` URL of a dump, or `{api: https://api.osv.dev}` (`{api: true}`) for the OSV API ([`osv::source`]); required for any `vulns.*` metric |
//! | `cache` | `.sluice-osv-cache` | directory (relative to the workspace) caching OSV API answers and downloaded dumps, or `false`; needs `workspace: write`, and with a read-only workspace nothing is cached (the log says so) ([`osv::cache`]) |
//! | `cache-max-age` | `1h` | how long a cached answer or dump is used before it is fetched again |
//! | `allow` | `[]` | accepted findings: secret fingerprints `path:rule-id:line`, advisory ids/aliases, or regexes tested against the secret value ([`allow`]) |
//! | `entropy-threshold` | scaled | fixed minimum Shannon entropy (bits/char) for token and key values of the `generic-secret` rule; unset, the threshold scales with the value's length and charset ([`secrets::entropy::scaled_threshold`]) |
//!
//! Unknown keys, invalid globs or regexes, a missing or empty advisory
//! directory, and `secrets: false` with `dependencies: false` are
//! configuration errors (`invalid-config`, naming the key and the fix).
//! The same rules are published as a JSON Schema from `describe`, so the
//! runner rejects most mistakes before the stage starts.
//!
//! # Metrics
//!
//! | metric | meaning |
//! |---|---|
//! | `secrets.found` | secret findings after suppression (only when `secrets` is on) |
//! | `vulns.critical`, `vulns.high`, `vulns.medium`, `vulns.low` | vulnerabilities by severity: CVSS ≥ 9.0, ≥ 7.0, ≥ 4.0, > 0 ([`severity`]) |
//! | `vulns.unknown`, `vulns.total` | vulnerabilities without any severity, and all of them |
//! | `vulns.packages` | vulnerable package versions: those with at least one vulnerability |
//! | `deps.packages` | package versions read from lockfiles |
//!
//! One *vulnerability* is one advisory affecting one package version:
//! advisories that alias each other count once, and so does a package
//! version pinned in several lockfiles (a `go.mod` and its `go.sum`),
//! though each place is listed in `scan.json` and SARIF. A package version
//! is its ecosystem, normalized name and version. So a package with two
//! advisories is 2 vulnerabilities in 1 package, and the summary reads
//! "N vulnerabilities (…) in M of P packages" with N = `vulns.total`,
//! M = `vulns.packages` and P = `deps.packages`.
//! | `scan.files`, `scan.bytes` | files and bytes read |
//!
//! The `vulns.*` metrics are reported only when an advisory database was
//! given: a gate on a metric that was not measured is inconclusive and
//! blocks, so forgetting `advisories` cannot silently pass a gate.
//! Outputs: `secrets` and `vulns` (counts), for later stages.
//!
//! # Secrets
//!
//! The rule set is documented in [`secrets::rules`]. A finding holds only
//! a redacted preview (its first characters and `…`, see
//! [`secrets::redact`]); the value itself never reaches a log, the summary
//! or an artifact. Suppress a finding with `sluice:ignore-secret` on its
//! line, or with its fingerprint in `allow`. Published documentation
//! examples (AWS's example key pair, …) and placeholders (`ghp_XXXX…`,
//! `changeme`, `${VAR}`) are suppressed by default and counted in the log
//! and `scan.json` (`suppressed.placeholders`). Files with a NUL byte in their
//! first 8000 bytes are binary and skipped.
//!
//! # Dependencies
//!
//! Advisory data comes as users get it from OSV ([`osv::source`]): a
//! directory, a per-ecosystem `all.zip` dump read in place, the URL of such
//! a dump (a mirror), or the OSV API (`POST /v1/querybatch` in batches of
//! at most 1000 queries following `next_page_token`, then
//! `GET /v1/vulns/{id}` per advisory, [`osv::api`]). URLs and the API need
//! the network grant, e.g.
//!
//! ```yaml
//! scan:
//!   uses: plugins/scan.wasm
//!   grants: { workspace: write, network: ["api.osv.dev:443"] }
//!   with:
//!     advisories: [security/osv, { api: https://api.osv.dev }]
//!     cache-max-age: 6h
//! ```
//!
//! Without the grant the stage fails `denied` naming the `host:port` to
//! add. Answers are cached per package version and per advisory under
//! `cache`, so a second run over the same lockfiles within
//! `cache-max-age` sends no request.
//!
//! Lockfile formats: [`deps`] (Cargo.lock, package-lock.json,
//! npm-shrinkwrap.json, yarn.lock 1 and berry, pnpm-lock.yaml 5/6/9,
//! requirements files with `-r` includes, poetry.lock, Pipfile.lock,
//! uv.lock, go.mod, go.sum). Files that look like lockfiles of other tools
//! (`Gemfile.lock`, `composer.lock`, any `*.lock`, …) are listed in a
//! warning and at the end of the summary. Matching follows the OSV schema
//! ([`osv::range`]): `SEMVER` and `ECOSYSTEM` ranges with `introduced`,
//! `fixed`, `last_affected` and `limit` events, and exact `versions` lists;
//! SemVer precedence for crates.io and npm, PEP 440 for PyPI, SemVer with
//! pseudo-versions for Go ([`version`]).
//! Advisories that alias each other (a `GHSA` and a `PYSEC` for the same
//! CVE) are reported once.
//!
//! # Performance
//!
//! One case-insensitive Aho-Corasick pass finds every rule keyword; the
//! rule regexes then run only on the lines that hold one (see
//! [`secrets::SecretScanner`]). Measured on a 2-core machine shared with
//! other builds (so ±20%): natively about 200 MB/s both on a crates.io
//! source mirror (48 000 files, 600 MB) and on 7 large files (220 MB); as a
//! component under the runner about 60–70 MB/s on the large files and
//! 25–30 MB/s on the many small ones, where each file costs a few host
//! calls (open, stat, read) that dominate.
//!
//! # Crate layout
//!
//! Everything but [`stage`] is plain Rust without the SDK, so the scanner
//! runs natively too: `cargo run --release -p sluice-plugin-scan --bin
//! scan-native -- DIR [ADVISORIES]` scans a directory and prints MB/s, to
//! compare with the same code running as a component.

pub mod allow;
pub mod config;
pub mod deps;
pub mod osv;
pub mod report;
pub mod sarif;
pub mod scan;
pub mod secrets;
pub mod severity;
pub mod stage;
pub mod version;
pub mod walk;
