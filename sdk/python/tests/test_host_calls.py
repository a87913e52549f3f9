# SPDX-License-Identifier: Apache-2.0
"""`exec`, `secrets`, `log` and `cancel` against `FakeHost`: typed
exceptions for denied, missing and failing calls, output modes, fields."""

import logging

import pytest

from sluice_stage import (
    Cancelled, Capability, Denied, ExecError, ExecFailed, Failed, NotFound, Report, cancel, exec, log, secrets, stage,
)
from sluice_stage.testing import ExecCall, ExecResult, FakeHost


def host(**kw) -> FakeHost:
    return FakeHost(grants={"exec": ["git", "pytest", "sort"], "secrets": ["TOKEN", "EMPTY"]},
                    secrets={"TOKEN": "s3cret"}, **kw)


def test_exec_run_captures_output():
    h = host().on_exec("git", stdout="abc123\n")
    with h.installed():
        out = exec.run("git", ["rev-parse", "HEAD"], cwd="svc", check=True)
    assert out.ok and out.code == 0 and out.stdout_text == "abc123\n"
    assert h.exec_calls == [ExecCall("git", ["rev-parse", "HEAD"], "svc")]


def test_a_program_that_is_not_granted_is_denied_with_its_capability():
    with host().installed(), pytest.raises(Denied) as e:
        exec.run("curl", ["https://example.com"])
    assert e.value.capability == Capability.exec("curl")
    assert str(e.value) == "denied: grant `exec: [curl]`"
    with host().installed(), pytest.raises(Denied):
        exec.spawn("curl")


def test_a_granted_program_that_is_not_installed_is_not_found():
    with host().installed(), pytest.raises(NotFound) as e:
        exec.run("git", ["status"])
    assert e.value.what == "git" and "not installed" in e.value.message
    assert isinstance(e.value, Failed)


def test_check_raises_exec_failed_with_the_code_and_stderr():
    h = host().on_exec("pytest", stdout="collected 3\n", stderr="E assert 1 == 2\n2 failed\n", code=1)
    with h.installed():
        out = exec.run("pytest", ["-q", "tests dir"])
        assert not out.ok and out.code == 1
        with pytest.raises(ExecFailed) as e:
            exec.run("pytest", ["-q", "tests dir"], check=True)
    assert e.value.code == 1 and "2 failed" in e.value.stderr
    assert e.value.message == '`pytest -q "tests dir"` exited 1: E assert 1 == 2\n2 failed'


def test_timeouts_and_kills_have_no_exit_code():
    h = host().on_exec("git", ExecResult(code=None, timed_out=True))
    with h.installed():
        out = exec.run("git", ["fetch"])
        assert out.code is None and str(out.status) == "was killed after its timeout"
        with pytest.raises(ExecFailed) as e:
            out.check()
        assert e.value.code is None


def test_output_modes_stream_to_the_log_and_tee_also_captures():
    h = host().on_exec("pytest", stdout="line 1\nline 2\n", stderr="warning\n")
    with h.installed():
        out = exec.run("pytest", [], stdout=exec.TEE, stderr=exec.LOG)
    assert out.stdout == b"line 1\nline 2\n" and out.stderr == b""
    assert [(r.message, r.fields["stream"]) for r in h.logs] == [
        ("line 1", "stdout"), ("line 2", "stdout"), ("warning", "stderr")]
    with h.installed(), pytest.raises(ValueError, match="mode `loud`"):
        exec.run("pytest", [], stdout="loud")


def test_spawn_with_stdin_env_and_line_reading():
    def sort(call: ExecCall) -> ExecResult:
        return ExecResult(stdout=b"".join(sorted(call.stdin.splitlines(keepends=True))))

    h = host().on_exec("sort", sort)
    with h.installed():
        with exec.spawn("sort", env={"LC_ALL": "C"}, stdin=True, stdout=exec.PIPE) as p:
            p.write("b\nc\n")
            p.write(b"a\n")
            p.close_stdin()
            assert list(p.lines()) == ["a", "b", "c"]
            assert p.wait().success
        out = exec.run("sort", input="z\ny\n")
    assert h.exec_calls[0].env == {"LC_ALL": "C"}
    assert out.stdout_text == "y\nz\n"


def test_env_may_not_set_path():
    h = host().on_exec("git")
    with h.installed(), pytest.raises(ExecError) as e:
        exec.run("git", env={"PATH": "/evil"})
    assert e.value.kind == "invalid-argument"


def test_secrets_are_read_denied_or_not_found():
    with host().installed():
        assert secrets.get("TOKEN") == "s3cret"
        with pytest.raises(Denied) as e:
            secrets.get("AWS_KEY")
        assert e.value.capability == Capability.secret("AWS_KEY")
        assert e.value.message == "grant `secrets: [AWS_KEY]`"
        with pytest.raises(NotFound) as nf:
            secrets.get("EMPTY")
        assert nf.value.what == "EMPTY"
        assert secrets.get_optional("EMPTY") is None
        with pytest.raises(Denied):
            secrets.get_optional("AWS_KEY")


def test_a_denied_secret_inside_run_becomes_the_stages_denied_error():
    @stage(name="s", version="0.1.0", description="s", export=False)
    def deploy(ctx):
        secrets.get("DEPLOY_TOKEN")
        return Report()

    e = host().run(deploy).error
    assert isinstance(e, Denied) and e.capability == Capability.secret("DEPLOY_TOKEN")


def test_log_levels_and_fields():
    h = FakeHost()
    with h.installed():
        log.info("checked", files=3, ok=True, missing=None)
        log.warn("slow")
        log.debug("d")
        log.trace("t")
        log.error("e", path="a b")
        log.log("info", "direct", **{"key-with-dash": 1})
        log.progress(2, 5, "two")
        log.progress(1)
        with pytest.raises(ValueError, match="log level `fatal`"):
            log.log("fatal", "x")
    assert [(r.level, r.message) for r in h.logs] == [
        ("info", "checked"), ("warn", "slow"), ("debug", "d"), ("trace", "t"), ("error", "e"), ("info", "direct")]
    assert h.logs[0].fields == {"files": "3", "ok": "true", "missing": "null"}
    assert h.logs[5].fields == {"key-with-dash": "1"}
    assert h.progress_calls == [(2, 5, "two"), (1, None, "")]


def test_python_logging_goes_to_the_stage_log():
    h = FakeHost()
    logger = logging.getLogger("test-stage")
    logger.setLevel(logging.DEBUG)
    handler = log.Handler()
    logger.addHandler(handler)
    try:
        with h.installed():
            logger.warning("disk at %d%%", 91, extra={"disk": "/"})
            logger.debug("details")
    finally:
        logger.removeHandler(handler)
    assert [(r.level, r.message, r.fields) for r in h.logs] == [
        ("warn", "disk at 91%", {"disk": "/"}), ("debug", "details", {})]


def test_cancellation():
    h = FakeHost(cancel_after=2)
    with h.installed():
        assert not cancel.is_cancelled()
        cancel.check()
        with pytest.raises(Cancelled, match="stopped after 2"):
            cancel.check("stopped after 2")
        assert cancel.sleep(5) is False
    h = FakeHost()
    with h.installed():
        assert cancel.sleep(1.5) is True
        h.cancel()
        assert cancel.is_cancelled()
    assert h.slept == 1.5


def test_a_cancelled_loop_fails_the_stage():
    @stage(name="c", version="0.1.0", description="c", export=False)
    def loop(ctx):
        for i in range(10):
            cancel.check(f"cancelled after {i} steps")
        return Report()

    e = FakeHost(cancel_after=3).run(loop).error
    assert isinstance(e, Cancelled) and e.message == "cancelled after 3 steps"
