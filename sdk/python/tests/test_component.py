# SPDX-License-Identifier: Apache-2.0
"""The SDK inside a real component, run by the real runner: a probe stage
(tests/probe/app.py) built with componentize-py and run with
`sluice run`, for the host calls the example stages do not make (exec in
every output mode, stdin, secrets, cancellation, a crash).

Needs componentize-py (scripts/setup-guest-toolchains.sh) and the runner
(`cargo build -p sluice`, or SLUICE_BIN). Deselect with `-m "not component"`.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.component

REPO = Path(__file__).resolve().parents[3]
SLUICE = Path(os.environ.get("SLUICE_BIN", REPO / "target" / "debug" / "sluice"))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    tool = shutil.which("componentize-py")
    assert tool, "componentize-py is not on PATH: run scripts/setup-guest-toolchains.sh"
    assert SLUICE.is_file(), f"{SLUICE} is missing: build the runner with `cargo build -p sluice` (or set SLUICE_BIN)"
    wasm = tmp_path_factory.mktemp("probe") / "probe.wasm"
    subprocess.run(
        [tool, "-d", str(REPO / "wit" / "v0.2"), "-w", "stage", "componentize",
         "-p", str(Path(__file__).parent / "probe"), "-p", str(REPO / "sdk" / "python"), "app", "-o", str(wasm)],
        check=True, capture_output=True,
    )
    return wasm


def run(tmp_path, wasm, stage_yaml):
    (tmp_path / "sluice.yaml").write_text(
        f"version: 1\nname: probe\nstages:\n  probe:\n    uses: {wasm}\n{stage_yaml}")
    p = subprocess.run(
        [str(SLUICE), "run", "--allow-unsigned", "--json", "--state-dir", str(tmp_path / ".state")],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "TOKEN": "abcdef"}, timeout=300,
    )
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    finished = next((e for e in events if e.get("event") == "stage_finished"), None)
    assert finished, p.stdout + p.stderr
    return p, finished, events


def test_host_calls_work_in_a_component(probe, tmp_path):
    p, done, events = run(tmp_path, probe, "    grants: { exec: [echo, sort, sh, definitely-not-installed-xyz], "
                                           "secrets: [TOKEN] }\n")
    assert done["state"] == "passed", p.stdout + p.stderr
    assert done["outputs"] == {
        "echo": "hello world", "sorted": "a,b,c,", "tee": "tee-out", "lines": "line1|line2|line3",
        "status": "exited 0", "failed": "3:boom", "denied": "exec: [curl]",
        "not-found": "definitely-not-installed-xyz", "secret-denied": "secrets: [NOPE]", "token-length": "6",
    }
    logs = [e for e in events if e.get("event") == "stage_log"]
    # LOG and TEE lines reach the stage log; the SDK's own records keep level and fields.
    assert any(e["line"] == "to-log" for e in logs) and any(e["line"] == "tee-out" for e in logs)
    assert any(e.get("level") == "info" and e["line"] == "probe done" and e["fields"] == {"outputs": "10"}
               for e in logs), logs


def test_a_crash_fails_the_stage_with_the_exception(probe, tmp_path):
    p, done, events = run(tmp_path, probe, "    with: { mode: crash }\n")
    assert done["state"] == "failed"
    assert done["reason"].startswith("failed: ZeroDivisionError: division by zero (at app.py:"), done


def test_a_bad_config_is_refused_against_the_published_schema(probe, tmp_path):
    p, done, events = run(tmp_path, probe, "    with: { mode: loud }\n")
    assert done["state"] == "failed" and "with.mode" in done["reason"], done


def test_cancel_sleep_returns_when_the_stage_times_out(probe, tmp_path):
    p, done, events = run(tmp_path, probe, "    with: { mode: wait }\n    timeout: 2s\n    grace-period: 5s\n")
    assert done["state"] != "passed", done
    lines = [e.get("line", "") for e in events if e.get("event") == "stage_log"]
    assert "cancelled, cleaning up" in lines, lines
    assert any("ended within its grace period" in l for l in lines), lines
