# SPDX-License-Identifier: Apache-2.0
"""Globs, include/exclude selection and snapshots of the workspace."""

import os

import pytest

from sluice_stage import InvalidConfig, workspace


@pytest.fixture
def root(tmp_path):
    for rel in ["src/a.py", "src/x/y/b.py", "src/c.rs", "vendor/v.py", "top.py", "node_modules/m.py",
                ".git/config", "reports/unit/r.xml", "reports/r.xml", "[odd].txt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    return tmp_path


def rels(found):
    return [f.rel for f in found]


@pytest.mark.parametrize("rel, pattern, hit", [
    ("src/a.py", "src/*.py", True),
    ("src/x/y/b.py", "src/*.py", False),      # `*` does not cross `/`
    ("src/x/y/b.py", "src/**/*.py", True),
    ("src/a.py", "src/**/*.py", True),        # `**/` may match nothing
    ("src/x/y/b.py", "*.py", True),           # no `/`: the file name, anywhere
    ("src/a.py", "./src/a.py", True),
    ("src/a.py", "src/?.py", True),
    ("src/ab.py", "src/?.py", False),
    ("src/a.py", "src/[ab].py", True),
    ("src/c.py", "src/[!ab].py", True),
    ("src/a.py", "SRC/*.py", False),          # case-sensitive
    ("a.pyc", "*.py", False),
])
def test_glob_semantics(rel, pattern, hit):
    assert workspace.matches(rel, pattern) is hit


def test_files_selects_with_include_and_exclude_and_skips_caches(root):
    assert rels(workspace.files(root, ["*.py"], ["vendor/**"])) == ["src/a.py", "src/x/y/b.py", "top.py"]
    assert rels(workspace.files(root, ["src/**"], ["*.rs"])) == ["src/a.py", "src/x/y/b.py"]
    assert "node_modules/m.py" in rels(workspace.files(root, ["*.py"], skip_dirs=()))
    assert ".git/config" not in rels(workspace.files(root))


def test_find_matches_one_pattern_without_skipping(root):
    assert rels(workspace.find(root, "reports/**/*.xml")) == ["reports/r.xml", "reports/unit/r.xml"]
    assert rels(workspace.find(root, "[[]odd].txt")) == ["[odd].txt"]
    assert workspace.find(root, "missing.xml") == []


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.xml", "a/../../x", "", "  ", "a/[b.xml"])
def test_patterns_must_stay_in_the_workspace(root, bad):
    with pytest.raises(InvalidConfig) as e:
        workspace.files(root, ["*.py", bad], key="with")
    assert e.value.message.startswith("with.include[1]: ")


def test_a_missing_root_fails(tmp_path):
    with pytest.raises(workspace.Failed, match="is not a directory"):
        workspace.files(tmp_path / "nope")


def test_snapshot_tells_new_and_changed_files(root):
    snap = workspace.Snapshot.take(root, ["reports/**"])
    assert not snap.is_fresh("reports/r.xml")
    (root / "reports/r.xml").write_text("changed, and longer")
    (root / "reports/new.xml").write_text("new")
    os.remove(root / "reports/unit/r.xml")
    assert snap.is_fresh("reports/r.xml") and snap.is_fresh("reports/new.xml")
    assert snap.changed(["reports/**"]) == ["reports/new.xml", "reports/r.xml"]
    assert snap.removed() == ["reports/unit/r.xml"]
