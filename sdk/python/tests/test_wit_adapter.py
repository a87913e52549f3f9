# SPDX-License-Identifier: Apache-2.0
"""The WIT side of the seam (`sluice_stage._wit`) against the real
bindings componentize-py generates from `wit/v0.2` (the same types the
component uses), with the import functions replaced by fakes."""

import datetime as dt
import importlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice_stage import (
    ArtifactRole, Capability, Denied, ExecError, Failed, Finding, InvalidConfig, NotFound, Report, Verdict, exec,
    log, secrets, setting, stage,
)
from sluice_stage import _host
from sluice_stage.stage import plugin_class

WIT = Path(__file__).resolve().parents[3] / "wit" / "v0.2"


@pytest.fixture(scope="module")
def wit(tmp_path_factory):
    """`sluice_stage._wit` with the generated `wit_world` importable."""
    tool = shutil.which("componentize-py")
    assert tool, "componentize-py is not on PATH: run scripts/setup-guest-toolchains.sh"
    out = tmp_path_factory.mktemp("bindings")
    subprocess.run([tool, "-d", str(WIT), "-w", "stage", "bindings", str(out)], check=True, capture_output=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("sluice_stage._wit")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] in ("wit_world", "componentize_py_types")]:
            del sys.modules[name]
        sys.modules.pop("sluice_stage._wit", None)


@dataclass
class Config:
    level: str = setting("warn", description="How loud")


@stage(name="adapter", version="0.3.0", kind="docs-check", description="Exercises the adapter.",
       config=Config, capabilities=[Capability.workspace_read(), Capability.network("*:443"),
                                    Capability.secret("T")], export=False)
def adapter_stage(ctx):
    if ctx.config.level == "deny":
        raise Denied(Capability.exec("make"))
    return (Report("done").metric("a.b", 2, "ms")
            .gate("g", Verdict.INCONCLUSIVE, "unsure", observed=1, threshold=2)
            .output("o", "v")
            .artifact("r.json", "application/json", role=ArtifactRole.COVERAGE, annotations={"k": "v"})
            .artifact("img.tar", role=ArtifactRole.other("container-image"))
            .finding(Finding.error("E1", "bad", path="src/a.py", line=3, column=2, end_column=5,
                                   fingerprint="fp", help_uri="https://x.example/E1"))
            .finding(Finding.note("N1", "project-wide")))


def wit_context(wit, config='{"level": "warn"}'):
    T = wit.T
    from wit_world.imports.wall_clock import Datetime

    return T.Context(
        run_id="r1", pipeline="p", stage="s", environment="prod", config=config,
        inputs=[T.Artifact(stage="build", name="dist/a.whl", digest="sha256:" + "0" * 64, size=3,
                           media_type="application/zip", role=T.ArtifactRole_Package(), annotations=[("v", "1")]),
                T.Artifact(stage="build", name="x", digest="d", size=0, media_type="m",
                           role=T.ArtifactRole_Other("custom-role"), annotations=[])],
        outputs_dir="/artifacts/out", upstream=[T.OutputValue(stage="build", name="version", value="1.0")],
        attempt=2, deadline=Datetime(seconds=1_700_000_000, nanoseconds=5_000), grace_period=10_000_000_000,
    )


def test_describe_lowers_kind_capabilities_and_schema(wit):
    T = wit.T
    info = plugin_class(adapter_stage)().describe()
    assert isinstance(info, T.PluginInfo)
    assert (info.name, info.version, info.kind) == ("adapter", "0.3.0", T.StageKind_Custom("docs-check"))
    assert info.capabilities == [T.Capability_WorkspaceRead(), T.Capability_Network("*:443"), T.Capability_Secret("T")]
    assert '"level"' in info.config_schema
    assert wit.plugin_info(stage(name="l", version="0", description="d", kind="lint", export=False)(
        lambda c: Report()).info).kind == T.StageKind_Lint()


def test_run_lowers_the_report(wit):
    T = wit.T
    r = plugin_class(adapter_stage)().run(wit_context(wit))
    assert isinstance(r, T.Report)
    assert r.metrics == [T.Metric(name="a.b", value=2.0, unit="ms")]
    assert r.gates == [T.Gate(name="g", verdict=T.Verdict.INCONCLUSIVE, observed=1.0, threshold=2.0, message="unsure")]
    assert r.outputs == [("o", "v")]
    assert r.artifacts == [
        T.ArtifactInfo(path="r.json", media_type="application/json", role=T.ArtifactRole_Coverage(),
                       annotations=[("k", "v")]),
        T.ArtifactInfo(path="img.tar", media_type=None, role=T.ArtifactRole_Other("container-image"), annotations=[]),
    ]
    assert r.findings == [
        T.Finding(rule_id="E1", level=T.FindingLevel.ERROR, message="bad",
                  location=T.Location(path="src/a.py", start_line=3, start_column=2, end_line=None, end_column=5),
                  fingerprint="fp", help_uri="https://x.example/E1"),
        T.Finding(rule_id="N1", level=T.FindingLevel.NOTE, message="project-wide", location=None,
                  fingerprint=None, help_uri=None),
    ]
    assert wit.report_to_wit(Report("no findings")).findings is None


def test_run_raises_err_with_the_stage_error(wit):
    from componentize_py_types import Err

    T = wit.T
    plugin = plugin_class(adapter_stage)()
    with pytest.raises(Err) as e:
        plugin.run(wit_context(wit, '{"level": 3}'))
    assert e.value.value == T.StageError_InvalidConfig("with.level: expected a string, got number 3")
    with pytest.raises(Err) as e:
        plugin.run(wit_context(wit, '{"level": "deny"}'))
    assert e.value.value == T.StageError_Denied(T.Capability_Exec("make"))
    assert wit.error_to_wit(Failed("x")) == T.StageError_Failed("x")
    assert wit.error_to_wit(NotFound("git", "gone")) == T.StageError_Failed("gone")
    assert wit.error_to_wit(InvalidConfig("with.a: no")) == T.StageError_InvalidConfig("with.a: no")


def test_the_context_is_raised_to_sdk_types(wit):
    info = wit.context_from_wit(wit_context(wit))
    assert (info.run_id, info.stage, info.environment, info.attempt) == ("r1", "s", "prod", 2)
    assert info.deadline == dt.datetime(2023, 11, 14, 22, 13, 20, 5, tzinfo=dt.timezone.utc)
    assert info.grace_period == dt.timedelta(seconds=10)
    a, b = info.inputs
    assert (a.role, a.annotation("v"), a.size) == (ArtifactRole.PACKAGE, "1", 3)
    assert b.role == ArtifactRole("custom-role", True)
    assert info.upstream[0].value == "1.0"


def test_host_errors_become_typed_exceptions(wit, monkeypatch):
    from componentize_py_types import Err
    from wit_world.imports import exec as wexec
    from wit_world.imports import log as wlog
    from wit_world.imports import secrets as wsecrets

    def refuse(code):
        def f(*a, **k):
            raise Err(code)
        return f

    h = wit.WitHost()
    with _host.installed(h):
        monkeypatch.setattr(wexec, "run", refuse(wexec.ErrorCode_Denied("`curl` is not in grants.exec")))
        with pytest.raises(Denied) as e:
            exec.run("curl")
        assert e.value.capability == Capability.exec("curl")
        monkeypatch.setattr(wexec, "run", refuse(wexec.ErrorCode_NotFound("git: not on PATH")))
        with pytest.raises(NotFound):
            exec.run("git")
        monkeypatch.setattr(wexec, "spawn", refuse(wexec.ErrorCode_InvalidArgument("env sets PATH")))
        with pytest.raises(ExecError) as x:
            exec.spawn("git", env={"PATH": "/"})
        assert x.value.kind == "invalid-argument"
        monkeypatch.setattr(wexec, "run", lambda p, a, c, t: wexec.Output(status=3, stdout=b"o", stderr=b"e",
                                                                          truncated=True, timed_out=False))
        out = exec.run("git", ["x"], timeout=1.5)
        assert (out.code, out.stdout, out.truncated) == (3, b"o", True)

        monkeypatch.setattr(wsecrets, "get", refuse(wsecrets.ErrorCode_Denied("TOKEN")))
        with pytest.raises(Denied) as e:
            secrets.get("TOKEN")
        assert e.value.capability == Capability.secret("TOKEN")
        monkeypatch.setattr(wsecrets, "get", refuse(wsecrets.ErrorCode_NotFound("TOKEN")))
        with pytest.raises(NotFound):
            secrets.get("TOKEN")

        records = []
        monkeypatch.setattr(wlog, "log", lambda level, msg, fields: records.append((level, msg, fields)))
        log.warn("careful", n=2)
        assert records == [(wlog.Level.WARN, "careful", [("n", "2")])]
