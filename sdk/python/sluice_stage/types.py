# SPDX-License-Identifier: Apache-2.0
"""Value types shared with the runner: capabilities, stage kinds, artifact
roles, verdicts, finding levels, and what a stage is handed (input
artifacts, upstream outputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional, Tuple

#: Built-in stage kinds; anything else is a custom kind.
STAGE_KINDS = ("lint", "test", "scan", "build", "deploy", "smoke", "canary", "monitor", "remediate")

_WORD = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def check_word(what: str, word: str) -> None:
    """Raises `ValueError` unless `word` is lowercase letters, digits and
    single dashes, at most 64 characters (the runner's rule for custom
    kinds and `other` artifact roles)."""
    if len(word) > 64 or not _WORD.match(word):
        raise ValueError(
            f"{what} `{word}` must be lowercase letters, digits and dashes (at most 64), e.g. `container-image`"
        )


@dataclass(frozen=True)
class Capability:
    """A kind of access a stage asks for (declared in `describe`) or lacked
    (in `Denied`). Build one with the class methods."""

    #: `workspace-read`, `workspace-write`, `env`, `network`, `exec` or `secret`.
    kind: str
    #: The variable, host pattern, program or secret; `None` for the workspace.
    value: Optional[str] = None

    @classmethod
    def workspace_read(cls) -> "Capability":
        """Read the workspace at `/workspace` (`grants: { workspace: read }`)."""
        return cls("workspace-read")

    @classmethod
    def workspace_write(cls) -> "Capability":
        """Write the workspace (`grants: { workspace: write }`)."""
        return cls("workspace-write")

    @classmethod
    def env(cls, name: str) -> "Capability":
        """Read environment variable `name` (`grants.env`)."""
        return cls("env", name)

    @classmethod
    def network(cls, host_port: str) -> "Capability":
        """Connect to `host:port` (patterns allowed, `*.example.com:443`)."""
        return cls("network", host_port)

    @classmethod
    def exec(cls, program: str) -> "Capability":
        """Run host program `program` (`grants.exec`)."""
        return cls("exec", program)

    @classmethod
    def secret(cls, name: str) -> "Capability":
        """Read secret `name` (`grants.secrets`)."""
        return cls("secret", name)

    def grant(self) -> str:
        """The pipeline grant that allows it: `exec: [git]`, `workspace: read`."""
        return {
            "workspace-read": lambda: "workspace: read",
            "workspace-write": lambda: "workspace: write",
            "env": lambda: f"env: [{self.value}]",
            "network": lambda: f'network: ["{self.value}"]',
            "exec": lambda: f"exec: [{self.value}]",
            "secret": lambda: f"secrets: [{self.value}]",
        }[self.kind]()

    def __str__(self) -> str:
        if self.value is None:
            return self.kind.replace("-", " ")
        return f"{self.kind} {self.value}"


class Verdict(Enum):
    """The outcome of a gate."""

    #: The check held.
    PASS = "pass"
    #: It did not hold but must not stop the pipeline.
    WARN = "warn"
    #: It did not hold; the pipeline stops.
    FAIL = "fail"
    #: It could not be decided (treated as not passed).
    INCONCLUSIVE = "inconclusive"


class FindingLevel(Enum):
    """How serious a finding is (SARIF's `level`)."""

    #: Worth knowing; never fails anything by itself.
    NOTE = "note"
    #: Should be fixed.
    WARNING = "warning"
    #: Must be fixed.
    ERROR = "error"


@dataclass(frozen=True)
class ArtifactRole:
    """What an artifact is for. Use the constants (`ArtifactRole.REPORT`,
    `TEST_RESULTS`, `COVERAGE`, `PACKAGE`, `SBOM`, `PROVENANCE`, `LOG`) or
    `ArtifactRole.other("container-image")`."""

    #: The role's name (`report`, `test-results`, … or the `other` word).
    name: str
    #: True for a producer-named role (`other(word)`).
    custom: bool = False

    @classmethod
    def other(cls, word: str) -> "ArtifactRole":
        """A role of your own: lowercase letters, digits and dashes, at most
        64 characters. Raises `ValueError` otherwise."""
        check_word("artifact role", word)
        return cls(word, True)

    def __str__(self) -> str:
        return self.name


#: The built-in role names, in WIT order.
ROLE_NAMES = ("report", "test-results", "coverage", "package", "sbom", "provenance", "log")
ArtifactRole.REPORT = ArtifactRole("report")  # type: ignore[attr-defined]
ArtifactRole.TEST_RESULTS = ArtifactRole("test-results")  # type: ignore[attr-defined]
ArtifactRole.COVERAGE = ArtifactRole("coverage")  # type: ignore[attr-defined]
ArtifactRole.PACKAGE = ArtifactRole("package")  # type: ignore[attr-defined]
ArtifactRole.SBOM = ArtifactRole("sbom")  # type: ignore[attr-defined]
ArtifactRole.PROVENANCE = ArtifactRole("provenance")  # type: ignore[attr-defined]
ArtifactRole.LOG = ArtifactRole("log")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Artifact:
    """An artifact of a stage this one `needs`, readable (never writable)
    at `ctx.input_path(artifact)`; its digest was verified by the runner."""

    #: The stage that produced it.
    stage: str
    #: Path relative to the producer's `/artifacts/out`, `/`-separated.
    name: str
    #: `sha256:<hex>`.
    digest: str = ""
    #: Size in bytes.
    size: int = 0
    #: Media type declared by the producer.
    media_type: str = "application/octet-stream"
    #: The role the producer declared, if any.
    role: Optional[ArtifactRole] = None
    #: The producer's annotations, in its order.
    annotations: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)

    def annotation(self, key: str) -> Optional[str]:
        """The value of annotation `key`, if the producer set it."""
        return next((v for k, v in self.annotations if k == key), None)


@dataclass(frozen=True)
class UpstreamOutput:
    """A small value reported by a stage this one `needs`."""

    #: The stage that produced it.
    stage: str
    #: The output's name.
    name: str
    #: The value.
    value: str


def kind_word(kind: str) -> str:
    """Checks a stage kind (a built-in one or a custom word) and returns it."""
    if kind not in STAGE_KINDS:
        check_word("stage kind", kind)
    return kind


__all__: List[str] = [
    "Artifact",
    "ArtifactRole",
    "Capability",
    "FindingLevel",
    "STAGE_KINDS",
    "UpstreamOutput",
    "Verdict",
]
