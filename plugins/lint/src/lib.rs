//! `lint`: the sluice reference stage that checks a workspace.
//!
//! Built for `wasm32-wasip2` (`cargo build --release --target wasm32-wasip2
//! -p sluice-plugin-lint`; `scripts/build-plugins.sh` copies it to
//! `dist/plugins/lint.wasm`). Everything but [`stage`] is plain Rust and is
//! unit-tested natively.
//!
//! # What it does
//!
//! 1. **Its own checks** (pure Wasm, needs `grants.workspace: read`) over
//!    the files under `paths` that match `include` and not `exclude`, and
//!    that the project's `.gitignore`, `.ignore` and `.git/info/exclude`
//!    files do not ignore (git's rules and precedence, read at every depth
//!    with or without `.git`; `gitignore: false` turns this off). Tool
//!    caches (`.pytest_cache/`, `.hypothesis/`, `.ruff_cache/`, ...) and the
//!    reports external linters write (`output:`) are never checked, so a
//!    second run finds what the first found. Binary files (a NUL byte in
//!    the first 8000 bytes, git's rule) are skipped; symbolic links are not
//!    followed.
//!
//!    | rule | default | finds |
//!    |---|---|---|
//!    | `yaml-syntax` | error | `.yaml`/`.yml` that does not parse (every document; duplicate keys count) |
//!    | `json-syntax` | error | `.json` that does not parse (`jsonc` files may have comments and trailing commas) |
//!    | `toml-syntax` | error | `.toml` that does not parse |
//!    | `merge-conflict-marker` | error | `<<<<<<< `, `\|\|\|\|\|\|\| `, `>>>>>>> ` at line start; a lone `=======` only in a file that has one of those |
//!    | `yaml-tab-indent` | error | a tab in a YAML line's indentation (block-scalar content excepted) |
//!    | `trailing-whitespace` | warning | spaces/tabs at line end (Markdown's two-space hard break excepted) |
//!    | `final-newline` | warning | a non-empty file not ending in `\n` |
//!    | `large-file` | warning | a file above `max-file-size`; its content is not read |
//!    | `line-endings` | warning | a line ending other than `line-endings` asks for (off while `any`) |
//!
//!    Parse errors carry the parser's own line, column and message.
//!
//! 2. **External linters** (optional): each `external` entry runs a host
//!    program through `exec` (it must be in the stage's `grants.exec`; if
//!    not, the stage fails with `denied` and the message names the grant to
//!    add), reads cargo's JSON diagnostics or a SARIF 2.1.0 log from stdout
//!    or from an `output` file, and merges the findings with its own. A
//!    linter that exits non-zero is fine as long as it produced a report.
//!
//!    - cargo findings inside a macro expansion (`assert_eq!` on floats,
//!      whose primary span is in `/rustc/<hash>/library/core/...`) are put
//!      at the call site: the outermost span of the `expansion` chain that
//!      is in the workspace. Each call site is its own finding; a finding
//!      wholly outside the workspace keeps no file rather than a path
//!      outside it.
//!    - an `output` file is removed before the tool runs (tools such as
//!      flake8 append to `--output-file`; this needs `grants.workspace:
//!      write`). Without write access the stage notes its modification
//!      time and size, and a report the tool did not rewrite fails the
//!      stage ("left from an earlier run"): old findings are never taken
//!      for this run's.
//!
//! 3. **Reports**: every finding is one log line
//!    (`src/app.py:3:1 error merge-conflict-marker …`, with ` [tool]` for
//!    external tools); the artifact `lint.sarif` (SARIF 2.1.0, one run per
//!    tool, URIs relative to the workspace with `uriBaseId: %SRCROOT%`); the
//!    metrics `lint.errors`, `lint.warnings`, `lint.notes`, `lint.files`
//!    (files the stage's checks read plus files external tools reported
//!    findings in); the outputs `errors`, `warnings`, `sarif`; and a
//!    summary with the counts and what was checked (`8 errors, 3 warnings
//!    in 16 files (sluice-lint, ruff)`, or with `builtin: false` `2 errors
//!    from clippy (external); built-in checks off`) and the first ten
//!    findings, errors first.
//!
//! By default the stage only reports: the pipeline decides with a gate such
//! as `{ metric: lint.errors, max: 0 }`. Set `fail-on: error` (or
//! `warning`) to have the stage fail its own `lint` gate instead.
//!
//! # `with:` options
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `paths` | `["."]` | directories or files to check, relative to the workspace; one that does not exist is a config error |
//! | `include` | `["**"]` | globs a file must match; `*` stays within a directory, `**` crosses them |
//! | `exclude` | `[]` | more globs to skip (files, or `dir/**` to skip a directory without entering it) |
//! | `default-excludes` | `true` | also skip `.git/`, `target/`, `node_modules/`, `.pytest_cache/`, `.hypothesis/`, `.ruff_cache/`, `.mypy_cache/`, `.tox/`, `.nox/`, `__pycache__/` (at any depth), `.sluice/**`, `dist/**` |
//! | `gitignore` | `true` | skip what `.gitignore`, `.ignore` and `.git/info/exclude` ignore (a file named in `paths` is checked anyway) |
//! | `jsonc` | `tsconfig*.json`, `jsconfig*.json`, `.vscode/*.json`, `.devcontainer/*.json`, `.devcontainer.json`, `*.jsonc` (at any depth) | JSON files allowed comments and trailing commas |
//! | `max-file-size` | `1MiB` | bytes (`1048576`) or with a unit (`512KiB`, `2MB`) |
//! | `line-endings` | `any` | `lf`, `crlf` or `any` |
//! | `rules` | all on | `{ rule: off \| note \| warning \| error }` (`true` = default level, `false` = off) |
//! | `builtin` | `true` | `false` runs only the external linters |
//! | `external` | `[]` | list of `{ command, format, cwd?, output?, name?, timeout? }` |
//! | `fail-on` | `never` | `error` or `warning`: the stage fails its own `lint` gate |
//!
//! `external` entries:
//!
//! | key | meaning |
//! |---|---|
//! | `command` | `[program, args...]`; `program` is a bare name that must be in `grants.exec` |
//! | `format` | `clippy-json` (cargo's `--message-format=json`: `compiler-message` lines, primary span mapped to the call site of macros) or `sarif` (SARIF 2.1.0) |
//! | `cwd` | working directory relative to the workspace (default: its root); relative paths in the report are resolved against it |
//! | `output` | read the report from this workspace-relative file instead of stdout; removed before the tool runs, never linted, refused when the tool did not rewrite it |
//! | `name` | tool name in findings and SARIF (default: `clippy`/`cargo`, or the SARIF driver name) |
//! | `timeout` | `90s`, `10m`, ... (default: the time the stage has left) |
//!
//! Unknown keys, unknown rules (with a "did you mean"), bad globs, unknown
//! formats, paths with `..` and program paths are `invalid config` errors
//! that name the key, e.g. `with.include[1]: invalid glob `src/[a`: …`.
//!
//! # Example
//!
//! ```yaml
//! lint:
//!   uses: plugins/lint.wasm
//!   with:
//!     exclude: ["vendor/**"]
//!     rules: { trailing-whitespace: off, final-newline: error }
//!     external:
//!       - { command: [cargo, clippy, --message-format=json], format: clippy-json }
//!       - { command: [ruff, check, --output-format=sarif, --exit-zero], format: sarif }
//!   grants: { workspace: read, exec: [cargo, ruff] }
//!   gates:
//!     - { metric: lint.errors, max: 0 }
//!     - { metric: lint.warnings, max: 20, on-fail: warn }
//! ```

#![deny(missing_docs)]

pub mod checks;
pub mod config;
pub mod external;
pub mod finding;
pub mod lint;
pub mod report;
pub mod rules;
pub mod sarif;
pub mod schema;
pub mod stage;
pub mod walk;
