# SPDX-License-Identifier: Apache-2.0
"""Config values that read like the pipeline file's (docs/values.md):
durations and sizes. Use them as config field types:

    @dataclass
    class Config:
        interval: Duration = Duration.parse("30s")
        max_file_size: Size = Size.parse("1MiB")

`Duration` refuses a number without a unit (`600`: seconds or minutes?) and
months/years (`10M`), with the runner's hints; `Size` takes bytes or a
number with a decimal (`KB`, `MB`…) or binary (`KiB`, `MiB`…) unit.

A type becomes a config type by having `__sluice_schema__()` (its JSON
Schema) and `__sluice_parse__(value)` (raising `ValueError` with the
message) class methods; the SDK's config parser puts the key in front.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Dict

_DURATION_UNITS = {
    **dict.fromkeys(("ns", "nsec", "nanos"), 1e-9),
    **dict.fromkeys(("us", "µs", "usec"), 1e-6),
    **dict.fromkeys(("ms", "msec", "millis"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 604800.0),
}
_MONTHS_OR_YEARS = {"M", "month", "months", "y", "yr", "yrs", "year", "years"}
_DURATION_HINT = "write a number followed by a unit, e.g. `90s`, `10m`, `1h30m` or `500ms` (units: ms, s, m, h, d)"
_COMPONENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-zµ]*)")


class Duration(_dt.timedelta):
    """A duration written as in the pipeline file: `90s`, `10m`, `1h30m`,
    `1.5h`, `500ms`, `2d`. A `datetime.timedelta`."""

    @classmethod
    def parse(cls, text: Any) -> "Duration":
        """Parses `text`, or raises `ValueError` naming it with a hint."""
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ValueError(f"expected a duration such as `90s`, got {type(text).__name__}")
        value = str(text).strip()
        if not value:
            raise ValueError(f"the duration is empty; {_DURATION_HINT}")
        if re.fullmatch(r"\d+(\.\d+)?", value):
            raise ValueError(f"`{value}` has no unit; write `{value}s` for seconds or `{value}m` for minutes")
        seconds, pos = 0.0, 0
        while pos < len(value):
            m = _COMPONENT.match(value, pos)
            if not m or m.end() == pos:
                rest = value[pos:].strip()
                word = rest.split()[0] if rest.split() else rest
                problem = f"expected a number before `{word}`" if word[:1].isalpha() else f"unexpected `{rest[:1]}`"
                raise ValueError(f"`{value}` is not a duration: {problem}; {_DURATION_HINT}")
            number, unit = m.group(1), m.group(2)
            if not unit:
                raise ValueError(f"`{value}` is not a duration: `{number}` has no unit; {_DURATION_HINT}")
            if unit in _MONTHS_OR_YEARS:
                raise ValueError(
                    f"`{value}` uses `{unit}` (months or years); write `m` for minutes; "
                    "timeouts longer than days are not supported"
                )
            if unit not in _DURATION_UNITS:
                raise ValueError(f"`{value}` is not a duration: unknown unit `{unit}`; {_DURATION_HINT}")
            seconds += float(number) * _DURATION_UNITS[unit]
            pos = m.end()
        return cls(seconds=seconds)

    @classmethod
    def __sluice_schema__(cls) -> Dict[str, Any]:
        """The JSON Schema of a duration in `with:`."""
        return {"type": "string", "examples": ["90s", "10m", "1h30m"]}

    @classmethod
    def __sluice_parse__(cls, value: Any) -> "Duration":
        """`parse`, for the config parser."""
        return cls.parse(value)

    def __str__(self) -> str:
        """The canonical form: `1h30m`, `1s500ms`, `0s`."""
        total = round(self.total_seconds() * 1000)
        parts = []
        for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
            if total >= ms:
                parts.append(f"{total // ms}{unit}")
                total %= ms
        return "".join(parts) or "0s"


_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5, "e": 1000**6,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "pi": 1024**5, "ei": 1024**6}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


class Size(int):
    """A size in bytes written as in the pipeline file: `1048576`, `512KB`
    (512 000), `256MiB`, `1.5GiB`, `1G` (units case-insensitive, `B`
    optional). An `int`."""

    @classmethod
    def parse(cls, text: Any) -> "Size":
        """Parses `text` (or a whole number of bytes), or raises
        `ValueError` naming it."""
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise ValueError(f"expected a size such as `512KiB`, got {type(text).__name__}")
        if isinstance(text, int):
            if text < 0:
                raise ValueError(f"`{text}` is negative; a size is a number of bytes")
            return cls(text)
        value = text.strip()
        m = _SIZE.fullmatch(value)
        unit = m.group(2).lower() if m else ""
        unit = unit[:-1] if unit.endswith("b") else unit
        if not m or unit not in _SIZE_UNITS:
            raise ValueError(
                f"`{value}` is not a size; write bytes or a number with a unit, e.g. `512KB`, `256MiB`, `1.5GiB`"
            )
        return cls(round(float(m.group(1)) * _SIZE_UNITS[unit]))

    @classmethod
    def __sluice_schema__(cls) -> Dict[str, Any]:
        """The JSON Schema of a size in `with:`."""
        return {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}], "examples": ["512KiB", "10MB"]}

    @classmethod
    def __sluice_parse__(cls, value: Any) -> "Size":
        """`parse`, for the config parser."""
        return cls.parse(value)
