# SPDX-License-Identifier: Apache-2.0
"""A probe stage for tests/test_component.py: exercises exec, secrets,
logging and cancellation inside a real component."""

from dataclasses import dataclass
from typing import Literal

from sluice_stage import Capability, Denied, ExecFailed, NotFound, Report, cancel, exec, log, secrets, stage


@dataclass
class Config:
    mode: Literal["probe", "wait", "crash"] = "probe"


@stage(name="sdk-probe", version="0.0.1", description="Exercises the SDK's host calls.", config=Config,
       capabilities=[Capability.exec("sh"), Capability.secret("TOKEN")])
def run(ctx):
    if ctx.config.mode == "wait":
        log.info("waiting to be cancelled")
        while cancel.sleep(0.1):
            pass
        log.warn("cancelled, cleaning up", attempt=ctx.attempt)
        return Report("cancelled")
    if ctx.config.mode == "crash":
        return 1 // 0
    r = Report("probe")
    r.output("echo", exec.run("echo", ["hello", "world"], check=True).stdout_text.strip())
    r.output("sorted", exec.run("sort", input="b\nc\na\n").stdout_text.replace("\n", ","))
    out = exec.run("sh", ["-c", "echo to-log >&2; echo tee-out"], stdout=exec.TEE, stderr=exec.LOG)
    r.output("tee", out.stdout_text.strip())
    with exec.spawn("sh", ["-c", "for i in 1 2 3; do echo line$i; done"], stdout=exec.PIPE) as p:
        r.output("lines", "|".join(p.lines()))
        r.output("status", str(p.wait()))
    try:
        exec.run("sh", ["-c", "echo boom >&2; exit 3"], check=True)
    except ExecFailed as e:
        r.output("failed", f"{e.code}:{e.stderr.strip()}")
    try:
        exec.run("curl")
    except Denied as e:
        r.output("denied", e.capability.grant())
    try:
        exec.run("definitely-not-installed-xyz")
    except NotFound as e:
        r.output("not-found", e.what)
    try:
        secrets.get("NOPE")
    except Denied as e:
        r.output("secret-denied", e.capability.grant())
    r.output("token-length", len(secrets.get("TOKEN")))
    log.info("probe done", outputs=len(r.outputs))
    return r
