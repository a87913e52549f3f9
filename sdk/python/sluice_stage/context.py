# SPDX-License-Identifier: Apache-2.0
"""`Context`: what a stage is told about the run, with its parsed config."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Generic, List, Mapping, Optional, Sequence, TypeVar, Union

from .errors import Denied, Failed, InvalidConfig
from .report import ArtifactInfo
from .types import Artifact, ArtifactRole, Capability, UpstreamOutput

#: Guest path of the workspace.
WORKSPACE_DIR = "/workspace"
#: Guest path under which input artifacts are readable.
INPUTS_DIR = "/artifacts/in"
#: Guest path of the writable output directory.
OUTPUTS_DIR = "/artifacts/out"

C = TypeVar("C")


@dataclass
class RunInfo:
    """The raw context the host hands over (before the config is parsed)."""

    run_id: str = "test-run"
    pipeline: str = "test"
    stage: str = "stage"
    environment: Optional[str] = None
    config_json: str = "{}"
    inputs: List[Artifact] = field(default_factory=list)
    outputs_dir: str = OUTPUTS_DIR
    upstream: List[UpstreamOutput] = field(default_factory=list)
    attempt: int = 1
    deadline: Optional[_dt.datetime] = None
    grace_period: _dt.timedelta = _dt.timedelta(seconds=10)
    workspace: str = WORKSPACE_DIR
    inputs_dir: str = INPUTS_DIR


def load_json(text: str) -> Any:
    """The `with:` block's JSON (`{}` when blank); `InvalidConfig` when it
    is not JSON (only a hand-made context can do that)."""
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise InvalidConfig(f"with: is not valid JSON: {e}") from None


class Context(Generic[C]):
    """Everything a stage is told about the run it is part of, handed to
    its `run` function. `ctx.config` is the parsed config (an instance of
    the stage's config dataclass, or the raw mapping without one)."""

    def __init__(self, info: RunInfo, config: C) -> None:
        self._info = info
        #: The stage's `with:` block, parsed.
        self.config: C = config
        self._declared: List[ArtifactInfo] = []

    @property
    def run_id(self) -> str:
        """Identifier of this run; stable across `--resume`."""
        return self._info.run_id

    @property
    def pipeline(self) -> str:
        """The pipeline's `name`."""
        return self._info.pipeline

    @property
    def stage(self) -> str:
        """This stage's key in the pipeline's `stages` map."""
        return self._info.stage

    @property
    def environment(self) -> Optional[str]:
        """The stage's `environment:`, if any."""
        return self._info.environment

    @property
    def config_json(self) -> str:
        """The `with:` block as raw JSON text."""
        return self._info.config_json

    @property
    def attempt(self) -> int:
        """1 on the first attempt, 2 on the first retry, and so on."""
        return self._info.attempt

    @property
    def deadline(self) -> Optional[_dt.datetime]:
        """When the attempt's `timeout:` runs out (UTC)."""
        return self._info.deadline

    @property
    def grace_period(self) -> _dt.timedelta:
        """How long a cancelled stage may take to put things back."""
        return self._info.grace_period

    @property
    def inputs(self) -> List[Artifact]:
        """Artifacts of the stages this one `needs`, in pipeline order."""
        return list(self._info.inputs)

    @property
    def upstream_outputs(self) -> List[UpstreamOutput]:
        """Every output reported by the stages this one `needs`."""
        return list(self._info.upstream)

    def upstream(self, stage: str, name: str) -> Optional[str]:
        """The value of output `name` of upstream stage `stage`."""
        return next((o.value for o in self._info.upstream if o.stage == stage and o.name == name), None)

    def input_path(self, artifact: Artifact) -> Path:
        """Where `artifact` is readable: `/artifacts/in/<stage>/<name>`."""
        return Path(self._info.inputs_dir) / artifact.stage / artifact.name

    @property
    def workspace(self) -> Path:
        """The workspace root, `/workspace` (readable or writable only as
        granted; absent without a grant)."""
        return Path(self._info.workspace)

    def require_workspace(self, write: bool = False) -> Path:
        """The workspace root, or `Denied(workspace-read)` (`-write`) when
        the pipeline granted none: the runner names the grant to add."""
        if not self.workspace.is_dir():
            raise Denied(Capability.workspace_write() if write else Capability.workspace_read())
        return self.workspace

    @property
    def outputs_dir(self) -> Path:
        """The writable output directory; every regular file left in it
        when `run` returns becomes an artifact of this stage."""
        return Path(self._info.outputs_dir)

    def write_artifact(
        self,
        path: str,
        data: Union[bytes, str, Mapping[str, Any], Sequence[Any]],
        media_type: Optional[str] = None,
        *,
        role: Optional[ArtifactRole] = None,
        annotations: Optional[Union[Mapping[str, str], Sequence[tuple]]] = None,
    ) -> Path:
        """Writes `data` to `path` under the output directory (creating
        parent directories) and describes it in the report, so the call
        alone is enough. `str` is written as UTF-8; a mapping or list as
        indented JSON (media type `application/json` unless given). The
        path must stay inside the output directory. Returns the full
        path."""
        rel = _relative(path)
        if isinstance(data, (dict, list, tuple)) or (not isinstance(data, (bytes, str)) and hasattr(data, "items")):
            data = json.dumps(data, indent=2) + "\n"
            media_type = media_type or "application/json"
        pairs = list(annotations.items()) if isinstance(annotations, Mapping) else list(annotations or [])
        info = ArtifactInfo(rel, media_type, role, [(str(k), str(v)) for k, v in pairs])
        try:
            info.check()
        except ValueError as e:
            raise Failed(str(e)) from None
        full = self.outputs_dir / rel
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data.encode("utf-8") if isinstance(data, str) else bytes(data))
        except OSError as e:
            raise Failed(f"writing {full}: {e}") from e
        self._declared = [d for d in self._declared if d.path != rel] + [info]
        return full

    @property
    def declared_artifacts(self) -> List[ArtifactInfo]:
        """The artifacts described by `write_artifact`, in order."""
        return list(self._declared)


def _relative(path: str) -> str:
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in (".",)]
    if not parts or path.startswith("/") or ".." in parts:
        raise Failed(f"artifact path `{path}` must be relative to the output directory and must not contain `..`")
    return "/".join(parts)
