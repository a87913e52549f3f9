# SPDX-License-Identifier: Apache-2.0
"""Cancellation. The runner cancels a stage under fail-fast, on
SIGINT/SIGTERM and at its deadline; the stage then has `ctx.grace_period`
to put things back and return.

    for path in files:
        cancel.check()          # raises Cancelled once the stage is cancelled
        ...
    if not cancel.sleep(30):    # False: cancelled while waiting
        restore_traffic()
"""

from __future__ import annotations

from . import _host
from .errors import Cancelled


def is_cancelled() -> bool:
    """Whether the stage has been cancelled. Cheap; call it between units
    of work."""
    return _host.host().is_cancelled()


def check(message: str = "the stage was cancelled") -> None:
    """Raises `Cancelled` (a `Failed`) when the stage has been cancelled."""
    if is_cancelled():
        raise Cancelled(message)


def sleep(seconds: float) -> bool:
    """Waits `seconds`, or less when the stage is cancelled meanwhile.
    Returns True when it slept the whole time, False when cancelled (also
    when it was cancelled already)."""
    return _host.host().sleep(max(0.0, float(seconds)))
