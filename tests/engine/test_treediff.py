"""The tree comparison on its own: odd names, order, hard links, layers it must not read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kameleon_nb.engine import treediff
from kameleon_nb.engine.treediff import Status


def _changes(old, new):
    return [(c.path, c.status.value, c.differs) for c in treediff.walk_changes(old, new)]


def test_paths_sort_by_component_and_odd_names_survive(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for tree in (old, new):
        (tmp_path / tree).mkdir()
    (new / "a").mkdir()
    (new / "a" / "b").write_text("x")
    (new / "a-b").write_text("y")
    odd = os.fsencode(str(new)) + b"/caf\xe9 new\nline"
    with open(odd, "wb") as stream:
        stream.write(b"z")
    os.chmod(new, 0o700)
    assert _changes(str(old), str(new)) == [
        ("/", "modified", ("mode",)),
        ("/a", "added", ()),
        ("/a/b", "added", ()),
        ("/a-b", "added", ()),
        ("/caf\udce9 new\nline", "added", ()),
    ]
    # through JSON and back (what the namespace's program prints)
    for change in treediff.walk_changes(str(old), str(new)):
        assert treediff.change_from_json(treediff.change_to_json(change)) == change


def test_one_inode_on_both_sides_is_not_read(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "shared").write_text("same")
    os.link(old / "shared", new / "shared")  # as rsync --link-dest leaves unchanged files
    (old / "copy").write_text("AAAA")
    (new / "copy").write_text("BBBB")
    os.chmod(old / "shared", 0)
    if os.geteuid() != 0:  # unreadable: it must not be opened at all
        with pytest.raises(PermissionError):
            (old / "shared").read_text()
    assert _changes(str(old), str(new)) == [("/copy", "modified", ("content",))]


def test_from_the_empty_tree_everything_is_added_but_the_top(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"123")
    (tmp_path / "l").symlink_to("d/f")
    changes = treediff.walk_changes(None, str(tmp_path))
    assert [(c.path, c.status) for c in changes] == [
        ("/d", Status.ADDED),
        ("/d/f", Status.ADDED),
        ("/l", Status.ADDED),
    ]
    assert changes[1].new.size == 3
    assert changes[2].new.target == "d/f"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* attributes need root")
def test_a_layer_with_redirects_is_not_read_by_the_fast_path(tmp_path):
    base, layer = tmp_path / "base", tmp_path / "layer"
    (base / "old").mkdir(parents=True)
    (layer / "new").mkdir(parents=True)
    os.setxattr(layer / "new", "trusted.overlay.redirect", b"/old")
    program = [sys.executable, "-I", "-S", treediff.__file__]
    done = subprocess.run(
        [*program, "overlay", str(layer), str(base)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "redirect" in done.stderr
    done = subprocess.run(
        [*program, "walk", str(base), str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "missing" in done.stderr
