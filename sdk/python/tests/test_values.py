# SPDX-License-Identifier: Apache-2.0
"""Durations and sizes in config, read like the pipeline file's."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import pytest

from sluice_stage import InvalidConfig, schema_for
from sluice_stage.config import parse
from sluice_stage.values import Duration, Size


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1h 30m", 5400), ("1.5h", 5400), ("500ms", 0.5),
    ("2d", 172800), ("1w", 604800), (" 5 minutes ", 300), ("250us", 0.00025),
])
def test_durations(text, seconds):
    assert Duration.parse(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text, message", [
    ("600", "`600` has no unit; write `600s` for seconds or `600m` for minutes"),
    (600, "`600` has no unit; write `600s` for seconds or `600m` for minutes"),
    ("10M", "`10M` uses `M` (months or years); write `m` for minutes"),
    ("1h30", "`1h30` is not a duration: `30` has no unit"),
    ("10x", "`10x` is not a duration: unknown unit `x`"),
    ("-5s", "`-5s` is not a duration: unexpected `-`"),
    ("10m please", "`10m please` is not a duration: expected a number before `please`"),
    ("", "the duration is empty"),
    (True, "expected a duration such as `90s`, got bool"),
])
def test_bad_durations_say_how_to_write_them(text, message):
    with pytest.raises(ValueError) as e:
        Duration.parse(text)
    assert str(e.value).startswith(message)


def test_canonical_duration_text():
    assert [str(Duration.parse(t)) for t in ("90s", "1.5h", "1500ms", "0s", "1w")] == \
        ["1m30s", "1h30m", "1s500ms", "0s", "7d"]


@pytest.mark.parametrize("text, size", [
    (1048576, 1048576), ("1048576", 1048576), ("512KB", 512000), ("256MiB", 268435456),
    ("1.5GiB", 1610612736), ("1G", 10**9), ("512kb", 512000), ("256Mi", 268435456), ("10 B", 10),
])
def test_sizes(text, size):
    assert Size.parse(text) == size


@pytest.mark.parametrize("text", ["lots", "10XB", "-1", -1, "1.2.3MB", 1.5])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        Size.parse(text)


@dataclass
class Config:
    interval: Duration = Duration.parse("30s")
    max_file_size: Size = Size.parse("1MiB")
    timeout: Optional[Duration] = None


def test_values_as_config_fields():
    s = schema_for(Config)["properties"]
    assert s["interval"]["type"] == "string" and s["interval"]["default"] == "30s"
    assert s["max-file-size"]["default"] == 1048576
    c = parse(Config, {"interval": "1h30m", "max-file-size": "2KiB", "timeout": "10s"})
    assert c.interval == timedelta(hours=1, minutes=30) and c.max_file_size == 2048
    assert c.timeout == timedelta(seconds=10)
    with pytest.raises(InvalidConfig) as e:
        parse(Config, {"interval": 600})
    assert e.value.message == "with.interval: `600` has no unit; write `600s` for seconds or `600m` for minutes"
    with pytest.raises(InvalidConfig) as e:
        parse(Config, {"max-file-size": "lots"})
    assert e.value.message.startswith("with.max-file-size: `lots` is not a size")
    with pytest.raises(InvalidConfig) as e:
        parse(Config, {"timeout": "10M"})
    assert e.value.message.startswith("with.timeout: `10M` uses `M`")
