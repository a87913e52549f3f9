# SPDX-License-Identifier: Apache-2.0
"""Secrets granted to the stage (`grants.secrets`). Every secret value the
run knows is redacted from all logs.

    token = secrets.get("DEPLOY_TOKEN")   # Denied / NotFound otherwise
"""

from __future__ import annotations

from typing import Optional

from . import _host
from .errors import Denied, Failed, NotFound
from .types import Capability


def get(name: str) -> str:
    """The value of secret `name`. Raises `Denied(Capability.secret(name))`
    when it is not in the stage's `grants.secrets` (the runner names the
    grant to add) and `NotFound` when it is granted but has no value."""
    try:
        return _host.host().secret(name)
    except _host.HostError as e:
        if e.code == "denied":
            raise Denied(Capability.secret(name)) from None
        if e.code == "not-found":
            raise NotFound(name, f"secret `{name}` is granted but the runner has no value for it: {e.message}") from None
        raise Failed(f"secret `{name}`: {e.message}") from None


def get_optional(name: str) -> Optional[str]:
    """Like `get`, but `None` when the granted secret has no value; a
    secret that is not granted still raises `Denied`."""
    try:
        return get(name)
    except NotFound:
        return None
