# SPDX-License-Identifier: Apache-2.0
"""License-header check: a sluice stage written in Python on the `sluice_stage` SDK.

Reads every workspace file matching `with.include` (globs, or bare extensions
like `.py`) and not `with.exclude`, checks that `with.header` appears in its
first `with.lines` lines, and reports:

- one finding `license-header` per file without the header (`error` when
  `with.required` is true, else `warning`); the runner writes them as SARIF;
- metrics `license.missing` and `license.checked`, output `missing`;
- gate `license-header`: fail when a header is missing and `with.required`,
  else warn;
- artifact `license-report.json` (role `report`): the files checked and missing.

It logs with levels and fields, reports progress, and stops between files when
cancelled. Build: ./build.sh (componentize-py with ../../../sdk/python on the path).
"""

from dataclasses import dataclass, field
from typing import List

from sluice_stage import ArtifactRole, Capability, Context, Finding, Report, Verdict
from sluice_stage import cancel, log, setting, stage, workspace

HELP_URI = "https://spdx.dev/learn/handling-license-info/"


@dataclass
class Config:
    header: str = setting(description="Text that must appear near the top of every file", min_length=1)
    include: List[str] = setting(
        default_factory=lambda: ["*.py", "*.rs", "*.js", "*.ts", "*.c", "*.h", "*.go", "*.java"],
        description="Glob patterns (e.g. `src/**/*.py`, `*.rs`) or bare extensions (`.py`)",
    )
    exclude: List[str] = field(default_factory=list)
    """Glob patterns of files to leave out"""
    lines: int = setting(10, description="How many leading lines to search", minimum=1)
    required: bool = setting(False, description="Fail the stage's gate when a header is missing (default: warn)")

    def __post_init__(self):
        self.header = self.header.strip()
        # `.py` is short for `*.py`.
        self.include = ["*" + p if p.startswith(".") else p for p in self.include]
        self.exclude = ["*" + p if p.startswith(".") else p for p in self.exclude]


def has_header(path, cfg: Config) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return any(cfg.header in line for _, line in zip(range(cfg.lines), fh))


@stage(name="license-check", version="0.2.0", kind="lint",
       description="Checks that workspace source files carry a license header.",
       config=Config, capabilities=[Capability.workspace_read()])
def run(ctx: Context[Config]) -> Report:
    cfg = ctx.config
    root = ctx.require_workspace()
    log.info("looking for the license header", header=cfg.header, lines=cfg.lines, include=",".join(cfg.include))
    candidates = workspace.files(root, cfg.include, cfg.exclude)

    checked, missing = [], []
    report = Report().with_findings([])
    for i, f in enumerate(candidates):
        cancel.check(f"cancelled after {len(checked)} of {len(candidates)} files")
        log.progress(i, len(candidates), f"checking {f.rel}")
        checked.append(f.rel)
        if not has_header(f.path, cfg):
            log.warn(f"missing header: {f.rel}", path=f.rel)
            missing.append(f.rel)
            level = Finding.error if cfg.required else Finding.warning
            report.finding(level("license-header", f"`{cfg.header}` is not in the first {cfg.lines} lines of the file",
                                 path=f.rel, fingerprint=f"license-header:{f.rel}", help_uri=HELP_URI))
    log.progress(len(candidates), len(candidates), "done")
    log.info(f"checked {len(checked)} files, {len(missing)} without the header",
             checked=len(checked), missing=len(missing))

    ctx.write_artifact("license-report.json", {"header": cfg.header, "checked": checked, "missing": missing},
                       role=ArtifactRole.REPORT, annotations={"license.header": cfg.header})
    if not missing:
        verdict, message = Verdict.PASS, f"all {len(checked)} files carry the header"
    else:
        verdict = Verdict.FAIL if cfg.required else Verdict.WARN
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        message = f"{len(missing)} of {len(checked)} files lack `{cfg.header}`: {shown}"
    report.summary = f"License headers: {len(checked) - len(missing)}/{len(checked)} files ok" + (
        f", {len(missing)} missing" if missing else "")
    return (report.metric("license.missing", len(missing)).metric("license.checked", len(checked))
            .gate("license-header", verdict, message, observed=len(missing), threshold=0)
            .output("missing", len(missing)))
