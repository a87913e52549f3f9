# SPDX-License-Identifier: Apache-2.0
"""Config dataclasses: the JSON Schema they publish and how `with:` blocks
are parsed, with errors that name the key."""

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Union

import pytest

from sluice_stage import InvalidConfig, schema_for, setting
from sluice_stage.config import parse


class Mode(enum.Enum):
    WARN = "warn"
    FAIL = "fail"


@dataclass
class Budget:
    """One size budget."""

    path: str
    max_bytes: int = setting(description="Largest total size", minimum=0)


@dataclass
class Config:
    """The check's settings."""

    header: str = setting(description="Text every file must contain", min_length=1)
    lines: int = setting(10, minimum=1)
    """How many leading lines to search"""
    include: List[str] = field(default_factory=lambda: ["*.py"])
    mode: Mode = Mode.WARN
    level: Literal["note", "warning", "error"] = "warning"
    ratio: float = 0.5
    required: bool = False
    budgets: List[Budget] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)
    limit: Optional[int] = None
    one_or_many: Union[str, List[str]] = "x"
    extra: Any = None
    renamed: str = setting("", key="old_name")
    plain: str = field(default="", metadata={"description": "From dataclasses.field"})


def err(data) -> str:
    with pytest.raises(InvalidConfig) as e:
        parse(Config, data)
    return e.value.message


def test_schema_has_types_required_defaults_and_descriptions():
    s = schema_for(Config)
    assert s["type"] == "object"
    assert s["additionalProperties"] is False
    assert s["required"] == ["header"]
    assert s["description"] == "The check's settings."
    p = s["properties"]
    assert p["header"] == {"type": "string", "minLength": 1, "description": "Text every file must contain"}
    # An attribute docstring is a description too.
    assert p["lines"] == {"type": "integer", "minimum": 1, "default": 10, "description": "How many leading lines to search"}
    assert p["include"] == {"type": "array", "items": {"type": "string"}, "default": ["*.py"]}
    assert p["mode"] == {"enum": ["warn", "fail"], "default": "warn"}
    assert p["level"] == {"enum": ["note", "warning", "error"], "default": "warning"}
    assert p["ratio"] == {"type": "number", "default": 0.5}
    assert p["required"] == {"type": "boolean", "default": False}
    assert p["labels"] == {"type": "object", "additionalProperties": {"type": "string"}, "default": {}}
    assert p["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert p["one-or-many"]["anyOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    assert p["extra"] == {}
    assert p["plain"] == {"type": "string", "default": "", "description": "From dataclasses.field"}
    # Keys are kebab-case unless set.
    assert "old_name" in p and "renamed" not in p
    nested = p["budgets"]["items"]
    assert nested["additionalProperties"] is False
    assert nested["required"] == ["path", "max-bytes"]
    assert nested["properties"]["max-bytes"] == {"type": "integer", "minimum": 0, "description": "Largest total size"}
    assert nested["description"] == "One size budget."


def test_parses_a_full_block():
    c = parse(Config, {
        "header": "SPDX", "lines": 3, "include": ["a", "b"], "mode": "fail", "level": "error",
        "ratio": 1, "required": True, "budgets": [{"path": "dist/*", "max-bytes": 10}],
        "labels": {"a": "b"}, "limit": None, "one-or-many": ["x", "y"], "extra": {"any": [1]}, "old_name": "n",
    })
    assert c.lines == 3 and c.mode is Mode.FAIL and c.level == "error"
    assert c.ratio == 1.0 and isinstance(c.ratio, float)
    assert c.budgets == [Budget("dist/*", 10)]
    assert c.one_or_many == ["x", "y"] and c.extra == {"any": [1]} and c.renamed == "n"


def test_defaults_apply_and_are_not_shared():
    a, b = parse(Config, {"header": "h"}), parse(Config, {"header": "h"})
    assert a.lines == 10 and a.include == ["*.py"] and a.mode is Mode.WARN
    a.include.append("x")
    assert b.include == ["*.py"]


def test_missing_required_key_names_it_with_its_description():
    assert err({}) == "with.header: required (Text every file must contain)"
    assert err({"header": "h", "budgets": [{"path": "p"}]}) == "with.budgets[0].max-bytes: required (Largest total size)"


@pytest.mark.parametrize("data, message", [
    ({"header": 1}, 'with.header: expected a string, got number 1'),
    ({"header": "h", "lines": "ten"}, 'with.lines: expected an integer, got string "ten"'),
    ({"header": "h", "lines": True}, "with.lines: expected an integer, got boolean true"),
    ({"header": "h", "lines": 1.5}, "with.lines: expected an integer, got number 1.5"),
    ({"header": "h", "required": "yes"}, 'with.required: expected true or false, got string "yes"'),
    ({"header": "h", "ratio": "1"}, 'with.ratio: expected a number, got string "1"'),
    ({"header": "h", "include": "*.py"}, 'with.include: expected a list, got string "*.py"'),
    ({"header": "h", "include": ["a", 2]}, "with.include[1]: expected a string, got number 2"),
    ({"header": "h", "mode": "loud"}, 'with.mode: expected one of `warn`, `fail`, got string "loud"'),
    ({"header": "h", "level": "fatal"}, 'with.level: expected one of `note`, `warning`, `error`, got string "fatal"'),
    ({"header": "h", "labels": {"a": 1}}, "with.labels.a: expected a string, got number 1"),
    ({"header": "h", "budgets": [{"path": "p", "max-bytes": "lots"}]},
     'with.budgets[0].max-bytes: expected an integer, got string "lots"'),
    ({"header": "h", "budgets": {"path": "p"}}, "with.budgets: expected a list, got a mapping"),
    ({"header": "h", "limit": "3"}, 'with.limit: expected an integer, got string "3"'),
    ({"header": "h", "one-or-many": 3}, "with.one-or-many: expected a string or a list, got number 3"),
])
def test_wrong_types_name_the_key_and_what_was_found(data, message):
    assert err(data) == message


def test_unknown_keys_are_refused_with_the_closest_key():
    assert err({"header": "h", "headr": 1}) == "with.headr: unknown key; did you mean `header`?"
    # snake_case for a kebab-case key
    assert err({"header": "h", "one_or_many": "x"}) == "with.one_or_many: unknown key; did you mean `one-or-many`?"
    assert err({"header": "h", "budgets": [{"path": "p", "max-bytes": 1, "min": 2}]}).startswith(
        "with.budgets[0].min: unknown key; known keys: `path`, `max-bytes`")


def test_constraints_are_enforced_like_the_schema():
    assert err({"header": ""}) == "with.header: must not be empty"
    assert err({"header": "h", "lines": 0}) == "with.lines: must be at least 1, got 0"
    assert err({"header": "h", "budgets": [{"path": "p", "max-bytes": -1}]}) == \
        "with.budgets[0].max-bytes: must be at least 0, got -1"


def test_the_block_must_be_a_mapping():
    assert err(["header"]) == "with: expected a mapping, got a list"
    with pytest.raises(InvalidConfig, match='with.b: expected a mapping, got string "x"'):
        parse(Budget, "x", "with.b")


def test_post_init_value_errors_become_invalid_config():
    @dataclass
    class Window:
        low: int
        high: int

        def __post_init__(self):
            if self.low > self.high:
                raise ValueError("`low` must not be above `high`")

    with pytest.raises(InvalidConfig) as e:
        parse(Window, {"low": 3, "high": 1})
    assert e.value.message == "with: `low` must not be above `high`"


def test_unsupported_types_and_non_dataclasses_are_refused_when_declared():
    @dataclass
    class Bad:
        when: complex = 1j

    with pytest.raises(TypeError, match="not supported"):
        schema_for(Bad)
    with pytest.raises(TypeError, match="not a dataclass"):
        schema_for(dict)
    with pytest.raises(TypeError, match="unknown constraint"):
        setting(1, minimun=0)


def test_unresolvable_string_annotations_say_where_to_define_the_class():
    @dataclass
    class Local:
        value: "NotDefinedAnywhere"  # noqa: F821

    with pytest.raises(TypeError, match="define it at module level"):
        schema_for(Local)
