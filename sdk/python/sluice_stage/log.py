# SPDX-License-Identifier: Apache-2.0
"""Logging with levels and fields, and progress, on the WIT `log` interface.

    from sluice_stage import log
    log.info("checked the files", checked=12, missing=1)
    log.progress(3, 12, "checking src/app.py")

Each call is one record in the stage log: the console shows `info` and
above (`--verbose`: all) as `message key=value`, `--json` emits a
`stage_log` event with the level and the fields as data. Field values are
converted with `str` (`True` → `true`, `None` → `null`). Everything is
redacted of the run's secrets.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

from . import _host

#: The levels, lowest first.
LEVELS = ("trace", "debug", "info", "warn", "error")


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def fields_of(fields: dict) -> List[Tuple[str, str]]:
    """The key/value pairs sent for `fields`, in order, values as text."""
    return [(str(k), _text(v)) for k, v in fields.items()]


def log(level: str, message: str, **fields: Any) -> None:
    """Writes one record at `level` (`trace`, `debug`, `info`, `warn`,
    `error`). Raises `ValueError` for another level."""
    if level not in LEVELS:
        raise ValueError(f"log level `{level}` is not one of {', '.join(LEVELS)}")
    _host.host().log(level, str(message), fields_of(fields))


def trace(message: str, **fields: Any) -> None:
    """A `trace` record (shown only with `--verbose`)."""
    log("trace", message, **fields)


def debug(message: str, **fields: Any) -> None:
    """A `debug` record (shown only with `--verbose`)."""
    log("debug", message, **fields)


def info(message: str, **fields: Any) -> None:
    """An `info` record."""
    log("info", message, **fields)


def warn(message: str, **fields: Any) -> None:
    """A `warn` record."""
    log("warn", message, **fields)


def error(message: str, **fields: Any) -> None:
    """An `error` record (it does not fail the stage; raise for that)."""
    log("error", message, **fields)


def progress(done: int, total: Optional[int] = None, message: str = "") -> None:
    """Says how far the stage has got: `done` of `total` units (`None` when
    unknown). The console shows the latest next to the stage's time."""
    _host.host().progress(max(0, int(done)), None if total is None else max(0, int(total)), message)


class Handler(logging.Handler):
    """A `logging.Handler` that sends Python `logging` records to the stage
    log (`logging.getLogger().addHandler(log.Handler())`); `extra=` items
    that are not standard record attributes become fields."""

    _STANDARD = set(vars(logging.makeLogRecord({})))

    def emit(self, record: logging.LogRecord) -> None:
        """Sends one record."""
        level = (
            "error" if record.levelno >= logging.ERROR
            else "warn" if record.levelno >= logging.WARNING
            else "info" if record.levelno >= logging.INFO
            else "debug" if record.levelno >= logging.DEBUG
            else "trace"
        )
        extra = {k: v for k, v in vars(record).items() if k not in self._STANDARD and k != "message"}
        log(level, record.getMessage(), **extra)
