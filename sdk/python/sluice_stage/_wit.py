# SPDX-License-Identifier: Apache-2.0
"""The WIT side of the seam: `WitHost` on the componentize-py bindings
(`wit_world`, generated at build time from `sluice:stage@0.2.0`), and the
conversions between the SDK's types and the WIT types at the `plugin`
export. Importable only where `wit_world` is (inside a component build, or
a test that generated the bindings with `componentize-py bindings`)."""

from __future__ import annotations

import datetime as _dt
from typing import List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import cancel as wcancel
from wit_world.imports import exec as wexec
from wit_world.imports import log as wlog
from wit_world.imports import monotonic_clock, poll
from wit_world.imports import secrets as wsecrets
from wit_world.imports import sluice_stage_types as T

from . import _host
from .context import RunInfo
from .errors import Denied, InvalidConfig, StageError
from .report import Finding, Report
from .types import Artifact, ArtifactRole, Capability, UpstreamOutput

_CHUNK = 64 * 1024

_ROLE_TO_WIT = {
    "report": T.ArtifactRole_Report,
    "test-results": T.ArtifactRole_TestResults,
    "coverage": T.ArtifactRole_Coverage,
    "package": T.ArtifactRole_Package,
    "sbom": T.ArtifactRole_Sbom,
    "provenance": T.ArtifactRole_Provenance,
    "log": T.ArtifactRole_Log,
}
_ROLE_FROM_WIT = {v: k for k, v in _ROLE_TO_WIT.items()}
_KINDS = {
    "lint": T.StageKind_Lint,
    "test": T.StageKind_Test,
    "scan": T.StageKind_Scan,
    "build": T.StageKind_Build,
    "deploy": T.StageKind_Deploy,
    "smoke": T.StageKind_Smoke,
    "canary": T.StageKind_Canary,
    "monitor": T.StageKind_Monitor,
    "remediate": T.StageKind_Remediate,
}
_CAPS = {
    "env": T.Capability_Env,
    "network": T.Capability_Network,
    "exec": T.Capability_Exec,
    "secret": T.Capability_Secret,
}
_MODES = {
    "pipe": wexec.OutputMode.PIPE,
    "log": wexec.OutputMode.LOG,
    "discard": wexec.OutputMode.DISCARD,
    "tee": wexec.OutputMode.TEE,
}
_HOST_ERRORS = {
    wexec.ErrorCode_Denied: "denied",
    wexec.ErrorCode_NotFound: "not-found",
    wexec.ErrorCode_InvalidArgument: "invalid-argument",
    wexec.ErrorCode_SpawnFailed: "spawn-failed",
    wsecrets.ErrorCode_Denied: "denied",
    wsecrets.ErrorCode_NotFound: "not-found",
}


def role_to_wit(role: Optional[ArtifactRole]):
    """SDK role → WIT `artifact-role`."""
    if role is None:
        return None
    if role.custom or role.name not in _ROLE_TO_WIT:
        return T.ArtifactRole_Other(role.name)
    return _ROLE_TO_WIT[role.name]()


def role_from_wit(role) -> Optional[ArtifactRole]:
    """WIT `artifact-role` → SDK role."""
    if role is None:
        return None
    if isinstance(role, T.ArtifactRole_Other):
        return ArtifactRole(role.value, True)
    return ArtifactRole(_ROLE_FROM_WIT[type(role)])


def capability_to_wit(c: Capability):
    """SDK capability → WIT `capability`."""
    if c.kind == "workspace-read":
        return T.Capability_WorkspaceRead()
    if c.kind == "workspace-write":
        return T.Capability_WorkspaceWrite()
    return _CAPS[c.kind](c.value)


def plugin_info(info) -> "T.PluginInfo":
    """SDK `PluginInfo` → WIT `plugin-info`."""
    kind = _KINDS[info.kind]() if info.kind in _KINDS else T.StageKind_Custom(info.kind)
    return T.PluginInfo(
        name=info.name,
        version=info.version,
        kind=kind,
        description=info.description,
        config_schema=info.config_schema,
        capabilities=[capability_to_wit(c) for c in info.capabilities],
    )


def _finding(f: Finding) -> "T.Finding":
    loc = f.location
    return T.Finding(
        rule_id=f.rule_id,
        level=T.FindingLevel[f.level.name],
        message=f.message,
        location=None
        if loc is None
        else T.Location(
            path=loc.path,
            start_line=loc.start_line,
            start_column=loc.start_column,
            end_line=loc.end_line,
            end_column=loc.end_column,
        ),
        fingerprint=f.fingerprint,
        help_uri=f.help_uri,
    )


def report_to_wit(r: Report) -> "T.Report":
    """SDK `Report` → WIT `report`."""
    return T.Report(
        summary=r.summary,
        metrics=[T.Metric(name=m.name, value=m.value, unit=m.unit) for m in r.metrics],
        gates=[
            T.Gate(name=g.name, verdict=T.Verdict[g.verdict.name], observed=g.observed,
                   threshold=g.threshold, message=g.message)
            for g in r.gates
        ],
        outputs=list(r.outputs),
        artifacts=[
            T.ArtifactInfo(path=a.path, media_type=a.media_type, role=role_to_wit(a.role),
                           annotations=list(a.annotations))
            for a in r.artifacts
        ],
        findings=None if r.findings is None else [_finding(f) for f in r.findings],
    )


def error_to_wit(e: StageError):
    """SDK `StageError` → WIT `stage-error`."""
    if isinstance(e, Denied):
        return T.StageError_Denied(capability_to_wit(e.capability))
    if isinstance(e, InvalidConfig):
        return T.StageError_InvalidConfig(e.message)
    return T.StageError_Failed(e.message)


def context_from_wit(c: "T.Context") -> RunInfo:
    """WIT `context` → the SDK's `RunInfo`."""
    deadline = _dt.datetime.fromtimestamp(c.deadline.seconds, _dt.timezone.utc) + _dt.timedelta(
        microseconds=c.deadline.nanoseconds // 1000
    )
    return RunInfo(
        run_id=c.run_id,
        pipeline=c.pipeline,
        stage=c.stage,
        environment=c.environment,
        config_json=c.config,
        inputs=[
            Artifact(a.stage, a.name, a.digest, a.size, a.media_type, role_from_wit(a.role), tuple(a.annotations))
            for a in c.inputs
        ],
        outputs_dir=c.outputs_dir or "/artifacts/out",
        upstream=[UpstreamOutput(o.stage, o.name, o.value) for o in c.upstream],
        attempt=c.attempt,
        deadline=deadline,
        grace_period=_dt.timedelta(microseconds=c.grace_period // 1000),
    )


def run(stage, ctx: "T.Context") -> "T.Report":
    """The export's `run`: the stage's report, or `Err(stage-error)`."""
    try:
        report = stage.execute(context_from_wit(ctx))
    except StageError as e:
        raise Err(error_to_wit(e)) from None
    return report_to_wit(report)


def _host_error(e: Err) -> _host.HostError:
    v = e.value
    return _host.HostError(_HOST_ERRORS.get(type(v), "failed"), str(getattr(v, "value", v)))


def _status(s) -> Tuple[str, Optional[int]]:
    if isinstance(s, wexec.ExitStatus_Exited):
        return ("exited", s.value)
    if isinstance(s, wexec.ExitStatus_Signaled):
        return ("signaled", s.value)
    if isinstance(s, wexec.ExitStatus_TimedOut):
        return ("timed-out", None)
    return ("killed", None)


class WitProcess(_host.RawProcess):
    """A spawned program on the WIT `process` resource."""

    def __init__(self, proc: "wexec.Process") -> None:
        self._p = proc
        self._stdin = proc.stdin()
        self._streams = {"stdout": proc.stdout(), "stderr": proc.stderr()}

    def write_stdin(self, data: bytes) -> None:
        if self._stdin is None:
            raise ValueError("the program was spawned without stdin=True")
        view = memoryview(data)
        while len(view):
            n = self._stdin.check_write()
            if n == 0:
                with self._stdin.subscribe() as p:
                    p.block()
                continue
            self._stdin.write(bytes(view[:n]))
            view = view[n:]
        self._stdin.blocking_flush()

    def close_stdin(self) -> None:
        if self._stdin is not None:
            self._stdin.__exit__(None, None, None)
            self._stdin = None

    def has_stream(self, name: str) -> bool:
        return self._streams.get(name) is not None

    def _close(self, name: str) -> None:
        s = self._streams.get(name)
        if s is not None:
            s.__exit__(None, None, None)
            self._streams[name] = None

    def read(self, name: str, size: int) -> Optional[bytes]:
        s = self._streams.get(name)
        if s is None:
            return None
        while True:
            try:
                data = s.blocking_read(size)
            except Err:
                self._close(name)
                return None
            if data:
                return data

    def read_both(self) -> Tuple[bytes, bytes]:
        bufs = {"stdout": bytearray(), "stderr": bytearray()}
        while True:
            open_ = [n for n in ("stdout", "stderr") if self._streams.get(n) is not None]
            if not open_:
                break
            pollables = [self._streams[n].subscribe() for n in open_]
            try:
                ready = poll.poll(pollables)
            finally:
                # Pollables are children of their streams: drop them first.
                for p in pollables:
                    p.__exit__(None, None, None)
            for i in ready:
                n = open_[i]
                try:
                    bufs[n] += self._streams[n].read(_CHUNK)
                except Err:
                    self._close(n)
        return bytes(bufs["stdout"]), bytes(bufs["stderr"])

    def try_wait(self) -> Optional[Tuple[str, Optional[int]]]:
        s = self._p.try_wait()
        return None if s is None else _status(s)

    def wait(self) -> Tuple[str, Optional[int]]:
        return _status(self._p.wait())

    def kill(self) -> None:
        self._p.kill()

    def truncated(self) -> bool:
        return self._p.truncated()


class WitHost(_host.Host):
    """The host inside a component: the `sluice:stage@0.2.0` imports."""

    _LEVELS = {
        "trace": wlog.Level.TRACE,
        "debug": wlog.Level.DEBUG,
        "info": wlog.Level.INFO,
        "warn": wlog.Level.WARN,
        "error": wlog.Level.ERROR,
    }

    def log(self, level: str, message: str, fields: Sequence[Tuple[str, str]]) -> None:
        wlog.log(self._LEVELS[level], message, list(fields))

    def progress(self, done: int, total: Optional[int], message: str) -> None:
        wlog.progress(done, total, message)

    def is_cancelled(self) -> bool:
        return wcancel.is_cancelled()

    def sleep(self, seconds: float) -> bool:
        if wcancel.is_cancelled():
            return False
        with wcancel.subscribe() as cancelled, monotonic_clock.subscribe_duration(int(seconds * 1e9)) as timer:
            poll.poll([cancelled, timer])
        return not wcancel.is_cancelled()

    def secret(self, name: str) -> str:
        try:
            return wsecrets.get(name)
        except Err as e:
            raise _host_error(e) from None

    def exec_run(self, program: str, args: List[str], cwd: Optional[str], timeout_ms: Optional[int]) -> _host.RawOutput:
        try:
            o = wexec.run(program, args, cwd, timeout_ms)
        except Err as e:
            raise _host_error(e) from None
        return _host.RawOutput(o.status, o.stdout, o.stderr, o.truncated, o.timed_out)

    def exec_spawn(self, command: _host.CommandSpec) -> _host.RawProcess:
        cmd = wexec.Command(
            program=command.program,
            args=list(command.args),
            cwd=command.cwd,
            env=list(command.env),
            stdin=command.stdin,
            stdout=_MODES[command.stdout],
            stderr=_MODES[command.stderr],
            timeout_ms=command.timeout_ms,
        )
        try:
            return WitProcess(wexec.spawn(cmd))
        except Err as e:
            raise _host_error(e) from None
