# SPDX-License-Identifier: Apache-2.0
"""License-header check: a sluice stage written in Python (WIT sluice:stage@0.2.0).

Reads every workspace file whose name matches `with.include` (glob patterns,
default: common source extensions), checks that `with.header` appears in its
first `with.lines` lines (default 10), and reports:

- one finding `license-header` per file without the header (level `error`
  when `with.required` is true, else `warning`), located at the file; the
  runner writes them as SARIF (`findings.sarif`), so this stage has no SARIF
  code of its own;
- metric `license.missing`: files without the header;
- metric `license.checked`: files looked at;
- gate `license-header`: fail when any file misses the header and
  `with.required` is true, warn when it is false (the default);
- artifact `license-report.json` (role `report`): the files checked and
  missing.

It logs through the `log` import (levels and key/value fields), reports
progress while it reads the files, and stops between files when the runner
cancels it.

Build: ./build.sh  (componentize-py -d ../../../wit/v0.2 -w stage componentize app -o license-check.wasm)
"""

import fnmatch
import json
import os

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import cancel
from wit_world.imports import log as stage_log
from wit_world.imports.log import Level
from wit_world.imports.sluice_stage_types import (
    ArtifactInfo,
    ArtifactRole_Report,
    Capability_WorkspaceRead,
    Finding,
    FindingLevel,
    Gate,
    Location,
    Metric,
    PluginInfo,
    Report,
    StageError_Denied,
    StageError_Failed,
    StageError_InvalidConfig,
    StageKind_Lint,
    Verdict,
)

WORKSPACE = "/workspace"
DEFAULT_INCLUDE = ["*.py", "*.rs", "*.js", "*.ts", "*.c", "*.h", "*.go", "*.java"]
RULE_ID = "license-header"
HELP_URI = "https://spdx.dev/learn/handling-license-info/"
SKIP_DIRS = {".git", ".sluice", "node_modules", "target", "__pycache__", ".venv"}

CONFIG_SCHEMA = {
    "type": "object",
    "required": ["header"],
    "additionalProperties": False,
    "properties": {
        "header": {"type": "string", "minLength": 1,
                   "description": "Text that must appear near the top of every file"},
        "include": {"type": "array", "items": {"type": "string"},
                    "description": "Glob patterns (e.g. `src/**/*.py`, `*.rs`) or bare extensions (`.py`)"},
        "exclude": {"type": "array", "items": {"type": "string"}},
        "lines": {"type": "integer", "minimum": 1,
                  "description": "How many leading lines to search (default 10)"},
        "required": {"type": "boolean",
                     "description": "Fail the stage's gate when a header is missing (default false: warn)"},
    },
}


def log(level: Level, message: str, **fields) -> None:
    """One record in the stage log: the runner keeps `fields` as data."""
    stage_log.log(level, message, [(k.replace("_", "-"), str(v)) for k, v in fields.items()])


def invalid(msg: str) -> Err:
    return Err(StageError_InvalidConfig(msg))


def normalize_patterns(patterns):
    """`.py` and `py` mean `*.py`; anything else is a glob matched against the
    path relative to the workspace (and, when it has no `/`, the file name)."""
    out = []
    for p in patterns:
        if not p.startswith("*") and "/" not in p and "*" not in p and "?" not in p:
            p = "*." + p.lstrip(".")
        out.append(p)
    return out


def matches(rel: str, patterns) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for p in patterns:
        if "/" in p:
            if fnmatch.fnmatchcase(rel, p) or (
                "**/" in p and fnmatch.fnmatchcase(rel, p.replace("**/", ""))
            ):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


def load_config(raw: str) -> dict:
    try:
        cfg = json.loads(raw or "{}")
    except ValueError as e:
        raise invalid(f"with: is not valid JSON: {e}")
    if not isinstance(cfg, dict):
        raise invalid("with: must be a mapping")
    header = cfg.get("header")
    if not isinstance(header, str) or not header.strip():
        raise invalid("with.header: required, the text every file must contain, e.g. `SPDX-License-Identifier: MIT`")
    include = cfg.get("include", DEFAULT_INCLUDE)
    if isinstance(include, str):
        include = [include]
    if not isinstance(include, list) or not all(isinstance(x, str) for x in include):
        raise invalid("with.include: must be a list of glob patterns or extensions")
    exclude = cfg.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise invalid("with.exclude: must be a list of glob patterns")
    lines = cfg.get("lines", 10)
    if not isinstance(lines, int) or isinstance(lines, bool) or lines < 1:
        raise invalid("with.lines: must be a positive integer")
    required = cfg.get("required", False)
    if not isinstance(required, bool):
        raise invalid("with.required: must be true or false")
    return {
        "header": header.strip(),
        "include": normalize_patterns(include),
        "exclude": normalize_patterns(exclude),
        "lines": lines,
        "required": required,
    }


def walk(root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            yield full, os.path.relpath(full, root).replace(os.sep, "/")


def has_header(path: str, header: str, lines: int) -> bool:
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            if i >= lines:
                break
            if header in line:
                return True
    return False


def missing_finding(rel: str, cfg: dict) -> Finding:
    return Finding(
        rule_id=RULE_ID,
        level=FindingLevel.ERROR if cfg["required"] else FindingLevel.WARNING,
        message=f"`{cfg['header']}` is not in the first {cfg['lines']} lines of the file",
        location=Location(path=rel, start_line=0, start_column=None, end_line=None, end_column=None),
        # The rule and the path identify it across runs.
        fingerprint=f"{RULE_ID}:{rel}",
        help_uri=HELP_URI,
    )


class Plugin(exports.Plugin):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="license-check",
            version="0.2.0",
            kind=StageKind_Lint(),
            description="Checks that workspace source files carry a license header.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            capabilities=[Capability_WorkspaceRead()],
        )

    def run(self, ctx) -> Report:
        cfg = load_config(ctx.config)
        if not os.path.isdir(WORKSPACE):
            # The runner names the grant to add.
            raise Err(StageError_Denied(Capability_WorkspaceRead()))
        # The runner already tags every record with the stage and the run.
        log(Level.INFO, "looking for the license header",
            header=cfg["header"], lines=cfg["lines"], include=",".join(cfg["include"]))

        try:
            candidates = [(full, rel) for full, rel in walk(WORKSPACE)
                          if matches(rel, cfg["include"]) and not matches(rel, cfg["exclude"])]
        except OSError as e:
            raise Err(StageError_Failed(f"reading the workspace: {e}"))

        checked, missing, findings = [], [], []
        total = len(candidates)
        for i, (full, rel) in enumerate(candidates):
            if cancel.is_cancelled():
                log(Level.WARN, "cancelled", checked=len(checked), total=total)
                raise Err(StageError_Failed(f"cancelled after {len(checked)} of {total} files"))
            stage_log.progress(i, total, f"checking {rel}")
            try:
                ok = has_header(full, cfg["header"], cfg["lines"])
            except OSError as e:
                raise Err(StageError_Failed(f"reading {rel}: {e}"))
            checked.append(rel)
            if not ok:
                log(Level.WARN, f"missing header: {rel}", path=rel)
                missing.append(rel)
                findings.append(missing_finding(rel, cfg))
        stage_log.progress(total, total, "done")
        log(Level.INFO, f"checked {len(checked)} files, {len(missing)} without the header",
            checked=len(checked), missing=len(missing))

        out_dir = ctx.outputs_dir or "/artifacts/out"
        report_doc = {"header": cfg["header"], "checked": checked, "missing": missing}
        try:
            with open(os.path.join(out_dir, "license-report.json"), "w", encoding="utf-8") as fh:
                json.dump(report_doc, fh, indent=2)
                fh.write("\n")
        except OSError as e:
            raise Err(StageError_Failed(f"writing {out_dir}/license-report.json: {e}"))

        if not missing:
            verdict, message = Verdict.PASS, f"all {len(checked)} files carry the header"
        else:
            verdict = Verdict.FAIL if cfg["required"] else Verdict.WARN
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            message = f"{len(missing)} of {len(checked)} files lack `{cfg['header']}`: {shown}"

        summary = (f"License headers: {len(checked) - len(missing)}/{len(checked)} files ok"
                   + ("" if not missing else f", {len(missing)} missing"))
        return Report(
            summary=summary,
            metrics=[
                Metric(name="license.missing", value=float(len(missing)), unit=None),
                Metric(name="license.checked", value=float(len(checked)), unit=None),
            ],
            gates=[Gate(name="license-header", verdict=verdict, observed=float(len(missing)),
                        threshold=0.0, message=message)],
            outputs=[("missing", str(len(missing)))],
            artifacts=[ArtifactInfo(path="license-report.json", media_type="application/json",
                                    role=ArtifactRole_Report(),
                                    annotations=[("license.header", cfg["header"])])],
            # `some([])` when every file is fine: the check ran and found nothing.
            findings=findings,
        )
