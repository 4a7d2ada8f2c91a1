"""A generated notebook run by the real magics (real context shells), then ``%kameleon export``."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from kameleon_nb.frontends.notebook.files import CellKind, recipe_cells
from tests.frontends.notebook_helpers import copy_tree, plan_of
from tests.frontends.recipes import DIRECTORY_APPLIANCE

pytestmark = [pytest.mark.shell, pytest.mark.jupyter]

ROOT = Path(__file__).resolve().parents[2]


def test_run_the_notebook_then_export_the_session(ipython, tmp_path):
    work = copy_tree(ROOT / "examples" / "hello", tmp_path / "hello")
    cells = recipe_cells("hello/hello.yaml", notebook_dir=str(tmp_path), cwd=str(tmp_path))
    for cell in cells:
        if cell.kind is CellKind.CODE:
            with capture_output() as captured:
                result = ipython.run_cell(cell.source)
            assert result.success, f"{cell.source!r}: {result.error_in_exec}\n{captured.stdout}"
    with capture_output() as captured:
        result = ipython.run_cell("%kameleon export exported")
    assert result.success, result.error_in_exec
    assert "Exported recipe 'hello' to " in captured.stdout
    out = tmp_path / "exported"
    for relative in ("hello.yaml", "steps/setup/hello.yaml"):
        assert (out / relative).read_text() == (work / relative).read_text(), relative
    build = tmp_path / "build"
    assert plan_of(out / "hello.yaml", tmp_path, build) == plan_of(
        work / "hello.yaml", tmp_path, build
    )


def test_an_edited_cell_in_the_session_is_exported(ipython, tmp_path):
    cells = [
        "%%microstep greet --context local\necho hello",
        "%%microstep greet --context local\necho hello again",  # re-run, edited
        "%%microstep pack --section export --macrostep pack --context local\necho packed",
    ]
    for source in cells:
        with capture_output():
            assert ipython.run_cell(source).success
    with capture_output() as captured:
        assert ipython.run_cell("%kameleon export out").success
    assert (tmp_path / "out" / "steps" / "setup" / "notebook.yaml").read_text() == (
        "- greet:\n  - exec_local: echo hello again\n"
    )
    assert (
        (tmp_path / "out" / "notebook.yaml")
        .read_text()
        .endswith("---\nsetup:\n  - notebook\nexport:\n  - pack\n")
    ), captured.stdout


SCRATCH = [
    "%%kameleon recipe appliance.yaml --enable-checkpoint\n" + DIRECTORY_APPLIANCE,
    "%%microstep tree --section bootstrap --macrostep base --context out\n"
    "mkdir -p $${rootfs}/etc\n",
    "%%microstep motd --macrostep configure\necho hello > etc/motd\n",
    "%%microstep users --macrostep configure\n"
    "- exec_in: echo root:x:0:0::/root:/bin/sh > etc/passwd\n"
    "- on_checkpoint: use_cache\n",
    "%%microstep pack --section export --macrostep archive --context out\n"
    "tar -C $${rootfs} --exclude=./kameleon_scripts -cf appliance.tar .\n",
]


def test_a_notebook_from_scratch_builds_with_the_cli_from_its_checkpoints(ipython, tmp_path):
    import subprocess
    import sys

    for source in SCRATCH:
        with capture_output() as captured:
            result = ipython.run_cell(source)
        assert result.success, f"{source!r}: {result.error_in_exec}\n{captured.stdout}"
    session = ipython.find_magic("kameleon").__self__.session
    ids = [(m.slug, m.step_id) for m in session.recipe.microsteps()]
    created = {row.step_id for row in session.checkpoints()}
    assert created == {step_id for _, step_id in ids}  # every cell was checkpointed
    with capture_output():
        assert ipython.run_cell("%kameleon export out").success
    session.close()

    def kameleon(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "kameleon_nb", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listing = kameleon("build", "-d", "-l", "out/appliance.yaml")
    assert [line.split(" | ")[0].strip() for line in listing.splitlines()[3:]] == [
        step_id for _, step_id in ids
    ]
    # the same ids: the CLI build finds the notebook's checkpoints and runs nothing
    out = kameleon("build", "--script", "--enable-checkpoint", "out/appliance.yaml")
    assert out.count("--> Checkpoint ahead, do nothing") == len(ids), out
    assert "--> Running the step..." not in out
    assert "Successfully built" in out
