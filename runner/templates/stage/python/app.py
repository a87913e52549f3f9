"""{{name}}: a sluice stage written in Python on the `sluice_stage` SDK.

It counts the lines containing a marker (default `TODO`) in the workspace
files matching `include` (default `**/*.py`) and reports:

- metrics `{{name}}.files` (files looked at) and `{{name}}.markers`;
- gate `{{name}}`: fails when there are more than `max` markers;
- one finding `{{name}}/marker` (a warning) per marker line;
- output `markers` and artifact `markers.txt` (role `report`).

Build with ./build.sh, test natively with `python3 -m pytest`, and in the
runner's sandbox with `sluice stage test` (see README.md).
"""

from dataclasses import dataclass, field
from typing import List

from sluice_stage import ArtifactRole, Capability, Context, Finding, Report, Verdict
from sluice_stage import cancel, log, setting, stage, workspace


@dataclass
class Config:
    """Settings of the {{name}} stage (its `with:` block)."""

    marker: str = setting("TODO", description="What counts as a marker", min_length=1)
    include: List[str] = field(default_factory=lambda: ["**/*.py"])
    """Glob patterns of the files to read, relative to the workspace (`src/**/*.py`)"""
    exclude: List[str] = field(default_factory=list)
    """Glob patterns of files to leave out"""
    max: int = setting(0, description="The most markers the gate lets through", minimum=0)


@stage(
    name="{{name}}",
    version="0.1.0",
    kind="lint",
    description="Counts marker comments (TODO) in the workspace",
    config=Config,
    capabilities=[Capability.workspace_read()],
)
def run(ctx: Context[Config]) -> Report:
    cfg = ctx.config
    root = ctx.require_workspace()  # Denied(workspace-read) without the grant
    files = workspace.files(root, cfg.include, cfg.exclude)
    log.info("looking for markers", marker=cfg.marker, files=len(files))

    report = Report().with_findings([])  # `[]`: looked, found nothing (yet)
    lines = []
    for i, f in enumerate(files):
        cancel.check()
        log.progress(i, len(files), f"reading {f.rel}")
        text = f.path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), start=1):
            if cfg.marker in line:
                lines.append(f"{f.rel}:{n}: {line.strip()}")
                report.finding(Finding.warning("{{name}}/marker", f"{cfg.marker} left in the code: {line.strip()}",
                                               path=f.rel, line=n))
                log.info(f.rel, line=n)
    count = len(lines)
    ctx.write_artifact("markers.txt", "".join(entry + "\n" for entry in lines), "text/plain", role=ArtifactRole.REPORT)

    verdict = Verdict.PASS if count <= cfg.max else Verdict.FAIL
    report.summary = f"{count} marker(s) in {len(files)} file(s)"
    return (
        report.metric("{{name}}.files", len(files))
        .metric("{{name}}.markers", count)
        .gate("{{name}}", verdict, f"{count} marker(s), at most {cfg.max} allowed", observed=count, threshold=cfg.max)
        .output("markers", count)
    )
