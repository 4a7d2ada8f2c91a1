"""Checkpoint ids read back from a mechanism's store never reach a shell unchecked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kameleon_nb.core.model import Command
from kameleon_nb.engine.checkpoints.recipe_hooks import with_step_id
from kameleon_nb.engine.session import Session
from kameleon_nb.errors import BuildError

RECIPE = """\
checkpoint: {mechanism}
global:
  out_context:
    cmd: bash
    workdir: $${{kameleon_cwd}}
  in_context:
    cmd: bash
    workdir: $${{kameleon_cwd}}
  rootfs: $${{kameleon_cwd}}/rootfs
setup:
  - work:
    - make:
      - exec_out: mkdir -p rootfs && echo one > rootfs/file
"""

CRAFTED = ["$(touch ../../PWNED)", "`touch ../../PWNED`", "abc;touch PWNED", "ABCDEF012345"]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", *args, "ids.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _pwned(tmp_path: Path) -> list[str]:
    return [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("PWNED")]


@pytest.mark.parametrize("mechanism", ["simple.yaml", "rsync.yaml"])
def test_crafted_names_in_the_store_are_ignored_with_a_warning(
    tmp_path: Path, mechanism: str
) -> None:
    (tmp_path / "ids.yaml").write_text(RECIPE.format(mechanism=mechanism))
    built = _cli(tmp_path, "-c")
    assert built.returncode == 0, built.stdout + built.stderr
    build_dir = tmp_path / "build" / "ids"
    if mechanism == "simple.yaml":
        with (build_dir / "checkpoints.list").open("a") as stream:
            stream.write("".join(f"{name}\n" for name in CRAFTED))
    else:
        store = build_dir / "checkpoints" / "rsync"
        for name in CRAFTED:
            (store / name.replace("/", "_")).mkdir()

    listed = _cli(tmp_path, "-l")
    output = listed.stdout + listed.stderr
    assert listed.returncode == 0, output
    assert "setup/work/make" in output  # the real checkpoint is still listed
    assert f"Warning: Ignoring {len(CRAFTED)} line(s) of the checkpoint 'list' output" in output
    assert _pwned(tmp_path) == []

    # the notebook's table (which runs the size hook of each listed id), restore, delete
    session = Session.open(str(tmp_path / "ids.yaml"), cwd=str(tmp_path), checkpointing=True)
    try:
        rows = session.checkpoints()
        assert [row.slug for row in rows] == ["setup/work/make"]
        for name in CRAFTED:
            with pytest.raises(BuildError, match="Unknown checkpoint"):
                session.restore(name)
        if session.can_delete:
            for name in CRAFTED:
                with pytest.raises(BuildError):
                    session.delete(name)
    finally:
        session.end()
    assert _pwned(tmp_path) == []
    rebuilt = _cli(tmp_path, "-c")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert _pwned(tmp_path) == []


@pytest.mark.parametrize("bad", ["$(reboot)", "0123456789abc", "0123456789AB", "../etc"])
def test_a_hook_never_gets_an_id_that_is_not_one(bad: str) -> None:
    command = Command("exec_local", "echo @microstep_id", "echo @microstep_id")
    with pytest.raises(BuildError, match="a checkpoint id is 12 hex digits"):
        with_step_id(command, bad)
    assert with_step_id(command, "0123456789ab").value == "echo 0123456789ab"
    assert with_step_id(command, "").value == "echo "  # the hooks that take no id
