# SPDX-License-Identifier: Apache-2.0
"""The one seam between the SDK and the runner's imports.

Every call the SDK makes to the host goes through the `Host` installed
here. Inside a component it is `sluice_stage._wit.WitHost` (the
componentize-py bindings, imported on first use); in native tests it is
`sluice_stage.testing.FakeHost`. Stage code never uses this module.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple


class HostError(Exception):
    """A host call refused: `code` is the WIT error case (`denied`,
    `not-found`, `invalid-argument`, `spawn-failed`), `message` the host's
    words. The SDK turns it into a typed exception."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class RawOutput:
    """What `exec.run` (the 0.1 call) returned."""

    status: int
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool


@dataclass
class CommandSpec:
    """A program to spawn (WIT `exec.command`); modes are `pipe`, `log`,
    `discard` or `tee`."""

    program: str
    args: List[str]
    cwd: Optional[str]
    env: List[Tuple[str, str]]
    stdin: bool
    stdout: str
    stderr: str
    timeout_ms: Optional[int]


class RawProcess:
    """A spawned program, as the host sees it. `status` values are
    `("exited", code)`, `("signaled", signal)`, `("timed-out", None)` or
    `("killed", None)`."""

    def write_stdin(self, data: bytes) -> None:
        """Writes all of `data` to the program's stdin."""
        raise NotImplementedError

    def close_stdin(self) -> None:
        """Closes stdin (the program sees end of input)."""
        raise NotImplementedError

    def has_stream(self, name: str) -> bool:
        """Whether `stdout`/`stderr` is readable (mode `pipe` or `tee`)."""
        raise NotImplementedError

    def read(self, name: str, size: int) -> Optional[bytes]:
        """Blocks until bytes of stream `name` are there; `None` at its end."""
        raise NotImplementedError

    def read_both(self) -> Tuple[bytes, bytes]:
        """Reads stdout and stderr to their ends, concurrently (a full pipe
        would stop the program)."""
        raise NotImplementedError

    def try_wait(self) -> Optional[Tuple[str, Optional[int]]]:
        """How it ended, or `None` while it runs."""
        raise NotImplementedError

    def wait(self) -> Tuple[str, Optional[int]]:
        """Waits until it ends."""
        raise NotImplementedError

    def kill(self) -> None:
        """Kills it and everything it started."""
        raise NotImplementedError

    def truncated(self) -> bool:
        """Whether piped output was cut at the output cap."""
        raise NotImplementedError


class Host:
    """What the SDK needs from the runner. Methods raise `HostError` where
    the WIT call returns an error."""

    def log(self, level: str, message: str, fields: Sequence[Tuple[str, str]]) -> None:
        """One log record; `level` is `trace`, `debug`, `info`, `warn` or `error`."""
        raise NotImplementedError

    def progress(self, done: int, total: Optional[int], message: str) -> None:
        """How far the stage has got."""
        raise NotImplementedError

    def is_cancelled(self) -> bool:
        """Whether the stage has been cancelled."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> bool:
        """Waits `seconds` or until cancelled; False when cancelled."""
        raise NotImplementedError

    def secret(self, name: str) -> str:
        """The value of secret `name`."""
        raise NotImplementedError

    def exec_run(self, program: str, args: List[str], cwd: Optional[str], timeout_ms: Optional[int]) -> RawOutput:
        """Runs a program to its end, capturing both streams."""
        raise NotImplementedError

    def exec_spawn(self, command: CommandSpec) -> RawProcess:
        """Starts a program."""
        raise NotImplementedError


_current: Optional[Host] = None


def host() -> Host:
    """The installed host; the component's bindings unless a test installed
    a fake."""
    global _current
    if _current is None:
        from . import _wit  # only importable inside a component build

        _current = _wit.WitHost()
    return _current


@contextlib.contextmanager
def installed(h: Host) -> Iterator[Host]:
    """Installs `h` for the duration of a `with` block."""
    global _current
    before = _current
    _current = h
    try:
        yield h
    finally:
        _current = before
