"""Native tests of the stage's logic, with the SDK's fake host: no
component and no runner needed (`python3 -m pytest`)."""

from sluice_stage import Denied, InvalidConfig, Verdict
from sluice_stage.testing import FakeHost

import app

WORKSPACE = {
    "src/app.py": "def f():\n    # TODO: handle errors\n    return 1\n",
    "src/util.py": "x = 1  # TODO\n",
    "docs/notes.md": "TODO: not a Python file\n",
}


def test_counts_markers_and_passes_within_max():
    result = FakeHost(workspace=WORKSPACE).run(app.run, {"max": 5})
    assert result.passed
    assert result.metric("{{name}}.markers") == 2
    assert result.metric("{{name}}.files") == 2
    assert result.gate("{{name}}").verdict is Verdict.PASS
    assert [(f.location.path, f.location.start_line) for f in result.report.findings] == [
        ("src/app.py", 2), ("src/util.py", 1)]
    assert result.artifact("markers.txt").decode().startswith("src/app.py:2: # TODO: handle errors")
    assert "info looking for markers marker=TODO files=2" in result.log_text


def test_fails_the_gate_above_max():
    result = FakeHost(workspace=WORKSPACE).run(app.run, {})
    assert not result.passed
    assert result.gate("{{name}}").verdict is Verdict.FAIL


def test_bad_config_names_the_key():
    result = FakeHost(workspace=WORKSPACE).run(app.run, {"max": "five"})
    assert isinstance(result.error, InvalidConfig)
    assert result.error.message == 'with.max: expected an integer, got string "five"'
    result = FakeHost(workspace=WORKSPACE).run(app.run, {"maxx": 1})
    assert result.error.message == "with.maxx: unknown key; did you mean `max`?"


def test_needs_the_workspace_grant():
    result = FakeHost(workspace=WORKSPACE, grants={}).run(app.run, {})
    assert isinstance(result.error, Denied)
    assert str(result.error) == "denied: grant `workspace: read`"
