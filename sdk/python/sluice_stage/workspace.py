# SPDX-License-Identifier: Apache-2.0
"""Finding files in the workspace by glob, with include/exclude lists, and
telling the files a command wrote from the ones that were there before
(as the Rust SDK's `sluice_sdk::workspace`).

Patterns are relative to the workspace root, `/`-separated: `*` and `?`
never cross a `/`, `**` does (`src/**/*.py` matches `src/a.py` and
`src/x/y/b.py`), `[abc]` is a character class. A pattern without a `/`
matches a file's name in any directory (`*.py`, as in `.gitignore`).

    for f in workspace.files(ctx.workspace, include=["src/**/*.py"], exclude=["src/vendor/**"]):
        text = f.path.read_text()
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import Failed, InvalidConfig

#: Directories `files` skips unless told otherwise: version control, the
#: runner's state, dependency and build caches.
DEFAULT_SKIP_DIRS = (".git", ".hg", ".svn", ".sluice", "node_modules", "target", "__pycache__", ".venv", "venv")


@dataclass(frozen=True)
class Found:
    """A file a pattern matched."""

    #: Path relative to the workspace root, `/`-separated.
    rel: str
    #: Full path.
    path: Path


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> "re.Pattern[str]":
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if j < 0:
                raise ValueError("unclosed `[`")
            body = pattern[i + 1 : j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def check_pattern(key: str, pattern: str) -> None:
    """Raises `InvalidConfig` naming config key `key` unless `pattern` is a
    valid glob relative to the workspace that cannot leave it."""
    if not pattern.strip():
        raise InvalidConfig(f"{key}: empty; give a path or glob relative to the workspace, e.g. `reports/*.xml`")
    parts = PurePosixPath(pattern).parts
    if pattern.startswith("/") or ".." in parts:
        raise InvalidConfig(
            f"{key}: `{pattern}` must be relative to the workspace and must not contain `..`; "
            "write it as seen from the workspace root, e.g. `dist/app.tar.gz` or `reports/*.xml`"
        )
    try:
        _regex(pattern)
    except ValueError as e:
        raise InvalidConfig(f"{key}: `{pattern}` is not a valid glob ({e}); escape `[` as `[[]`") from None


def matches(rel: str, pattern: str) -> bool:
    """Whether workspace-relative path `rel` matches `pattern` (a pattern
    without `/` is matched against the file name)."""
    pattern = pattern[2:] if pattern.startswith("./") else pattern
    if "/" not in pattern:
        return bool(_regex(pattern).match(rel.rsplit("/", 1)[-1]))
    return bool(_regex(pattern).match(rel))


def matches_any(rel: str, patterns: Iterable[str]) -> bool:
    """Whether `rel` matches one of `patterns`."""
    return any(matches(rel, p) for p in patterns)


def walk(root: Union[str, Path], skip_dirs: Sequence[str] = DEFAULT_SKIP_DIRS) -> Iterator[Found]:
    """Every regular file under `root` (each directory's files sorted), skipping the
    directories named in `skip_dirs`. Unreadable directories are skipped,
    as a shell glob would."""
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        base = Path(dirpath)
        for name in sorted(filenames):
            full = base / name
            if full.is_file():
                yield Found(full.relative_to(root).as_posix(), full)


def files(
    root: Union[str, Path],
    include: Sequence[str] = ("**",),
    exclude: Sequence[str] = (),
    *,
    skip_dirs: Sequence[str] = DEFAULT_SKIP_DIRS,
    key: str = "with",
) -> List[Found]:
    """The files under `root` that match one of `include` and none of
    `exclude`, sorted by path. Patterns are checked first (`check_pattern`,
    errors naming `key.include[i]` / `key.exclude[i]`). Raises
    `Failed` when `root` cannot be read."""
    for name, pats in (("include", include), ("exclude", exclude)):
        for i, p in enumerate(pats):
            check_pattern(f"{key}.{name}[{i}]", p)
    if not Path(root).is_dir():
        raise Failed(f"{root} is not a directory")
    try:
        found = [f for f in walk(root, skip_dirs) if matches_any(f.rel, include) and not matches_any(f.rel, exclude)]
    except OSError as e:
        raise Failed(f"reading {root}: {e}") from e
    return sorted(found, key=lambda f: f.rel)


def find(root: Union[str, Path], pattern: str) -> List[Found]:
    """The regular files under `root` matching one `pattern` (checked with
    `check_pattern`), sorted by path; no directory is skipped."""
    return files(root, [pattern], skip_dirs=(), key="pattern")


Stamp = Tuple[float, int]


class Snapshot:
    """The files some patterns matched at one moment, with their stamps
    (modification time and size): take one before running a tool, then ask
    which files it wrote or changed."""

    def __init__(self, root: Union[str, Path], stamps: Dict[str, Stamp]) -> None:
        self.root = Path(root)
        self._stamps = stamps

    @classmethod
    def take(cls, root: Union[str, Path], patterns: Sequence[str] = ("**",)) -> "Snapshot":
        """Records every file under `root` that one of `patterns` matches."""
        stamps: Dict[str, Stamp] = {}
        for f in files(root, patterns, skip_dirs=(), key="pattern"):
            s = _stamp(f.path)
            if s is not None:
                stamps[f.rel] = s
        return cls(root, stamps)

    def is_fresh(self, rel: str) -> bool:
        """True when `rel` (relative to the root) is new or changed since
        the snapshot was taken."""
        now = _stamp(self.root / rel)
        return now is None or self._stamps.get(rel) != now

    def changed(self, patterns: Optional[Sequence[str]] = None) -> List[str]:
        """The files (matching `patterns`, default: everything) that are new
        or changed since the snapshot, sorted."""
        now = files(self.root, patterns or ("**",), skip_dirs=(), key="pattern")
        return [f.rel for f in now if self._stamps.get(f.rel) != _stamp(f.path)]

    def removed(self) -> List[str]:
        """The files the snapshot had that are gone now, sorted."""
        return sorted(rel for rel in self._stamps if not (self.root / rel).is_file())


def _stamp(path: Path) -> Optional[Stamp]:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime, st.st_size)
