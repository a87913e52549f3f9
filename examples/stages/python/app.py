# SPDX-License-Identifier: Apache-2.0
"""License-header check: a sluice stage written in Python.

Reads every workspace file whose name matches `with.include` (glob patterns,
default: common source extensions), checks that `with.header` appears in its
first `with.lines` lines (default 10), and reports:

- metric `license.missing`: files without the header;
- metric `license.checked`: files looked at;
- gate `license-header`: fail when any file misses the header and
  `with.required` is true, warn when it is false (the default);
- artifact `license-report.json`: the list of files checked and missing.

Logging goes to stderr, which the runner captures into the stage log.

Build: ./build.sh  (componentize-py -d ../../../wit -w stage componentize app -o license-check.wasm)
"""

import fnmatch
import json
import os
import sys

import wit_world
from componentize_py_types import Err
from wit_world.imports.sluice_stage_types import (
    Capability_WorkspaceRead,
    Gate,
    Metric,
    PluginInfo,
    Report,
    StageError_Denied,
    StageError_Failed,
    StageError_InvalidConfig,
    Verdict,
)

WORKSPACE = "/workspace"
DEFAULT_INCLUDE = ["*.py", "*.rs", "*.js", "*.ts", "*.c", "*.h", "*.go", "*.java"]
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


def log(msg: str) -> None:
    print(f"[license-check] {msg}", file=sys.stderr, flush=True)


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


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name="license-check",
            version="0.1.0",
            kind="lint",
            description="Checks that workspace source files carry a license header.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            capabilities=[Capability_WorkspaceRead()],
        )

    def run(self, ctx) -> Report:
        cfg = load_config(ctx.config)
        if not os.path.isdir(WORKSPACE):
            raise Err(StageError_Denied("no workspace: grant `workspace: read` to this stage"))
        log(f"stage {ctx.stage} of run {ctx.run_id}: looking for {cfg['header']!r} "
            f"in the first {cfg['lines']} lines of {', '.join(cfg['include'])}")

        checked, missing = [], []
        try:
            for full, rel in walk(WORKSPACE):
                if not matches(rel, cfg["include"]) or matches(rel, cfg["exclude"]):
                    continue
                checked.append(rel)
                if not has_header(full, cfg["header"], cfg["lines"]):
                    log(f"missing header: {rel}")
                    missing.append(rel)
        except OSError as e:
            raise Err(StageError_Failed(f"reading the workspace: {e}"))
        log(f"checked {len(checked)} files, {len(missing)} without the header")

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
            artifacts=[("license-report.json", "application/json")],
        )
