# SPDX-License-Identifier: Apache-2.0
"""`@stage` run through `FakeHost`: reports, artifacts, and every way a
stage can fail (bad config, missing grants, its own exceptions, a report
the runner would refuse)."""

import json
import math
import sys
from dataclasses import dataclass

import pytest

from sluice_stage import (
    ArtifactRole, Capability, Context, Denied, Failed, Finding, FindingLevel, InvalidConfig, Report,
    StageError, Verdict, log, setting, stage, workspace,
)
from sluice_stage.testing import FakeHost


@dataclass
class Config:
    word: str = setting("TODO", description="The word to count", min_length=1)
    max_hits: int = setting(0, minimum=0)


@stage(name="word-count", version="1.2.3", kind="lint", description="Counts a word.",
       config=Config, capabilities=[Capability.workspace_read(), Capability.exec("git")])
def count(ctx: Context[Config]) -> Report:
    root = ctx.require_workspace()
    hits = []
    for f in workspace.files(root, ["**/*.py"]):
        for n, line in enumerate(f.path.read_text().splitlines(), 1):
            if ctx.config.word in line:
                hits.append((f.rel, n))
    log.info("counted", hits=len(hits))
    ctx.write_artifact("hits.json", [{"path": p, "line": n} for p, n in hits], role=ArtifactRole.REPORT)
    over = len(hits) > ctx.config.max_hits
    return (Report(f"{len(hits)} hits")
            .metric("words.hits", len(hits))
            .gate("words", Verdict.FAIL if over else Verdict.PASS, f"{len(hits)} of at most {ctx.config.max_hits}",
                  observed=len(hits), threshold=ctx.config.max_hits)
            .with_findings(Finding.warning("word", f"`{ctx.config.word}` left", path=p, line=n) for p, n in hits))


WS = {"src/a.py": "x = 1  # TODO\n", "src/b.py": "ok\n# TODO twice\n", "notes.txt": "TODO"}


def test_a_stage_reports_and_writes_described_artifacts():
    r = FakeHost(workspace=WS).run(count, {"word": "TODO", "max-hits": 5})
    assert r.error is None and r.passed
    assert r.metric("words.hits") == 2
    g = r.gate("words")
    assert (g.verdict, g.observed, g.threshold) == (Verdict.PASS, 2.0, 5.0)
    rep = r.expect_report()
    assert [(f.location.path, f.location.start_line, f.level) for f in rep.findings] == [
        ("src/a.py", 1, FindingLevel.WARNING), ("src/b.py", 2, FindingLevel.WARNING)]
    assert r.artifact_json("hits.json") == [{"path": "src/a.py", "line": 1}, {"path": "src/b.py", "line": 2}]
    [a] = rep.artifacts
    assert (a.path, a.media_type, a.role) == ("hits.json", "application/json", ArtifactRole.REPORT)
    assert "info counted hits=2" in r.log_text


def test_a_failing_gate_is_not_passed():
    r = FakeHost(workspace=WS).run(count, {})
    assert r.ok and not r.passed
    assert r.gate("words").verdict is Verdict.FAIL


def test_describe_publishes_the_schema_and_the_module_gets_a_plugin_class():
    info = count.info
    assert (info.name, info.version, info.kind) == ("word-count", "1.2.3", "lint")
    assert info.capabilities == [Capability.workspace_read(), Capability.exec("git")]
    schema = json.loads(info.config_schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"word", "max-hits"}
    plugin = sys.modules[__name__].Plugin
    assert callable(plugin().describe) and callable(plugin().run)
    # Without the component's bindings the export says how to get them.
    with pytest.raises(RuntimeError, match="componentize-py"):
        plugin().describe()


def test_bad_config_fails_before_the_function_runs():
    calls = []

    @stage(name="x", version="0.1.0", description="x", config=Config, export=False)
    def spy(ctx):
        calls.append(ctx)
        return Report()

    r = FakeHost(workspace={}).run(spy, {"word": 3})
    assert isinstance(r.error, InvalidConfig)
    assert r.error.message == "with.word: expected a string, got number 3"
    assert FakeHost().run(spy, {"max_hits": 1}).error.message == \
        "with.max_hits: unknown key; did you mean `max-hits`?"
    assert FakeHost().run(spy, "{not json").error.message.startswith("with: is not valid JSON")
    assert calls == []


def test_without_a_workspace_grant_the_stage_is_denied_workspace_read():
    r = FakeHost(workspace=WS, grants={}).run(count, {})
    assert isinstance(r.error, Denied)
    assert r.error.capability == Capability.workspace_read()
    assert str(r.error) == "denied: grant `workspace: read`"
    assert isinstance(FakeHost().run(count, {}).error, Denied)


def test_an_exception_inside_run_fails_the_stage_with_its_message(capsys):
    @stage(name="boom", version="0.1.0", description="fails", export=False)
    def boom(ctx):
        return {"not": "a report"}["missing"]

    r = boom_result = FakeHost().run(boom)
    assert isinstance(r.error, Failed) and r.report is None
    assert r.error.message.startswith("KeyError: 'missing' (at test_stage.py:")
    assert "in boom)" in r.error.message
    # The traceback goes to the stage log (stderr).
    assert "Traceback" in capsys.readouterr().err
    assert boom_result.error.case == "failed"


def test_stage_errors_raised_inside_run_keep_their_type():
    @stage(name="e", version="0.1.0", description="e", export=False)
    def raising(ctx):
        raise StageError.invalid_config("with.x: must be even")

    r = FakeHost().run(raising)
    assert isinstance(r.error, InvalidConfig) and r.error.message == "with.x: must be even"

    @stage(name="e", version="0.1.0", description="e", export=False)
    def denied(ctx):
        raise StageError.denied(Capability.network("api.example.com:443"))

    e = FakeHost().run(denied).error
    assert e.capability.grant() == 'network: ["api.example.com:443"]'


@pytest.mark.parametrize("report, rule", [
    (Report().metric("m", math.nan), "metric `m` is nan"),
    (Report().metric("m", 1).metric("m", 2), "metric `m` is empty or repeated"),
    (Report().gate("g", Verdict.PASS, "").gate("g", Verdict.FAIL, ""), "gate `g` is empty or repeated"),
    (Report().gate("g", "pass", ""), "gate `g`: verdict must be a Verdict"),
    (Report().finding(Finding.error("E1", "x", path="/etc/passwd")), "finding 0 (`E1`): location `/etc/passwd`"),
    (Report().finding(Finding.error("E1", "x", path="a/../../b")), "must be relative"),
    (Report().finding(Finding.note("", "x")), "the rule id and the message must not be empty"),
    (Report().finding(Finding.note("R", "x", help_uri="ftp://x")), "must be an http(s) URI"),
    (Report().artifact("a", annotations=[("k", "1"), ("k", "2")]), "annotation key `k` is empty or repeated"),
    (Report().output("big", "x" * 70000), "outputs exceed"),
])
def test_a_report_the_runner_would_refuse_fails_the_stage_naming_the_rule(report, rule):
    @stage(name="r", version="0.1.0", description="r", export=False)
    def returns(ctx):
        return report

    e = FakeHost().run(returns).error
    assert isinstance(e, Failed), e
    assert e.message.startswith("the report breaks a runner rule: ")
    assert rule in e.message


def test_returning_something_else_than_a_report_fails():
    @stage(name="r", version="0.1.0", description="r", export=False)
    def returns_dict(ctx):
        return {"summary": "x"}

    assert "returned dict, not a sluice_stage.Report" in FakeHost().run(returns_dict).error.message


def test_artifact_paths_cannot_leave_the_output_directory_and_roles_are_checked():
    for path in ["../x", "/etc/x", "a/../../x", ""]:
        @stage(name="a", version="0.1.0", description="a", export=False)
        def writes(ctx, path=path):
            ctx.write_artifact(path, "x")
            return Report()

        e = FakeHost().run(writes).error
        assert isinstance(e, Failed) and "must be relative to the output directory" in e.message, path
    with pytest.raises(ValueError, match="lowercase letters"):
        ArtifactRole.other("Not OK")


def test_a_report_description_wins_over_write_artifact():
    @stage(name="a", version="0.1.0", description="a", export=False)
    def both(ctx):
        ctx.write_artifact("./out/r.txt", "text", "text/plain", annotations={"k": "v"})
        return Report().artifact("out/r.txt", "text/markdown", role=ArtifactRole.other("notes"))

    r = FakeHost().run(both)
    [a] = r.expect_report().artifacts
    assert (a.media_type, a.role.name, a.role.custom) == ("text/markdown", "notes", True)
    assert r.artifact("out/r.txt") == b"text"


def test_context_exposes_the_run_inputs_and_upstream_outputs():
    from sluice_stage import Artifact, UpstreamOutput

    seen = {}

    @stage(name="c", version="0.1.0", description="c", export=False)
    def look(ctx):
        seen["stage"], seen["attempt"], seen["env"] = ctx.stage, ctx.attempt, ctx.environment
        seen["version"] = ctx.upstream("build", "version")
        a = ctx.inputs[0]
        seen["input"] = ctx.input_path(a).read_text()
        seen["annotation"] = a.annotation("k")
        seen["config"] = ctx.config
        return Report("ok")

    art = Artifact("build", "dist/app.txt", media_type="text/plain", annotations=(("k", "v"),))
    r = FakeHost().run(look, {"raw": True}, stage_name="deploy", attempt=2, environment="prod",
                       inputs=[(art, "payload")], upstream=[UpstreamOutput("build", "version", "1.4.0")])
    assert r.ok
    assert seen == {"stage": "deploy", "attempt": 2, "env": "prod", "version": "1.4.0", "input": "payload",
                    "annotation": "v", "config": {"raw": True}}


def test_stage_kinds_are_checked_when_declared():
    with pytest.raises(ValueError, match="stage kind `Not A Word`"):
        stage(name="x", version="0", description="x", kind="Not A Word")
    assert stage(name="x", version="0", description="x", kind="docs-check", export=False)(lambda c: Report()).info.kind == "docs-check"
