# SPDX-License-Identifier: Apache-2.0
"""Fakes for testing a stage natively (pytest), without a component or a
runner: `FakeHost` gives the stage its config, workspace files, grants,
program results, secrets and cancellation, and captures its logs,
progress, report and artifacts.

    from sluice_stage.testing import FakeHost
    import app

    def test_missing_header():
        host = FakeHost(workspace={"src/a.py": "print()\\n"})
        result = host.run(app.run, config={"header": "SPDX"})
        assert result.error is None
        assert result.metric("license.missing") == 1
        assert "missing header: src/a.py" in result.log_text

Grants follow the pipeline file: `grants={"workspace": "read", "exec":
["git"], "secrets": ["TOKEN"]}` (the default is `{"workspace": "read"}`
when a workspace is given). Without a workspace grant the stage sees no
`/workspace`; a program not granted raises `Denied`, one granted without
an `on_exec` result `NotFound` (not installed); a secret not granted
raises `Denied`, one granted without a value `NotFound`. The workspace is
not made read-only natively.
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _host
from .context import RunInfo
from .errors import StageError
from .report import Report
from .stage import Stage
from .types import Artifact, UpstreamOutput, Verdict


@dataclass
class LogRecord:
    """One captured log record."""

    #: `trace` … `error`.
    level: str
    #: The message.
    message: str
    #: The fields, as text.
    fields: Dict[str, str] = field(default_factory=dict)


@dataclass
class ExecCall:
    """A program the stage ran, as the fake saw it."""

    #: The program.
    program: str
    #: Its arguments.
    args: List[str]
    #: Its working directory, as given.
    cwd: Optional[str] = None
    #: Its extra environment.
    env: Dict[str, str] = field(default_factory=dict)
    #: What the stage wrote to its stdin.
    stdin: bytes = b""


@dataclass
class ExecResult:
    """What a faked program produces."""

    #: Its stdout.
    stdout: Union[bytes, str] = b""
    #: Its stderr.
    stderr: Union[bytes, str] = b""
    #: Its exit code; `None` with `timed_out` or `killed`.
    code: Optional[int] = 0
    #: Whether it ran past its timeout.
    timed_out: bool = False


def _b(v: Union[bytes, str]) -> bytes:
    return v.encode() if isinstance(v, str) else v


class _FakeProcess(_host.RawProcess):
    def __init__(self, owner: "FakeHost", spec: _host.CommandSpec, call: ExecCall) -> None:
        self._owner, self._spec, self._call = owner, spec, call
        self._stdin_open = spec.stdin
        self._result: Optional[ExecResult] = None
        self._pending: Dict[str, Optional[bytes]] = {}
        self._killed = False

    def _finish(self) -> ExecResult:
        if self._result is None:
            self._result = self._owner._result_for(self._call)
            for name in ("stdout", "stderr"):
                data = _b(getattr(self._result, name))
                mode = getattr(self._spec, name)
                if mode in ("log", "tee"):
                    self._owner._stream_to_log(name, data)
                self._pending[name] = data if mode in ("pipe", "tee") else None
        return self._result

    def write_stdin(self, data: bytes) -> None:
        if not self._stdin_open:
            raise ValueError("the program was spawned without stdin=True, or its stdin is closed")
        self._call.stdin += data

    def close_stdin(self) -> None:
        self._stdin_open = False

    def has_stream(self, name: str) -> bool:
        return getattr(self._spec, name) in ("pipe", "tee")

    def read(self, name: str, size: int) -> Optional[bytes]:
        self._finish()
        data = self._pending.get(name)
        if not data:
            self._pending[name] = None
            return None
        self._pending[name] = data[size:]
        return data[:size]

    def read_both(self) -> Tuple[bytes, bytes]:
        self._finish()
        out = (self._pending.get("stdout") or b"", self._pending.get("stderr") or b"")
        self._pending = {"stdout": None, "stderr": None}
        return out

    def try_wait(self) -> Optional[Tuple[str, Optional[int]]]:
        return self.wait()

    def wait(self) -> Tuple[str, Optional[int]]:
        if self._killed:
            return ("killed", None)
        r = self._finish()
        if r.timed_out:
            return ("timed-out", None)
        return ("exited", r.code) if r.code is not None else ("killed", None)

    def kill(self) -> None:
        if self._result is None:
            self._killed = True

    def truncated(self) -> bool:
        return False


@dataclass
class StageResult:
    """How a faked run ended: a report or an error, plus what the stage
    logged and wrote."""

    #: The report, when the stage returned one.
    report: Optional[Report]
    #: The error, when it raised (other exceptions are `Failed` already).
    error: Optional[StageError]
    #: Its log records, in order (programs' `LOG`/`TEE` lines included).
    logs: List[LogRecord]
    #: Its progress calls: `(done, total, message)`.
    progress: List[Tuple[int, Optional[int], str]]
    #: The programs it ran.
    exec_calls: List[ExecCall]
    #: Its output directory (its artifacts).
    outputs_dir: Path
    #: The host it ran on (kept so that its temporary directories live as
    #: long as the result).
    host: Optional["FakeHost"] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """It returned a report."""
        return self.report is not None

    @property
    def passed(self) -> bool:
        """It returned a report with no `fail`/`inconclusive` gate (the
        pipeline's own metric gates aside)."""
        return self.report is not None and all(
            g.verdict in (Verdict.PASS, Verdict.WARN) for g in self.report.gates
        )

    def expect_report(self) -> Report:
        """The report; `AssertionError` with the stage's error otherwise."""
        if self.report is None:
            raise AssertionError(f"the stage did not return a report: {self.error}")
        return self.report

    def metric(self, name: str) -> Optional[float]:
        """The value of metric `name`, if reported."""
        return next((m.value for m in self.expect_report().metrics if m.name == name), None)

    def gate(self, name: str):
        """Gate `name`, if reported."""
        return next((g for g in self.expect_report().gates if g.name == name), None)

    def output(self, name: str) -> Optional[str]:
        """Output `name`, if reported."""
        return dict(self.expect_report().outputs).get(name)

    def artifact(self, path: str) -> bytes:
        """The bytes of artifact `path` (under the output directory)."""
        return (self.outputs_dir / path).read_bytes()

    def artifact_json(self, path: str) -> Any:
        """Artifact `path` parsed as JSON."""
        return json.loads(self.artifact(path))

    @property
    def log_text(self) -> str:
        """The log as the console would show it: one `level message
        key=value…` line per record."""
        return "\n".join(
            f"{r.level} {r.message}" + "".join(f" {k}={v}" for k, v in r.fields.items()) for r in self.logs
        )


class FakeHost(_host.Host):
    """A host for native tests of a stage (see the module docs)."""

    def __init__(
        self,
        *,
        workspace: Union[None, str, Path, Mapping[str, Union[str, bytes]]] = None,
        grants: Optional[Mapping[str, Any]] = None,
        secrets: Optional[Mapping[str, str]] = None,
        cancelled: bool = False,
        cancel_after: Optional[int] = None,
    ) -> None:
        """`workspace`: files (`{"src/a.py": "text"}`, written into a
        temporary directory) or a directory to use as it is; `grants`: as in
        the pipeline file; `secrets`: values the runner knows;
        `cancelled`: cancelled from the start; `cancel_after`: cancelled
        after that many `is_cancelled` checks."""
        self._tmp = tempfile.TemporaryDirectory(prefix="sluice-stage-test-")
        base = Path(self._tmp.name)
        self.grants: Dict[str, Any] = dict(grants if grants is not None else ({"workspace": "read"} if workspace is not None else {}))
        self.workspace_dir = base / "workspace"
        if isinstance(workspace, Mapping):
            self.workspace_dir.mkdir()
            for rel, content in workspace.items():
                p = self.workspace_dir / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(_b(content))
        elif workspace is not None:
            self.workspace_dir = Path(workspace)
        self.secrets: Dict[str, str] = dict(secrets or {})
        self._cancelled = cancelled
        self._cancel_after = cancel_after
        self._checks = 0
        self._exec: Dict[str, Callable[[ExecCall], ExecResult]] = {}
        #: Log records captured so far.
        self.logs: List[LogRecord] = []
        #: Progress calls captured so far.
        self.progress_calls: List[Tuple[int, Optional[int], str]] = []
        #: Programs run so far.
        self.exec_calls: List[ExecCall] = []
        #: Seconds the stage slept through `cancel.sleep`.
        self.slept: float = 0.0
        self._base = base

    # --- configuring -------------------------------------------------------

    def on_exec(
        self,
        program: str,
        result: Union[ExecResult, Callable[[ExecCall], ExecResult], None] = None,
        *,
        stdout: Union[bytes, str] = b"",
        stderr: Union[bytes, str] = b"",
        code: Optional[int] = 0,
    ) -> "FakeHost":
        """What `program` produces: a fixed `ExecResult` (or `stdout`,
        `stderr`, `code`), or a function of the `ExecCall`. The program must
        also be granted (`grants={"exec": [...]}`)."""
        if result is None:
            result = ExecResult(stdout, stderr, code)
        self._exec[program] = result if callable(result) else (lambda _call, r=result: r)
        return self

    def cancel(self) -> None:
        """Cancels the stage from now on."""
        self._cancelled = True

    # --- running -----------------------------------------------------------

    def run(
        self,
        stage: Stage,
        config: Union[None, str, Mapping[str, Any]] = None,
        *,
        stage_name: str = "stage",
        inputs: Sequence[Tuple[Artifact, Union[str, bytes]]] = (),
        upstream: Sequence[UpstreamOutput] = (),
        attempt: int = 1,
        environment: Optional[str] = None,
    ) -> StageResult:
        """Runs `stage` (made by `@stage`) with `config` (a mapping or JSON
        text) as the runner would, and returns how it ended. `inputs` are
        artifacts with their contents."""
        if not isinstance(stage, Stage):
            raise TypeError("FakeHost.run expects a function decorated with @sluice_stage.stage")
        out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=self._base))
        in_dir = self._base / "in"
        for a, content in inputs:
            p = in_dir / a.stage / a.name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_b(content))
        visible = self.grants.get("workspace") in ("read", "write") and self.workspace_dir.is_dir()
        info = RunInfo(
            stage=stage_name,
            environment=environment,
            config_json=config if isinstance(config, str) else json.dumps(dict(config or {})),
            inputs=[a for a, _ in inputs],
            outputs_dir=str(out_dir),
            upstream=list(upstream),
            attempt=attempt,
            deadline=_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(hours=1),
            workspace=str(self.workspace_dir if visible else self._base / "no-workspace-granted"),
            inputs_dir=str(in_dir),
        )
        first_log, first_progress, first_exec = len(self.logs), len(self.progress_calls), len(self.exec_calls)
        report: Optional[Report] = None
        error: Optional[StageError] = None
        with _host.installed(self):
            try:
                report = stage.execute(info)
            except StageError as e:
                error = e
        return StageResult(
            report,
            error,
            self.logs[first_log:],
            self.progress_calls[first_progress:],
            self.exec_calls[first_exec:],
            out_dir,
            self,
        )

    def installed(self):
        """A `with` block in which SDK calls (`log`, `exec`, `secrets`, …)
        go to this fake, for testing helpers without `run`."""
        return _host.installed(self)

    # --- the Host interface -------------------------------------------------

    def log(self, level: str, message: str, fields: Sequence[Tuple[str, str]]) -> None:
        """Captures the record in `logs`."""
        self.logs.append(LogRecord(level, message, dict(fields)))

    def progress(self, done: int, total: Optional[int], message: str) -> None:
        """Captures the call in `progress_calls`."""
        self.progress_calls.append((done, total, message))

    def is_cancelled(self) -> bool:
        """Whether `cancelled`, `cancel()` or `cancel_after` says so."""
        self._checks += 1
        if self._cancel_after is not None and self._checks > self._cancel_after:
            self._cancelled = True
        return self._cancelled

    def sleep(self, seconds: float) -> bool:
        """Adds `seconds` to `slept` without waiting; False when cancelled."""
        if self.is_cancelled():
            return False
        self.slept += seconds
        return True

    def secret(self, name: str) -> str:
        """The value from `secrets` when `name` is granted."""
        if name not in self.grants.get("secrets", []):
            raise _host.HostError("denied", f"secret `{name}` is not in grants.secrets")
        if name not in self.secrets:
            raise _host.HostError("not-found", f"no value for secret `{name}`")
        return self.secrets[name]

    def _check_program(self, program: str, env: Sequence[Tuple[str, str]]) -> None:
        if program not in self.grants.get("exec", []):
            raise _host.HostError("denied", f"`{program}` is not in grants.exec")
        if "/" in program:
            raise _host.HostError("invalid-argument", "the program must be a bare name")
        if any(k == "PATH" or "=" in k for k, _ in env):
            raise _host.HostError("invalid-argument", "env may not set PATH or a name with `=`")
        if program not in self._exec:
            raise _host.HostError("not-found", f"`{program}` is not on the host PATH")

    def _result_for(self, call: ExecCall) -> ExecResult:
        return self._exec[call.program](call)

    def _stream_to_log(self, stream: str, data: bytes) -> None:
        for line in data.decode("utf-8", "replace").splitlines():
            self.logs.append(LogRecord("info", line, {"stream": stream}))

    def exec_run(self, program: str, args: List[str], cwd: Optional[str], timeout_ms: Optional[int]) -> _host.RawOutput:
        """Runs the faked program (`on_exec`) when it is granted."""
        self._check_program(program, [])
        call = ExecCall(program, list(args), cwd)
        self.exec_calls.append(call)
        r = self._result_for(call)
        status = -1 if r.code is None or r.timed_out else r.code
        return _host.RawOutput(status, _b(r.stdout), _b(r.stderr), False, r.timed_out)

    def exec_spawn(self, command: _host.CommandSpec) -> _host.RawProcess:
        """Spawns the faked program (`on_exec`) when it is granted."""
        self._check_program(command.program, command.env)
        call = ExecCall(command.program, list(command.args), command.cwd, dict(command.env))
        self.exec_calls.append(call)
        return _FakeProcess(self, command, call)

    def close(self) -> None:
        """Removes the temporary directories."""
        self._tmp.cleanup()


__all__ = ["ExecCall", "ExecResult", "FakeHost", "LogRecord", "StageResult"]
