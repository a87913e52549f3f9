# SPDX-License-Identifier: Apache-2.0
"""The report a stage returns: summary, metrics, gates, outputs, artifact
descriptions and typed findings (the runner writes them as SARIF).

    report = (Report("3 files checked")
              .metric("files.checked", 3)
              .gate("headers", Verdict.PASS, "all files carry the header")
              .output("checked", "3"))

`Report.check()` applies the runner's rules (names, NaN, repeated gates,
finding paths, roles, annotations) so a mistake fails in the stage, with a
message naming the item; `stage` calls it before returning the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from .types import ArtifactRole, FindingLevel, Verdict

#: At most this many findings per report.
MAX_FINDINGS = 100_000
#: At most this many bytes in one finding text field.
MAX_FINDING_TEXT = 16 * 1024
#: At most this many annotations per artifact.
MAX_ANNOTATIONS = 64
#: At most this many bytes of annotations per artifact.
MAX_ANNOTATION_BYTES = 16 * 1024
#: At most this many bytes of outputs per report.
MAX_OUTPUT_BYTES = 64 * 1024


@dataclass
class Metric:
    """One measured value; pipelines gate on it by `name`."""

    #: Dotted lowercase name (`tests.failed`), unique within a report.
    name: str
    #: The value (finite).
    value: float
    #: Unit for display (`%`, `ms`, `bytes`).
    unit: Optional[str] = None


@dataclass
class Gate:
    """A decision the stage made itself."""

    #: Short name, unique within a report.
    name: str
    #: What the stage decided.
    verdict: Verdict
    #: One line a person can act on.
    message: str
    #: The observed value, for numeric gates.
    observed: Optional[float] = None
    #: The threshold it was compared with.
    threshold: Optional[float] = None


@dataclass
class Location:
    """Where a finding is; lines and columns are 1-based, `start_line` 0
    means the whole file."""

    #: Path relative to the workspace root, `/`-separated.
    path: str
    #: First line, or 0 for the whole file.
    start_line: int = 0
    #: First column.
    start_column: Optional[int] = None
    #: Last line, if not `start_line`.
    end_line: Optional[int] = None
    #: Column after the region's end.
    end_column: Optional[int] = None


@dataclass
class Finding:
    """One result of a check. Build with `Finding.error/warning/note`."""

    #: The rule that produced it (`E501`), not empty.
    rule_id: str
    #: How serious it is.
    level: FindingLevel
    #: One line a person can act on, not empty.
    message: str
    #: Where it is; `None` for the project as a whole.
    location: Optional[Location] = None
    #: A stable identity across runs.
    fingerprint: Optional[str] = None
    #: Where the rule is documented (`https://…`).
    help_uri: Optional[str] = None

    @classmethod
    def new(
        cls,
        level: FindingLevel,
        rule_id: str,
        message: str,
        *,
        path: Optional[str] = None,
        line: int = 0,
        column: Optional[int] = None,
        end_line: Optional[int] = None,
        end_column: Optional[int] = None,
        fingerprint: Optional[str] = None,
        help_uri: Optional[str] = None,
    ) -> "Finding":
        """A finding at `path` (line `line`, 0 for the whole file) or about
        the whole project when `path` is `None`."""
        loc = None if path is None else Location(path, line, column, end_line, end_column)
        return cls(rule_id, level, message, loc, fingerprint, help_uri)

    @classmethod
    def error(cls, rule_id: str, message: str, **where) -> "Finding":
        """An `error` finding; keyword arguments as for `Finding.new`."""
        return cls.new(FindingLevel.ERROR, rule_id, message, **where)

    @classmethod
    def warning(cls, rule_id: str, message: str, **where) -> "Finding":
        """A `warning` finding; keyword arguments as for `Finding.new`."""
        return cls.new(FindingLevel.WARNING, rule_id, message, **where)

    @classmethod
    def note(cls, rule_id: str, message: str, **where) -> "Finding":
        """A `note` finding; keyword arguments as for `Finding.new`."""
        return cls.new(FindingLevel.NOTE, rule_id, message, **where)


@dataclass
class ArtifactInfo:
    """A file the stage left under `/artifacts/out`, described."""

    #: Path relative to `/artifacts/out`, `/`-separated.
    path: str
    #: IANA media type; `application/octet-stream` when `None`.
    media_type: Optional[str] = None
    #: What it is for.
    role: Optional[ArtifactRole] = None
    #: Key/value annotations (keys unique).
    annotations: List[Tuple[str, str]] = field(default_factory=list)

    def check(self) -> None:
        """Raises `ValueError` when the description breaks the runner's
        rules (role word, annotation count, size, repeated keys)."""
        if self.role is not None and self.role.custom:
            ArtifactRole.other(self.role.name)
        if len(self.annotations) > MAX_ANNOTATIONS:
            raise ValueError(f"artifact `{self.path}`: more than {MAX_ANNOTATIONS} annotations")
        seen = set()
        size = 0
        for k, v in self.annotations:
            if not k or k in seen:
                raise ValueError(f"artifact `{self.path}`: annotation key `{k}` is empty or repeated")
            seen.add(k)
            size += len(k.encode()) + len(v.encode())
        if size > MAX_ANNOTATION_BYTES:
            raise ValueError(f"artifact `{self.path}`: annotations exceed {MAX_ANNOTATION_BYTES} bytes")


Annotations = Union[Sequence[Tuple[str, str]], dict]


class Report:
    """What a stage returns when it ran to completion. Every builder method
    changes the report and returns it, so calls chain."""

    def __init__(self, summary: str = "") -> None:
        #: Short markdown shown in the console and in reports.
        self.summary = summary
        #: Measured values.
        self.metrics: List[Metric] = []
        #: The stage's own decisions.
        self.gates: List[Gate] = []
        #: Small named values for later stages.
        self.outputs: List[Tuple[str, str]] = []
        #: Descriptions of files under `/artifacts/out`.
        self.artifacts: List[ArtifactInfo] = []
        #: Typed findings; `None` means the stage reports none (no SARIF).
        self.findings: Optional[List[Finding]] = None

    def metric(self, name: str, value: float, unit: Optional[str] = None) -> "Report":
        """Adds metric `name` (`value` is converted to float)."""
        self.metrics.append(Metric(name, float(value), unit))
        return self

    def gate(
        self,
        name: str,
        verdict: Verdict,
        message: str,
        *,
        observed: Optional[float] = None,
        threshold: Optional[float] = None,
    ) -> "Report":
        """Adds gate `name` with `verdict` and an actionable `message`."""
        self.gates.append(
            Gate(
                name,
                verdict,
                message,
                None if observed is None else float(observed),
                None if threshold is None else float(threshold),
            )
        )
        return self

    def output(self, name: str, value: object) -> "Report":
        """Adds output `name` (`${{ stages.<s>.outputs.<name> }}`); `value`
        is converted with `str` (`True` becomes `true`)."""
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        self.outputs.append((name, text))
        return self

    def artifact(
        self,
        path: str,
        media_type: Optional[str] = None,
        *,
        role: Optional[ArtifactRole] = None,
        annotations: Optional[Annotations] = None,
    ) -> "Report":
        """Describes the file `path` under `/artifacts/out` (a second
        description of the same path replaces the first). Files written
        with `ctx.write_artifact` are described already."""
        pairs = list(annotations.items()) if isinstance(annotations, dict) else list(annotations or [])
        self.artifacts = [a for a in self.artifacts if a.path != path]
        self.artifacts.append(ArtifactInfo(path, media_type, role, pairs))
        return self

    def finding(self, finding: Finding) -> "Report":
        """Adds one finding (and makes `findings` a list if it was `None`)."""
        if self.findings is None:
            self.findings = []
        self.findings.append(finding)
        return self

    def with_findings(self, findings: Iterable[Finding]) -> "Report":
        """Sets the findings; an empty iterable means the stage looked and
        found nothing (an empty SARIF run is written)."""
        self.findings = list(findings)
        return self

    def check(self) -> None:
        """Raises `ValueError` naming the item that breaks one of the
        runner's rules."""
        names = set()
        for m in self.metrics:
            if not m.name or m.name in names:
                raise ValueError(f"metric `{m.name}` is empty or repeated")
            names.add(m.name)
            if not math.isfinite(m.value):
                raise ValueError(f"metric `{m.name}` is {m.value}; metrics must be finite")
        gates = set()
        for g in self.gates:
            if not g.name or g.name in gates:
                raise ValueError(f"gate `{g.name}` is empty or repeated")
            gates.add(g.name)
            if not isinstance(g.verdict, Verdict):
                raise ValueError(f"gate `{g.name}`: verdict must be a Verdict, not {g.verdict!r}")
        if sum(len(k.encode()) + len(v.encode()) for k, v in self.outputs) > MAX_OUTPUT_BYTES:
            raise ValueError(f"outputs exceed {MAX_OUTPUT_BYTES} bytes in total")
        for a in self.artifacts:
            a.check()
        if self.findings is not None:
            check_findings(self.findings)


def check_findings(findings: Sequence[Finding]) -> None:
    """Raises `ValueError` naming the first finding (by index and rule) that
    the runner would refuse."""
    if len(findings) > MAX_FINDINGS:
        raise ValueError(f"{len(findings)} findings; at most {MAX_FINDINGS}")
    for i, f in enumerate(findings):
        where = f"finding {i} (`{f.rule_id}`)"
        if not f.rule_id.strip() or not f.message.strip():
            raise ValueError(f"{where}: the rule id and the message must not be empty")
        if not isinstance(f.level, FindingLevel):
            raise ValueError(f"{where}: level must be a FindingLevel, not {f.level!r}")
        for text in (f.rule_id, f.message, f.fingerprint or "", f.help_uri or ""):
            if len(text.encode()) > MAX_FINDING_TEXT:
                raise ValueError(f"{where}: a text field is over {MAX_FINDING_TEXT} bytes")
        if f.help_uri is not None and not f.help_uri.startswith(("https://", "http://")):
            raise ValueError(f"{where}: help_uri `{f.help_uri}` must be an http(s) URI")
        if f.location is not None:
            p = f.location.path
            if not p or p.startswith("/") or "\\" in p or ".." in p.split("/"):
                raise ValueError(
                    f"{where}: location `{p}` must be relative to the workspace, `/`-separated, without `..`"
                )
