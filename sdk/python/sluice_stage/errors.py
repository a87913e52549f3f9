# SPDX-License-Identifier: Apache-2.0
"""Typed errors. Raise a `StageError` from a stage's `run` function; the
runner records its message and decides whether to retry from its type:

| exception | WIT `stage-error` | retried |
|---|---|---|
| `InvalidConfig` | `invalid-config` | never |
| `Denied` | `denied(capability)` | never (the runner names the grant to add) |
| `Failed` and its subclasses (`NotFound`, `ExecError`, `ExecFailed`, `Cancelled`) | `failed` | when the stage has `retries:` |

Any other exception escaping `run` fails the stage too, as `failed` with the
exception's type and message (and its traceback in the stage log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .types import Capability


class StageError(Exception):
    """Why a stage could not produce a report. Use the subclasses, or the
    constructors `StageError.invalid_config`, `StageError.denied` and
    `StageError.failed` (as in the Rust SDK)."""

    #: The WIT `stage-error` case this error becomes.
    case = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @staticmethod
    def invalid_config(message: str) -> "InvalidConfig":
        """A configuration error; name the key path in `message`
        (`with.lines: must be at least 1`)."""
        return InvalidConfig(message)

    @staticmethod
    def denied(capability: "Capability") -> "Denied":
        """A missing grant: the capability the stage needed."""
        return Denied(capability)

    @staticmethod
    def failed(message: str) -> "Failed":
        """A failure of the work itself."""
        return Failed(message)

    def __str__(self) -> str:
        return f"{self.case.replace('-', ' ')}: {self.message}"


class InvalidConfig(StageError):
    """The stage's `with:` block is wrong; the message names the key
    (`with.lines: expected an integer, got "ten"`). Never retried."""

    case = "invalid-config"


class Denied(StageError):
    """The stage needed a capability the pipeline did not grant. Raised by
    `exec` and `secrets` when a program or secret is not granted; raise it
    yourself for `Capability.workspace_read()` when `/workspace` is absent.
    The runner tells the user which grant to add. Never retried."""

    case = "denied"

    def __init__(self, capability: "Capability") -> None:
        super().__init__(f"grant `{capability.grant()}`")
        #: The capability that was missing.
        self.capability = capability


class Failed(StageError):
    """The stage tried and failed. Retried when the stage has `retries:`."""

    case = "failed"


class NotFound(Failed):
    """Something granted is not there: a program granted in `grants.exec`
    that is not installed on the host, or a secret granted in
    `grants.secrets` that the runner has no value for."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        #: The program or secret name.
        self.what = what


class ExecError(Failed):
    """A program could not be started: the command was not valid
    (`invalid-argument`: a `cwd` outside the workspace, `PATH` in `env`) or
    the operating system refused to start it (`spawn-failed`)."""

    def __init__(self, program: str, kind: str, message: str) -> None:
        super().__init__(f"{program}: {kind}: {message}")
        #: The program.
        self.program = program
        #: `invalid-argument` or `spawn-failed`.
        self.kind = kind


class ExecFailed(Failed):
    """A program ran but did not succeed (raised by `exec.run(...,
    check=True)` and `Completed.check()`)."""

    def __init__(self, command: str, code: Optional[int], stderr: str, outcome: str) -> None:
        tail = stderr.strip().splitlines()[-10:]
        text = f"`{command}` {outcome}"
        if tail:
            text += ": " + "\n".join(tail)
        super().__init__(text)
        #: The command line.
        self.command = command
        #: The exit code, `None` when the program was killed.
        self.code = code
        #: Its standard error (decoded, possibly cut at the output cap).
        self.stderr = stderr


class Cancelled(Failed):
    """The stage was cancelled (raised by `cancel.check()`). Whatever a
    cancelled stage returns is not taken: the runner records it as
    cancelled."""

    def __init__(self, message: str = "the stage was cancelled") -> None:
        super().__init__(message)
