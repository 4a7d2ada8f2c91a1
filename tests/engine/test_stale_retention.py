"""A recipe under development does not fill the disk: stale checkpoints are retired.

Each edit of a step makes new ids from that step on; the old ones become stale. A
successful build keeps the stale checkpoints of the previous build (an edit reverted
costs nothing) and removes older ones, with one line saying so; ``--keep-stale``
chooses how many builds' worth stay.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .buildcheck import cli

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.shell,
    pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync"),
]


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "directory", tmp_path / "directory")
    return tmp_path / "directory" / "directory.yaml"


def _build(recipe: Path, user: str, *extra: str) -> str:
    build = recipe.parent / "build"
    rc, out = cli("build", str(recipe), "-b", str(build), "-c", "-g", f"user_name:{user}", *extra)
    assert rc == 0, out
    return out


def _created(out: str) -> set[str]:
    return set(re.findall(r"--> Creating checkpoint: '[^']*' \(([0-9a-f]{12})\)", out))


def _valid(recipe: Path, user: str) -> set[str]:
    """The ids of the recipe with this user (``build -d -l``)."""
    rc, out = cli("build", str(recipe), "-d", "-l", "-g", f"user_name:{user}")
    assert rc == 0, out
    return set(re.findall(r"^([0-9a-f]{12}) \|", out, re.MULTILINE))


def _stored(recipe: Path) -> set[str]:
    store = recipe.parent / "build" / "directory" / "checkpoints" / "rsync"
    return {p.name for p in store.iterdir() if re.fullmatch(r"[0-9a-f]{12}", p.name)}


def test_stale_checkpoints_of_older_builds_are_removed(recipe: Path) -> None:
    alice, bob, carol = (_valid(recipe, u) for u in ("alice", "bob", "carol"))
    assert _created(_build(recipe, "alice")) == alice
    bob_out = _build(recipe, "bob")
    assert "Removed" not in bob_out  # alice's are the previous build's: kept
    assert _stored(recipe) == alice | bob

    carol_out = _build(recipe, "carol")
    alice_only = alice - bob - carol
    assert alice_only, "the edit must make new ids"
    assert f"Removed {len(alice_only)} stale checkpoint(s)" in carol_out
    assert _stored(recipe) == bob | carol


def test_reverting_an_edit_restores_from_the_kept_checkpoint(recipe: Path) -> None:
    _build(recipe, "alice")
    _build(recipe, "bob")
    # rebuilding the same version (here from its first checkpoint) is no new version
    bob_again = _build(
        recipe, "bob", "-F", sorted(_valid(recipe, "bob") & _valid(recipe, "alice"))[0]
    )
    assert "Removed" not in bob_again
    out = _build(recipe, "alice")
    assert not _created(out), "alice's checkpoints were kept: nothing to redo"
    assert "Removed" not in out


def test_keep_stale_zero_and_all(recipe: Path) -> None:
    _build(recipe, "alice")
    _build(recipe, "bob", "--keep-stale", "all")
    _build(recipe, "carol", "--keep-stale", "all")
    alice, bob, carol = (_valid(recipe, u) for u in ("alice", "bob", "carol"))
    assert _stored(recipe) == alice | bob | carol
    out = _build(recipe, "carol", "--keep-stale", "0")
    assert "Removed" in out
    assert _stored(recipe) == carol


def test_keep_stale_is_reported_when_the_mechanism_cannot_delete(tmp_path: Path) -> None:
    (tmp_path / "steps" / "checkpoints").mkdir(parents=True)
    (tmp_path / "steps" / "checkpoints" / "nodelete.yaml").write_text(
        "enabled?:\n  - exec_local: 'true'\n"
        'create:\n  - exec_local: echo @microstep_id >> "$KAMELEON_WORKDIR/ids"\n'
        "apply:\n  - exec_local: 'true'\n"
        'list:\n  - exec_local: cat "$KAMELEON_WORKDIR/ids" 2>/dev/null || true\n'
        'clear:\n  - exec_local: rm -f "$KAMELEON_WORKDIR/ids"\n'
    )
    (tmp_path / "r.yaml").write_text(
        "checkpoint: nodelete.yaml\nglobal:\n  word: one\n"
        "bootstrap:\n  - s:\n    - a:\n      - exec_local: echo $${word}\n"
    )
    build = str(tmp_path / "build")
    for word in ("one", "two"):
        rc, out = cli("build", str(tmp_path / "r.yaml"), "-b", build, "-c", "-g", f"word:{word}")
        assert rc == 0, out
        assert "--keep-stale" not in out  # the default policy says nothing
    rc, out = cli(
        "build",
        str(tmp_path / "r.yaml"),
        "-b",
        build,
        "-c",
        "-g",
        "word:three",
        "--keep-stale",
        "0",
    )
    assert rc == 0, out
    assert out.count("--keep-stale is not supported by this checkpoint mechanism") == 1
    ids = (tmp_path / "build" / "r" / "ids").read_text().split()
    assert len(ids) == 3  # nothing removed


def test_keep_stale_rejects_a_bad_value(recipe: Path) -> None:
    rc, out = cli("build", str(recipe), "-c", "--keep-stale", "some")
    assert rc != 0
    assert "--keep-stale" in out
    assert "'some'" in out
    assert "Traceback" not in out
