"""Shipped parts work for any build path, and never touch anything outside it.

A build path with a blank used to make the busybox steps empty (and chmod 1777) the
directory named by the part before the blank, and ``--clean`` remove it. Here the
recipe's directory and the build path hold blanks, both quotes, ``$``, a backquote,
non-ASCII letters and a component with a leading ``-``; a directory named like the
part before the first blank holds a file that must survive. Each example is built
with checkpoints, rebuilt from a checkpoint, and cleaned.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .buildcheck import assert_nothing_left, extract

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "victim it's $HOME `touch PWNED` é"
IS_ROOT = os.geteuid() == 0


def _needs(*programs: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.skipif(shutil.which(p) is None, reason=f"needs {p}") for p in programs]


EXAMPLES = [
    pytest.param("hello", [], id="hello-simple"),
    pytest.param("directory", [], marks=_needs("rsync"), id="directory-rsync"),
    pytest.param(
        "busybox-rootless",
        ["etc/passwd"],
        marks=[*_needs("proot", "rsync", "zstd"), pytest.mark.shell],
        id="busybox-proot-rsync",
    ),
    pytest.param(
        "busybox",
        ["etc/passwd"],
        marks=[
            *_needs("zstd"),
            pytest.mark.root,
            pytest.mark.shell,
            pytest.mark.skipif(not IS_ROOT, reason="needs root"),
        ],
        id="busybox-chroot-overlay",
    ),
]


def _kameleon(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"kameleon {' '.join(args)}:\n{output}"
    return output


def _tree(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` but those under ``skip`` (the build dir)."""
    found = set()
    for path in root.rglob("*"):
        if path != skip and skip not in path.parents:
            found.add(str(path.relative_to(root)))
    return found


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static")
@pytest.mark.parametrize(("example", "members"), EXAMPLES)
def test_an_example_builds_rebuilds_and_cleans_under_a_hostile_path(
    tmp_path: Path, example: str, members: list[str]
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine\n")
    (tmp_path / "-lead").mkdir()
    (tmp_path / "-lead" / "keep").write_text("mine too\n")
    recipes = tmp_path / HOSTILE / "-recipes"
    shutil.copytree(ROOT / "examples" / example, recipes)
    build_path = tmp_path / HOSTILE / "-lead" / "build"
    recipe = f"{example}.yaml"
    build_dir = build_path / example
    before = _tree(tmp_path, build_path.parent)

    first = _kameleon(recipes, "build", "--script", "-c", "--build-path", str(build_path), recipe)
    assert "--> Creating checkpoint" in first
    again = _kameleon(recipes, "build", "--script", "-c", "--build-path", str(build_path), recipe)
    assert "--> Running the step..." not in again.split("Step ", 2)[-1] or "Restoring" in again
    listing = _kameleon(recipes, "build", "-l", "--build-path", str(build_path), recipe)
    ids = re.findall(r"^([0-9a-f]{12}) \|", listing, re.MULTILINE)
    assert len(ids) > 2, listing
    first_id = ids[0]
    _kameleon(recipes, "build", "--script", "-F", first_id, "--build-path", str(build_path), recipe)
    for member in members:
        archive = build_dir / f"{example}.tar.zst"
        assert "root:x:0:0" in extract(archive, f"./{member}", tmp_path / "extracted")
        shutil.rmtree(tmp_path / "extracted")

    _kameleon(recipes, "build", "--clean", "--build-path", str(build_path), recipe)
    assert not (build_dir / "checkpoints").exists() or not any(
        (build_dir / "checkpoints").iterdir()
    )
    # nothing outside the build dir changed: the victims are intact, nothing was created
    assert (victim / "keep").read_text() == "mine\n"
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
    assert (tmp_path / "-lead" / "keep").read_text() == "mine too\n"
    assert _tree(tmp_path, build_path.parent) == before
    assert not list(tmp_path.rglob("PWNED"))
    assert_nothing_left(build_path)


@pytest.mark.parametrize(
    ("component", "problem"),
    [
        ("new\nline", "contains a newline"),
        ('say "hi"', "contains a double quote"),
        ("back\\slash", "contains a backslash"),
    ],
)
def test_a_build_path_no_shell_can_be_given_is_refused_up_front(
    tmp_path: Path, component: str, problem: str
) -> None:
    shutil.copytree(ROOT / "examples" / "hello", tmp_path / "hello")
    (tmp_path / "hello" / "x.yaml").symlink_to("hello.yaml")
    build_path = os.path.join(str(tmp_path), component)
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", "--build-path", build_path, "x"],
        cwd=tmp_path / "hello",
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 7, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: The path "), output
    assert f"(build path) {problem}: " in lines[0]
    assert not os.path.exists(os.fsencode(build_path))
