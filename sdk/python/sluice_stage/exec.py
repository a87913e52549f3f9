# SPDX-License-Identifier: Apache-2.0
"""Run host programs the pipeline grants (`grants.exec`).

    from sluice_stage import exec
    out = exec.run("git", ["rev-parse", "HEAD"], check=True)
    sha = out.stdout_text.strip()

    # A test runner whose output people should see live, and whose summary
    # the stage reads too:
    out = exec.run("pytest", ["-q"], stdout=exec.TEE, stderr=exec.LOG)

    proc = exec.spawn("sort", stdin=True, stdout=exec.PIPE)
    proc.write(b"b\\na\\n"); proc.close_stdin()
    print(proc.read_all()); proc.wait()

A program that is not granted raises `Denied(Capability.exec(program))`
(the runner names the grant to add), one that is not installed
`NotFound`, a bad command (`cwd` outside the workspace, `PATH` in `env`)
or one the system cannot start `ExecError`; with `check=True` a program
that does not exit 0 raises `ExecFailed(code, stderr)`.

Output modes: `PIPE` (the stage reads it), `LOG` (streamed live into the
stage log), `TEE` (both), `DISCARD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

from . import _host
from .errors import Denied, ExecError, ExecFailed, NotFound
from .types import Capability

#: The stage reads the stream.
PIPE = "pipe"
#: The runner streams it into the stage log, line by line, as it arrives.
LOG = "log"
#: Both streamed into the log and read by the stage.
TEE = "tee"
#: Nowhere.
DISCARD = "discard"
_MODES = (PIPE, LOG, TEE, DISCARD)


@dataclass(frozen=True)
class ExitStatus:
    """How a program ended: `kind` is `exited` (with `code`), `signaled`
    (with the signal in `code`), `timed-out` or `killed` (by the stage)."""

    #: `exited`, `signaled`, `timed-out` or `killed`.
    kind: str
    #: The exit code (or the signal number for `signaled`).
    code: Optional[int] = None

    @property
    def success(self) -> bool:
        """Exited 0."""
        return self.kind == "exited" and self.code == 0

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code, `None` unless it exited."""
        return self.code if self.kind == "exited" else None

    def __str__(self) -> str:
        return {
            "exited": f"exited {self.code}",
            "signaled": f"was killed by signal {self.code}",
            "timed-out": "was killed after its timeout",
            "killed": "was killed by the stage",
        }.get(self.kind, self.kind)


def command_line(program: str, args: Sequence[str]) -> str:
    """`program args…` with arguments quoted where they need it, for
    messages."""
    out = []
    for a in [program, *args]:
        if not a or any(c.isspace() or c in "\"'" for c in a):
            a = '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(a)
    return " ".join(out)


@dataclass
class Completed:
    """A program that ran to its end."""

    #: The command line (for messages).
    command: str
    #: How it ended.
    status: ExitStatus
    #: Its stdout when piped (`PIPE`/`TEE`), else empty.
    stdout: bytes
    #: Its stderr when piped, else empty.
    stderr: bytes
    #: True when output was cut at the stage's output cap.
    truncated: bool

    @property
    def ok(self) -> bool:
        """Exited 0."""
        return self.status.success

    @property
    def code(self) -> Optional[int]:
        """The exit code, `None` when killed."""
        return self.status.exit_code

    @property
    def stdout_text(self) -> str:
        """stdout decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        """stderr decoded as UTF-8 (invalid bytes replaced)."""
        return self.stderr.decode("utf-8", "replace")

    def tail(self, lines: int = 10) -> str:
        """The last `lines` non-blank lines of stderr (of stdout when stderr
        is blank), for a failure message."""
        text = self.stderr_text if self.stderr_text.strip() else self.stdout_text
        return "\n".join([l for l in text.splitlines() if l.strip()][-lines:])

    def check(self) -> "Completed":
        """Returns itself when the program exited 0, else raises
        `ExecFailed` with the exit code and the end of its output."""
        if not self.ok:
            raise ExecFailed(self.command, self.code, self.tail(), str(self.status))
        return self


def _error(program: str, e: _host.HostError) -> Exception:
    if e.code == "denied":
        return Denied(Capability.exec(program))
    if e.code == "not-found":
        return NotFound(program, f"`{program}` is granted but not installed on the host: {e.message}")
    return ExecError(program, e.code, e.message)


def _status(raw: Tuple[str, Optional[int]]) -> ExitStatus:
    return ExitStatus(raw[0], raw[1])


def _timeout_ms(timeout: Optional[float]) -> Optional[int]:
    return None if timeout is None else max(0, min(int(timeout * 1000), 2**32 - 1))


class Process:
    """A running program (from `spawn`). Dropping it kills the program if
    it still runs; use it as a context manager to kill it on exit."""

    def __init__(self, command: str, raw: _host.RawProcess) -> None:
        #: The command line.
        self.command = command
        self._raw = raw

    def write(self, data: bytes | str) -> None:
        """Writes to the program's stdin (spawned with `stdin=True`)."""
        self._raw.write_stdin(data.encode() if isinstance(data, str) else data)

    def close_stdin(self) -> None:
        """Closes stdin: the program sees end of input."""
        self._raw.close_stdin()

    def read(self, stream: str = "stdout", size: int = 65536) -> Optional[bytes]:
        """The next bytes of `stdout` or `stderr` (mode `PIPE`/`TEE`);
        `None` at the end. Read both when both are piped, or a full pipe
        stops the program; `read_all` does."""
        return self._raw.read(stream, size)

    def lines(self, stream: str = "stdout") -> Iterator[str]:
        """The lines of `stdout`/`stderr` as they arrive, decoded."""
        buf = b""
        while True:
            chunk = self._raw.read(stream, 65536)
            if chunk is None:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")

    def read_all(self) -> Tuple[bytes, bytes]:
        """Reads the piped streams to their ends: `(stdout, stderr)`."""
        return self._raw.read_both()

    def try_wait(self) -> Optional[ExitStatus]:
        """How it ended, or `None` while it runs."""
        raw = self._raw.try_wait()
        return None if raw is None else _status(raw)

    def wait(self) -> ExitStatus:
        """Waits until it ends."""
        return _status(self._raw.wait())

    def kill(self) -> None:
        """Kills it (SIGTERM, then SIGKILL) with everything it started."""
        self._raw.kill()

    @property
    def truncated(self) -> bool:
        """Whether piped output was cut at the output cap."""
        return self._raw.truncated()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._raw.try_wait() is None:
            self._raw.kill()


def spawn(
    program: str,
    args: Sequence[str] = (),
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: Optional[float] = None,
    stdin: bool = False,
    stdout: str = LOG,
    stderr: str = LOG,
) -> Process:
    """Starts `program` (a bare name from `grants.exec`) with `args`.
    `cwd` is relative to the workspace; `env` adds variables to the cleared
    environment (not `PATH`); `timeout` is in seconds (default and cap: the
    time the stage has left); `stdout`/`stderr` are output modes (default
    `LOG`)."""
    for name, mode in (("stdout", stdout), ("stderr", stderr)):
        if mode not in _MODES:
            raise ValueError(f"{name} mode `{mode}` is not one of {', '.join(_MODES)}")
    args = [str(a) for a in args]
    spec = _host.CommandSpec(
        program, args, cwd, list((env or {}).items()), stdin, stdout, stderr, _timeout_ms(timeout)
    )
    try:
        raw = _host.host().exec_spawn(spec)
    except _host.HostError as e:
        raise _error(program, e) from None
    return Process(command_line(program, args), raw)


def run(
    program: str,
    args: Sequence[str] = (),
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: Optional[float] = None,
    input: Optional[bytes | str] = None,
    stdout: str = PIPE,
    stderr: str = PIPE,
    check: bool = False,
) -> Completed:
    """Runs `program` to its end and returns what it produced (`stdout`
    and `stderr` captured when `PIPE` or `TEE`). `input` is written to its
    stdin. With `check=True`, a program that does not exit 0 raises
    `ExecFailed`. Other arguments as for `spawn`."""
    args = [str(a) for a in args]
    line = command_line(program, args)
    if not env and input is None and stdout == PIPE and stderr == PIPE:
        # The one-call form: the host captures both streams.
        try:
            raw = _host.host().exec_run(program, args, cwd, _timeout_ms(timeout))
        except _host.HostError as e:
            raise _error(program, e) from None
        if raw.timed_out:
            status = ExitStatus("timed-out")
        elif raw.status < 0:
            status = ExitStatus("killed")
        else:
            status = ExitStatus("exited", raw.status)
        done = Completed(line, status, raw.stdout, raw.stderr, raw.truncated)
    else:
        proc = spawn(
            program, args, cwd=cwd, env=env, timeout=timeout,
            stdin=input is not None, stdout=stdout, stderr=stderr,
        )
        if input is not None:
            proc.write(input)
            proc.close_stdin()
        out, err = proc.read_all()
        done = Completed(line, proc.wait(), out, err, proc.truncated)
    return done.check() if check else done


__all__: List[str] = [
    "Completed", "DISCARD", "ExitStatus", "LOG", "PIPE", "Process", "TEE", "command_line", "run", "spawn",
]
