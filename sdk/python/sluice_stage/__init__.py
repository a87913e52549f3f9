# SPDX-License-Identifier: Apache-2.0
"""The Python SDK for writing sluice pipeline stages.

A stage is a WebAssembly component targeting WIT `sluice:stage@0.2.0`,
built from a Python module with componentize-py. This package hides the
generated bindings:

    from dataclasses import dataclass
    from sluice_stage import Capability, Context, Finding, Report, Verdict, log, setting, stage, workspace

    @dataclass
    class Config:
        pattern: str = setting("TODO", description="Text to look for")

    @stage(name="todo-count", version="0.1.0", kind="lint", description="Counts TODOs.",
           config=Config, capabilities=[Capability.workspace_read()])
    def run(ctx: Context[Config]) -> Report:
        root = ctx.require_workspace()
        hits = [f.rel for f in workspace.files(root, ["**/*.py"]) if ctx.config.pattern in f.path.read_text()]
        log.info("counted", files=len(hits))
        return (Report(f"{len(hits)} files with {ctx.config.pattern}")
                .metric("todo.files", len(hits))
                .with_findings(Finding.note("todo", "a TODO is left", path=p) for p in hits))

Build: `componentize-py -d wit -w stage componentize app -o stage.wasm`
with this package on the Python path (`-p .`). Test natively with
`sluice_stage.testing.FakeHost`.

| need | use |
|---|---|
| describe/run | `stage` (decorator), `Context`, `Report` |
| config | a dataclass, `setting`, `ctx.config`, `values.Duration`/`values.Size` |
| files | `ctx.require_workspace()`, `workspace.files/find/Snapshot`, `ctx.write_artifact` |
| logging, progress | `log.info(msg, **fields)` …, `log.progress` |
| cancellation | `cancel.is_cancelled/check/sleep` |
| programs, secrets | `exec.run/spawn`, `secrets.get` |
| errors | `InvalidConfig`, `Denied`, `Failed`, `NotFound`, `ExecError`, `ExecFailed`, `Cancelled` |
"""

from . import cancel, exec, log, secrets, values, workspace
from .config import schema_for, setting
from .context import INPUTS_DIR, OUTPUTS_DIR, WORKSPACE_DIR, Context
from .errors import Cancelled, Denied, ExecError, ExecFailed, Failed, InvalidConfig, NotFound, StageError
from .report import ArtifactInfo, Finding, Gate, Location, Metric, Report
from .stage import PluginInfo, Stage, plugin_class, stage
from .types import Artifact, ArtifactRole, Capability, FindingLevel, UpstreamOutput, Verdict

#: The SDK's version.
__version__ = "0.2.0"

__all__ = [
    "Artifact", "ArtifactInfo", "ArtifactRole", "Cancelled", "Capability", "Context", "Denied",
    "ExecError", "ExecFailed", "Failed", "Finding", "FindingLevel", "Gate", "INPUTS_DIR",
    "InvalidConfig", "Location", "Metric", "NotFound", "OUTPUTS_DIR", "PluginInfo", "Report",
    "Stage", "StageError", "UpstreamOutput", "Verdict", "WORKSPACE_DIR", "cancel", "exec", "log",
    "plugin_class", "schema_for", "secrets", "setting", "stage", "values", "workspace",
]
