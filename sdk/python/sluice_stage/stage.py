# SPDX-License-Identifier: Apache-2.0
"""`@stage`: turns a function into a sluice stage (the `plugin` export).

    @stage(name="license-check", version="0.2.0", kind="lint",
           description="Checks that source files carry a license header.",
           config=Config, capabilities=[Capability.workspace_read()])
    def run(ctx: Context[Config]) -> Report:
        ...

The decorator also defines `Plugin` in the function's module: the class
componentize-py exports for the world's `plugin` interface (`describe`,
`run`), so `componentize-py -w stage componentize app` finds it. Its `run`
parses the `with:` block into the config dataclass (`InvalidConfig` naming
the key when it does not fit), calls the function, checks the report with
the runner's rules, adds the artifacts written with `ctx.write_artifact`,
and turns exceptions into the WIT `stage-error`: `StageError`s keep their
type; any other exception fails the stage with its type and message (its
traceback goes to the stage log).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import config as _config
from .context import Context, RunInfo, load_json
from .errors import Failed, StageError
from .report import Report
from .types import Capability, kind_word


@dataclass
class PluginInfo:
    """What a plugin says about itself (`describe`)."""

    #: Short name (`license-check`).
    name: str
    #: The plugin's version (semver).
    version: str
    #: `lint`, `test`, `scan`, `build`, `deploy`, `smoke`, `canary`,
    #: `monitor`, `remediate` or a custom word.
    kind: str
    #: One sentence on what the stage does.
    description: str
    #: JSON Schema of `with:`, as text, if published.
    config_schema: Optional[str] = None
    #: Capabilities the stage may use.
    capabilities: List[Capability] = field(default_factory=list)


class Stage:
    """A stage made by `@stage`: its `PluginInfo`, its config class and its
    function. Call it like the function; `execute` runs it the way the
    runner does."""

    def __init__(self, fn: Callable[[Context], Report], info: PluginInfo, config: Optional[type]) -> None:
        self.fn = fn
        #: What `describe` returns.
        self.info = info
        #: The config dataclass, if any.
        self.config = config
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "run")
        self.__module__ = fn.__module__

    def __call__(self, ctx: Context) -> Report:
        return self.fn(ctx)

    def parse_config(self, config_json: str) -> Any:
        """The parsed config (`InvalidConfig` naming the key when it does
        not fit)."""
        data = load_json(config_json)
        if self.config is None:
            return data
        return _config.parse(self.config, data)

    def execute(self, info: RunInfo) -> Report:
        """Runs the stage as the runner does and returns the finished
        report, or raises a `StageError` (any other exception becomes
        `Failed` with its type and message)."""
        try:
            ctx = Context(info, self.parse_config(info.config_json))
            report = self.fn(ctx)
            if not isinstance(report, Report):
                raise Failed(f"the stage function returned {type(report).__name__}, not a sluice_stage.Report")
            described = {a.path for a in report.artifacts}
            report.artifacts.extend(a for a in ctx.declared_artifacts if a.path not in described)
            try:
                report.check()
            except ValueError as e:
                raise Failed(f"the report breaks a runner rule: {e}") from None
            return report
        except StageError:
            raise
        except Exception as e:  # the stage's own bug: fail with what happened
            raise _unexpected(e) from e


def _unexpected(e: BaseException) -> Failed:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno} in {tb[-1].name})" if tb else ""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    print(text, file=sys.stderr, end="")
    msg = str(e)
    return Failed(f"{type(e).__name__}{': ' + msg if msg else ''}{where}")


def stage(
    *,
    name: str,
    version: str,
    description: str,
    kind: str = "custom",
    config: Optional[type] = None,
    capabilities: Sequence[Capability] = (),
    schema: Optional[Dict[str, Any]] = None,
    export: bool = True,
) -> Callable[[Callable[[Context], Report]], Stage]:
    """Declares a stage. `config` is a dataclass for the `with:` block (its
    JSON Schema is published; `schema=` overrides it); `capabilities` are
    what the stage may use. With `export` (the default) the decorator
    defines `Plugin`, the exported class, in the function's module."""
    kind_word(kind)

    def wrap(fn: Callable[[Context], Report]) -> Stage:
        published = schema if schema is not None else (_config.schema_for(config) if config is not None else None)
        if published is not None:
            published = {"$schema": "https://json-schema.org/draft/2020-12/schema", **published}
        info = PluginInfo(
            name, version, kind, description,
            None if published is None else json.dumps(published),
            list(capabilities),
        )
        s = Stage(fn, info, config)
        if export:
            module = sys.modules.get(fn.__module__)
            if module is not None:
                setattr(module, "Plugin", plugin_class(s))
        return s

    return wrap


def plugin_class(s: Stage) -> type:
    """The class componentize-py exports for stage `s` (`describe`/`run` on
    the WIT types). `@stage` defines it as `Plugin` already."""

    # componentize-py keeps only the modules imported while it builds (it
    # snapshots the interpreter), so the WIT adapter is imported now when
    # the bindings are there; natively (tests) there are none.
    wit = importlib.import_module(f"{__package__}._wit") if importlib.util.find_spec("wit_world") else None

    class Plugin:
        """The `sluice:stage/plugin@0.2.0` export."""

        def describe(self) -> Any:
            """WIT `describe`."""
            return _adapter(wit).plugin_info(s.info)

        def run(self, ctx: Any) -> Any:
            """WIT `run`: raises `componentize_py_types.Err(stage-error)`."""
            return _adapter(wit).run(s, ctx)

    return Plugin


def _adapter(wit: Any) -> Any:
    if wit is None:
        raise RuntimeError("the WIT bindings (wit_world) are not there: build the stage with componentize-py")
    return wit
