# SPDX-License-Identifier: Apache-2.0
"""Native tests of the license-header check with the SDK's fakes
(`python3 -m pytest` here; the e2e suite runs the built component)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sdk" / "python"))

from sluice_stage import Denied, InvalidConfig, Verdict  # noqa: E402
from sluice_stage.testing import FakeHost  # noqa: E402

import app  # noqa: E402

WS = {
    "src/ok.py": "# SPDX-License-Identifier: MIT\n",
    "src/lib.rs": "// Copyright\n// SPDX-License-Identifier: MIT\n",
    "src/bad.py": "print('no header')\n",
    "vendor/third.py": "print('vendored')\n",
    "README.md": "not a source file\n",
}


def test_a_missing_required_header_fails_the_gate():
    r = FakeHost(workspace=WS).run(app.run, {"header": "SPDX-License-Identifier: MIT", "include": ["*.py", ".rs"],
                                             "exclude": ["vendor/*"], "required": True})
    assert (r.metric("license.missing"), r.metric("license.checked")) == (1, 3)
    assert r.gate("license-header").verdict is Verdict.FAIL and not r.passed
    assert [f.location.path for f in r.report.findings] == ["src/bad.py"]
    assert r.artifact_json("license-report.json")["missing"] == ["src/bad.py"]
    assert "warn missing header: src/bad.py path=src/bad.py" in r.log_text
    assert r.progress[-1] == (3, 3, "done")


def test_not_required_warns_and_clean_passes():
    r = FakeHost(workspace=WS).run(app.run, {"header": "SPDX-License-Identifier: MIT", "include": ["*.py"]})
    assert r.gate("license-header").verdict is Verdict.WARN and r.passed
    r = FakeHost(workspace={"a.py": "# SPDX-License-Identifier: MIT"}).run(app.run, {"header": "SPDX"})
    assert r.gate("license-header").verdict is Verdict.PASS and r.report.findings == []


def test_errors():
    assert isinstance(FakeHost().run(app.run, {"header": "MIT"}).error, Denied)
    e = FakeHost(workspace=WS).run(app.run, {"header": "MIT", "lines": 0}).error
    assert isinstance(e, InvalidConfig) and e.message == "with.lines: must be at least 1, got 0"
    e = FakeHost(workspace=WS).run(app.run, {"header": "MIT", "cancel": True}).error
    assert e.message == "with.cancel: unknown key; known keys: `header`, `include`, `exclude`, `lines`, `required`"
    e = FakeHost(workspace=WS, cancel_after=1).run(app.run, {"header": "MIT"}).error
    assert e.message == "cancelled after 1 of 4 files"
