# SPDX-License-Identifier: Apache-2.0
"""Typed config: a dataclass describes the stage's `with:` block. The SDK
derives its JSON Schema (draft 2020-12, published by `describe`, so the
runner refuses a bad `with:` before the stage starts) and parses the block
into an instance, with errors that name the key:

    @dataclass
    class Config:
        header: str = setting(description="Text every file must contain", min_length=1)
        lines: int = setting(10, description="How many leading lines to search", minimum=1)
        include: list[str] = setting(default_factory=lambda: ["*.py"])
        mode: Literal["warn", "fail"] = "warn"

Keys are the field names with `_` written as `-` (`max_files` is
`max-files:`, sluice's convention for `with:`), or `setting(key=...)`.
Supported types: `str`, `int`, `float`, `bool`, `Optional[T]`, `list[T]`,
`dict[str, T]`, `Literal[...]`, `Enum` subclasses, unions, nested
dataclasses, `Any`, and `values.Duration`/`values.Size`. Unknown keys are refused (`additionalProperties:
false`), with the closest known key as a hint. A field is required when it
has no default. Descriptions come from `setting(description=...)`, or from
a string literal right below the field (an attribute docstring). A
`__post_init__` that raises `ValueError` becomes an `InvalidConfig` error for
that (sub-)block.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import enum
import inspect
import re
import textwrap
import typing
from typing import Any, Dict, List, Optional, Tuple

from .errors import InvalidConfig

#: JSON Schema keywords `setting` accepts (Python name → schema keyword);
#: the parser enforces them too, so native tests see what the runner sees.
_CONSTRAINTS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusive_minimum": "exclusiveMinimum",
    "exclusive_maximum": "exclusiveMaximum",
    "min_length": "minLength",
    "max_length": "maxLength",
    "pattern": "pattern",
    "min_items": "minItems",
    "max_items": "maxItems",
}

_MISSING = dataclasses.MISSING


def setting(
    default: Any = _MISSING,
    *,
    default_factory: Any = _MISSING,
    description: Optional[str] = None,
    key: Optional[str] = None,
    examples: Optional[List[Any]] = None,
    **constraints: Any,
) -> Any:
    """A config field (a `dataclasses.field`) with a description, the key to
    read it from, examples, and JSON Schema constraints: `minimum`,
    `maximum`, `exclusive_minimum`, `exclusive_maximum`, `min_length`,
    `max_length`, `pattern`, `min_items`, `max_items`."""
    unknown = set(constraints) - set(_CONSTRAINTS)
    if unknown:
        raise TypeError(f"setting(): unknown constraint(s) {sorted(unknown)}; known: {sorted(_CONSTRAINTS)}")
    meta: Dict[str, Any] = {}
    if description is not None:
        meta["description"] = description
    if key is not None:
        meta["key"] = key
    if examples is not None:
        meta["examples"] = examples
    meta["schema"] = {_CONSTRAINTS[k]: v for k, v in constraints.items()}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def config_key(f: dataclasses.Field) -> str:
    """The `with:` key of dataclass field `f`."""
    return f.metadata.get("key") or f.name.replace("_", "-")


def _attribute_docs(cls: type) -> Dict[str, str]:
    """Attribute docstrings (a string literal right below a field), read
    from the class source when it is available."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: Dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _class_doc(cls: type) -> Optional[str]:
    doc = cls.__doc__
    # dataclass() writes `Name(field: type, ...)` when there is no docstring.
    if not doc or doc.startswith(cls.__name__ + "("):
        return None
    return inspect.cleandoc(doc)


def _hints(cls: type) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except NameError as e:
        # String annotations (`from __future__ import annotations`) of a
        # class defined inside a function cannot see its local names.
        raise TypeError(
            f"cannot resolve the field types of config class {cls.__name__} ({e}); define it at module level"
        ) from e


def _default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


def _jsonable(v: Any) -> Any:
    if hasattr(type(v), "__sluice_parse__"):
        return str(v) if not isinstance(v, int) else int(v)
    if isinstance(v, enum.Enum):
        return v.value
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {config_key(f): _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def _is_none(t: Any) -> bool:
    return t is type(None)


def _union_args(t: Any) -> Optional[Tuple[Any, ...]]:
    origin = typing.get_origin(t)
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        return typing.get_args(t)
    if type(t).__name__ == "UnionType":  # `A | B` on Python >= 3.10
        return typing.get_args(t)
    return None


def schema_of(t: Any) -> Dict[str, Any]:
    """The JSON Schema of one Python type (see the module docs for the
    supported types). Raises `TypeError` for others."""
    if t is Any or t is object:
        return {}
    if hasattr(t, "__sluice_schema__"):
        return dict(t.__sluice_schema__())
    if t is str:
        return {"type": "string"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return {"enum": [m.value for m in t]}
    if dataclasses.is_dataclass(t):
        return schema_for(t)
    union = _union_args(t)
    if union is not None:
        parts = [schema_of(a) for a in union if not _is_none(a)]
        if any(_is_none(a) for a in union):
            parts.append({"type": "null"})
        return parts[0] if len(parts) == 1 else {"anyOf": parts}
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, List, tuple) or (origin is not None and origin.__name__ in ("Sequence", "List")):
        item = args[0] if args else Any
        return {"type": "array", "items": schema_of(item)}
    if origin in (dict, Dict) or (origin is not None and origin.__name__ in ("Mapping", "Dict")):
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": schema_of(value)}
    raise TypeError(f"config type {t!r} is not supported; use str, int, float, bool, list, dict, Literal, Enum, Optional or a dataclass")


def schema_for(cls: type) -> Dict[str, Any]:
    """The JSON Schema (draft 2020-12) of config dataclass `cls`: an object
    with `additionalProperties: false`, `required` for the fields without
    default, `default`s and `description`s."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass; decorate the config class with @dataclass")
    hints = _hints(cls)
    docs = _attribute_docs(cls)
    props: Dict[str, Any] = {}
    required: List[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        s = dict(schema_of(hints[f.name]))
        s.update(f.metadata.get("schema", {}))
        desc = f.metadata.get("description") or docs.get(f.name)
        if desc:
            s["description"] = desc
        if "examples" in f.metadata:
            s["examples"] = f.metadata["examples"]
        default = _default(f)
        if default is _MISSING:
            required.append(config_key(f))
        elif default is not None:
            s["default"] = _jsonable(default)
        props[config_key(f)] = s
    schema: Dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    doc = _class_doc(cls)
    if doc:
        schema["description"] = doc
    return schema


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"number {v}"
    if isinstance(v, str):
        return f'string "{v}"' if len(v) <= 40 else "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _at(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def _constraints(path: str, value: Any, schema: Dict[str, Any]) -> None:
    def bad(msg: str) -> InvalidConfig:
        return InvalidConfig(f"{path}: {msg}")

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise bad(f"must be at least {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise bad(f"must be at most {schema['maximum']}, got {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise bad(f"must be more than {schema['exclusiveMinimum']}, got {value}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise bad(f"must be less than {schema['exclusiveMaximum']}, got {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise bad("must not be empty" if schema["minLength"] == 1 else f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise bad(f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise bad(f"`{value}` does not match the pattern `{schema['pattern']}`")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise bad(f"needs at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise bad(f"takes at most {schema['maxItems']} item(s)")


def _describe(t: Any) -> str:
    """How to write a value of type `t`, for error messages."""
    if hasattr(t, "__sluice_parse__"):
        return f"a {t.__name__.lower()}"
    if t is str:
        return "a string"
    if t is bool:
        return "true or false"
    if t is int:
        return "an integer"
    if t is float:
        return "a number"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in t)
    if dataclasses.is_dataclass(t):
        return "a mapping"
    union = _union_args(t)
    if union is not None:
        return " or ".join(_describe(a) if not _is_none(a) else "null" for a in union)
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (dict, Dict):
        return "a mapping"
    if origin is not None and typing.get_origin(t) is not None and schema_of(t).get("type") == "array":
        return "a list"
    return "any value"


def convert(path: str, value: Any, t: Any) -> Any:
    """Converts the JSON `value` found at `path` (`with.lines`) to type `t`,
    or raises `InvalidConfig` naming `path`."""

    def wrong() -> InvalidConfig:
        return InvalidConfig(f"{path}: expected {_describe(t)}, got {_kind(value)}")

    if t is Any or t is object:
        return value
    if hasattr(t, "__sluice_parse__"):
        try:
            return t.__sluice_parse__(value)
        except ValueError as e:
            raise InvalidConfig(f"{path}: {e}") from None
    if t is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise wrong()
        return value
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if t is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if isinstance(t, type) and issubclass(t, enum.Enum):
        for m in t:
            if m.value == value:
                return m
        raise wrong()
    if dataclasses.is_dataclass(t):
        return parse(t, value, path)
    union = _union_args(t)
    if union is not None:
        if value is None:
            if any(_is_none(a) for a in union):
                return None
            raise wrong()
        errors = []
        for a in union:
            if _is_none(a):
                continue
            try:
                return convert(path, value, a)
            except InvalidConfig as e:
                errors.append(e)
        # One candidate: its own message is the most precise.
        if len(errors) == 1:
            raise errors[0]
        raise wrong()
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        # `True == 1` in Python: compare types too.
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise wrong()
    kind = schema_of(t).get("type")
    if kind == "array":
        if not isinstance(value, list):
            raise wrong()
        item = args[0] if args else Any
        items = [convert(_at(path, i), v, item) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if kind == "object":
        if not isinstance(value, dict):
            raise wrong()
        vt = args[1] if len(args) == 2 else Any
        return {k: convert(_at(path, k), v, vt) for k, v in value.items()}
    raise TypeError(f"config type {t!r} is not supported")


def parse(cls: type, data: Any, path: str = "with") -> Any:
    """Builds an instance of config dataclass `cls` from the parsed JSON
    `data`, or raises `InvalidConfig` naming the key (`with.lines: expected
    an integer, got string "ten"`, `with.headr: unknown key; did you mean
    `header`?`, `with.header: required (Text every file must contain)`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidConfig(f"{path}: expected a mapping, got {_kind(data)}")
    hints = _hints(cls)
    docs = _attribute_docs(cls)
    fields = {config_key(f): f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "known keys: " + ", ".join(f"`{k}`" for k in fields)
            raise InvalidConfig(f"{_at(path, key)}: unknown key; {hint}")
    kwargs: Dict[str, Any] = {}
    for key, f in fields.items():
        where = _at(path, key)
        if key not in data:
            if _default(f) is _MISSING:
                desc = f.metadata.get("description") or docs.get(f.name)
                raise InvalidConfig(f"{where}: required" + (f" ({desc})" if desc else ""))
            continue
        value = convert(where, data[key], hints[f.name])
        _constraints(where, data[key], f.metadata.get("schema", {}))
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except InvalidConfig:
        raise
    except (ValueError, TypeError) as e:
        raise InvalidConfig(f"{path}: {e}") from e
