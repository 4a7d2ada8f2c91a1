"""Recipe → notebook: what the cells say and how the notebook reads as a document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kameleon_nb.frontends.notebook.files import (
    CellKind,
    read_notebook,
    recipe_cells,
    recipe_notebook,
)
from kameleon_nb.frontends.notebook.model import render_microstep
from kameleon_nb.frontends.notebook.yaml_text import YamlDoc
from tests.frontends.notebook_helpers import copy_tree

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "tests" / "data" / "recipes"
TINY = ROOT / "tests" / "data" / "compat" / "recipes" / "tiny"


def _sources(cells) -> list[str]:
    return [c.source for c in cells]


def test_the_notebook_of_the_tiny_recipe(tmp_path):
    work = copy_tree(TINY, tmp_path / "tiny")
    cells = recipe_cells(str(work / "tiny.yaml"), notebook_dir=str(work), cwd=str(work))
    sources = _sources(cells)
    assert sources[0] == "# tiny\n\nTiny compatibility recipe using only plain local bash contexts."
    assert sources[1] == "%load_ext kameleon_nb"
    assert sources[2] == "%%kameleon recipe tiny.yaml\n" + (work / "tiny.yaml").read_text()[:-1]
    headings = [s for s in sources if s.startswith("#")]
    assert headings[1:] == [
        "## Bootstrap",
        "### prepare",
        "## Setup",
        "### greet",
        "### inline_step",
        "## Export",
        "### final",
    ]
    # one plain exec: a shell cell, with its context; on_checkpoint on the line
    assert (
        "%%microstep say_hello --context out --section setup --macrostep greet\n"
        'echo "$${greeting} $${who}$${punct}"'
    ) in sources
    assert (
        "%%microstep always --context local --section setup --macrostep inline_step "
        '--on-checkpoint redo\necho "always redone (checkpointing=$${checkpointing_enabled})"'
    ) in sources
    # anything else: the YAML as written (flow lists, quoting and all)
    copy = next(s for s in sources if s.startswith("%%microstep copy "))
    assert copy.endswith(
        '- write_local: [ "$KAMELEON_WORKDIR/f.txt", "content from local" ]\n'
        '- local2in: [ "$KAMELEON_WORKDIR/f.txt", "g.txt" ]\n'
        "- exec_in: cat g.txt"
    )
    metadata = [c.metadata for c in cells if c.source.startswith("%%microstep say_bye")]
    assert metadata == [{"kameleon": {"origin": "steps/setup/greet.yaml", "index": 3}}]


def test_comments_become_markdown(tmp_path):
    work = copy_tree(RECIPES / "yaml_edge", tmp_path / "edge")
    cells = recipe_cells(str(work / "chroot-edge.yaml"), notebook_dir=str(work), cwd=str(work))
    heading = next(c for c in cells if c.source.startswith("### chroot_env"))
    assert heading.source == (
        "### chroot_env\n\nThe command list of mount_proc is shared with remount_proc through "
        "a YAML\nanchor/alias; it holds a hook, which must be extracted from both microsteps."
    )
    assert heading.metadata["kameleon"]["file"] == "steps/setup/chroot_env.yaml"
    checks = next(c for c in cells if c.source.startswith("%%microstep checks "))
    # comments inside a microstep stay in its YAML body
    assert "# a YAML bool as command value\n- exec_in: true\n" in checks.source
    # an alias of another microstep's commands: written out in full
    remount = next(c for c in cells if c.source.startswith("%%microstep remount_proc "))
    assert remount.source.endswith(
        "- exec_out: mount -t proc proc $${rootfs}/proc\n- on_setup_clean:\n"
        "  - exec_out: umount $${rootfs}/proc"
    )


def test_comment_above_a_microstep_is_a_markdown_cell(tmp_path):
    work = copy_tree(RECIPES / "macrostep_forms", tmp_path / "forms")
    cells = recipe_cells(str(work / "debian-custom.yaml"), notebook_dir=str(work), cwd=str(work))
    sources = _sources(cells)
    # a step file of the recipe's own dir, with a microstep selection: only the
    # selected microsteps, in the selection's order
    tweaks = sources.index("### system_tweaks")
    assert sources[tweaks + 1] == (
        "Kept from the file, not shown as cells: `enable_tmpfs` (not selected)."
    )
    assert sources[tweaks + 2].startswith("%%microstep set_swappiness ")
    assert sources[tweaks + 3].startswith("%%microstep disable_ipv6 ")


def test_macrosteps_of_parents_are_listed_not_shown(tmp_path):
    work = copy_tree(RECIPES / "extend_chain", tmp_path / "chain")
    cells = recipe_cells(
        str(work / "debian-bookworm-web.yaml"), notebook_dir=str(work), cwd=str(work)
    )
    bootstrap = next(c for c in cells if c.source.startswith("## Bootstrap"))
    assert bootstrap.source.startswith("## Bootstrap\n\nNot shown as cells: `debootstrap` (")
    assert bootstrap.metadata == {"kameleon": {"role": "section", "section": "bootstrap"}}


def test_the_recipe_cell_names_the_recipe_from_the_notebook(tmp_path):
    work = copy_tree(TINY, tmp_path / "tiny")
    notebook = tmp_path / "notebooks" / "my tiny.ipynb"
    recipe_notebook(str(work / "tiny.yaml"), str(notebook), cli_globals={"who": "bob smith"})
    header = read_notebook(str(notebook))[2].source.splitlines()[0]
    assert header == "%%kameleon recipe ../tiny/tiny.yaml -g 'who:bob smith'"


def test_the_ipynb_is_what_jupyter_writes(tmp_path):
    work = copy_tree(TINY, tmp_path / "tiny")
    recipe_notebook(str(work / "tiny.yaml"))
    data = json.loads((work / "tiny.ipynb").read_text())
    assert data["nbformat"] == 4
    assert data["nbformat_minor"] == 5
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    code = next(c for c in data["cells"] if c["cell_type"] == "code")
    assert code["outputs"] == []
    assert code["execution_count"] is None
    assert len({c["id"] for c in data["cells"]}) == len(data["cells"])
    assert (work / "tiny.ipynb").read_text().endswith("}\n")
    # the same recipe gives the same file (stable cell ids)
    first = (work / "tiny.ipynb").read_text()
    recipe_notebook(str(work / "tiny.yaml"), force=True)
    assert (work / "tiny.ipynb").read_text() == first


@pytest.mark.parametrize(
    ("yaml", "line", "body"),
    [
        pytest.param("- a:\n  - exec_in: echo hi\n", ("in", None), "echo hi", id="one-exec"),
        pytest.param(
            "- a:\n  - exec_out: |\n      x\n      y\n", ("out", None), "x\ny", id="literal"
        ),
        pytest.param(
            "- a:\n  - exec_in: x\n  - on_checkpoint: skip\n", ("in", "skip"), "x", id="policy"
        ),
        pytest.param(
            "- a:\n  - exec_in: |-\n      x\n      y\n",
            None,
            "- exec_in: |-\n    x\n    y",
            id="no-final-newline",
        ),
        pytest.param("- a:\n  - exec_in: x  # why\n", None, "- exec_in: x  # why", id="comment"),
        pytest.param("- a:\n  - exec_in: 12\n", None, "- exec_in: 12", id="not-a-string"),
        pytest.param(
            "- a:\n  - on_checkpoint: disable\n  - exec_in: x\n",
            None,
            "- on_checkpoint: disable\n- exec_in: x",
            id="unknown-policy",
        ),
        pytest.param("- a:\n  - exec_in: '- x'\n", None, "- exec_in: '- x'", id="looks-like-yaml"),
        pytest.param(
            "- a: [{exec_in: x}, {exec_out: y}]\n",
            None,
            "- exec_in: x\n- exec_out: 'y'",
            id="flow",
        ),
    ],
)
def test_a_microstep_as_a_cell(yaml, line, body):
    doc = YamlDoc(yaml, "s.yaml")
    layout = doc.seq_layout(doc.root, 0)
    assert layout is not None
    rendered = render_microstep(layout.items[0].value, layout.items[0])
    assert rendered is not None
    assert rendered.body == body
    if line is None:
        assert not rendered.shell
    else:
        assert rendered.shell
        assert (rendered.context.value, rendered.on_checkpoint) == line


def test_an_empty_microstep_gets_no_cell(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "setup:\n  - s:\n    - empty: []\n    - full:\n      - exec_in: echo\n"
    )
    cells = recipe_cells(str(tmp_path / "r.yaml"), notebook_dir=str(tmp_path), cwd=str(tmp_path))
    assert [c.source.split()[1] for c in cells if c.kind is CellKind.CODE][2:] == ["full"]
    assert any("`empty` (no commands)" in c.source for c in cells)
