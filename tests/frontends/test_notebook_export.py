"""Notebook → recipe: edited cells, comments, new macrosteps, scratch notebooks, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kameleon_nb.errors import ExportError, NotebookError, UsageError
from kameleon_nb.frontends.notebook.files import (
    CellKind,
    NotebookCell,
    export_notebook,
    export_session,
    plan_export,
    read_notebook,
    recipe_notebook,
    write_notebook,
)
from tests.frontends.notebook_helpers import copy_tree, plan_of, session_plan, snapshot

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
TINY = ROOT / "tests" / "data" / "compat" / "recipes" / "tiny"
RECIPES = ROOT / "tests" / "data" / "recipes"
NOTEBOOKS = ROOT / "tests" / "data" / "notebooks"


def code(source: str, **metadata: object) -> NotebookCell:
    return NotebookCell(CellKind.CODE, source, metadata)


def markdown(source: str, **metadata: object) -> NotebookCell:
    return NotebookCell(CellKind.MARKDOWN, source, metadata)


@pytest.fixture
def hello(tmp_path: Path) -> tuple[Path, list[NotebookCell]]:
    work = copy_tree(HELLO, tmp_path / "hello")
    recipe_notebook(str(work / "hello.yaml"))
    return work, read_notebook(str(work / "hello.ipynb"))


def _index(cells: list[NotebookCell], name: str) -> int:
    return next(i for i, c in enumerate(cells) if c.source.startswith(f"%%microstep {name} "))


def _export(work: Path, cells: list[NotebookCell], out: Path | None = None, name="edited"):
    notebook = work / f"{name}.ipynb"
    write_notebook(cells, str(notebook))
    return export_notebook(str(notebook), str(out or work))


# ----------------------------------------------------------------- edited cells


def test_an_edited_cell_rewrites_only_its_microstep(hello, tmp_path):
    work, cells = hello
    step_file = (work / "steps" / "setup" / "hello.yaml").read_text()
    before = plan_of(work / "hello.yaml", work, tmp_path / "build")
    index = _index(cells, "say_hello")
    cells[index] = code(
        cells[index].source.replace("$${user_name}", "$${user_name}!") + "\necho twice",
        **cells[index].metadata,
    )
    report = _export(work, cells)
    assert report.written == ("steps/setup/hello.yaml",)
    new_text = (work / "steps" / "setup" / "hello.yaml").read_text()
    assert new_text == step_file.replace(
        '  - exec_in: echo "$${greeting} $${user_name}"\n',
        '  - exec_in: |\n      echo "$${greeting} $${user_name}!"\n      echo twice\n',
    )
    after = plan_of(work / "hello.yaml", work, tmp_path / "build")
    changed = [b[0] for a, b in zip(after, before, strict=True) if a != b]
    assert changed[0] == "setup/hello/say_hello"  # earlier ids kept, later ones follow
    assert "bootstrap/prepare/make_tree" not in changed
    assert after == session_plan(cells, cwd=work, build=tmp_path / "build")


def test_an_edited_embedded_microstep_is_written_in_the_recipe_file(hello, tmp_path):
    work, cells = hello
    recipe = (work / "hello.yaml").read_text()
    index = _index(cells, "add_user")
    cells[index] = code(
        cells[index].source + "\n# who am i\n- exec_in: id -un", **cells[index].metadata
    )
    _export(work, cells)
    assert (work / "hello.yaml").read_text() == recipe.replace(
        "      - exec_in: cat passwd\n",
        "      - exec_in: cat passwd\n      # who am i\n      - exec_in: id -un\n",
    )
    assert plan_of(work / "hello.yaml", work, tmp_path / "build") == session_plan(
        cells, cwd=work, build=tmp_path / "build"
    )


def test_yaml_body_keeps_its_comments_and_style(tmp_path):
    work = copy_tree(TINY, tmp_path / "tiny")
    recipe_notebook(str(work / "tiny.yaml"))
    cells = read_notebook(str(work / "tiny.ipynb"))
    index = _index(cells, "controls")
    source = cells[index].source.replace('echo "else"', 'echo "otherwise"  # changed')
    cells[index] = code(source, **cells[index].metadata)
    _export(work, cells)
    text = (work / "tiny.yaml").read_text()
    assert '      - exec_local: echo "otherwise"  # changed\n' in text
    assert '        - exec_local: "false"\n' in text  # its quoting is kept


def test_on_checkpoint_from_the_magic_line(hello, tmp_path):
    work, cells = hello
    index = _index(cells, "write_motd")
    first, _, body = cells[index].source.partition("\n")
    cells[index] = code(f"{first} --on-checkpoint redo\n{body}", **cells[index].metadata)
    _export(work, cells)
    assert (
        "- write_motd:\n  - on_checkpoint: redo\n  - exec_out: echo"
        in (work / "steps" / "setup" / "hello.yaml").read_text()
    )
    recipe = plan_of(work / "hello.yaml", work, tmp_path / "build")
    assert recipe == session_plan(cells, cwd=work, build=tmp_path / "build")


# ----------------------------------------------------------------- comments


def test_markdown_before_a_microstep_becomes_its_comment(hello):
    work, cells = hello
    index = _index(cells, "write_motd")
    cells.insert(index, markdown("Writes the *motd*.\n\nSee `man motd`."))
    _export(work, cells)
    text = (work / "steps" / "setup" / "hello.yaml").read_text()
    assert "# Writes the *motd*.\n#\n# See `man motd`.\n- write_motd:\n" in text
    again = work / "again.ipynb"
    recipe_notebook(str(work / "hello.yaml"), str(again))
    cells_again = read_notebook(str(again))
    comment = cells_again[_index(cells_again, "write_motd") - 1]
    assert comment.source == "Writes the *motd*.\n\nSee `man motd`."


def test_deleting_a_comment_cell_deletes_the_comment(tmp_path):
    work = copy_tree(RECIPES / "macrostep_forms", tmp_path / "forms")
    (work / "steps" / "setup" / "create_user.yaml").write_text(
        "- login: kameleon\n- shell: /bin/bash\n\n# adds the user\n# (with a home)\n"
        "- add_user:\n  - exec_in: useradd -m -s $${shell} $${login}\n"
        '- set_password:\n  - exec_in: echo "$${login}:$${login}" | chpasswd\n'
    )
    recipe_notebook(str(work / "debian-custom.yaml"))
    cells = read_notebook(str(work / "debian-custom.ipynb"))
    comment = _index(cells, "add_user") - 1
    assert cells[comment].source == "adds the user\n(with a home)"
    del cells[comment]
    _export(work, cells)
    assert (work / "steps" / "setup" / "create_user.yaml").read_text() == (
        "- login: kameleon\n- shell: /bin/bash\n\n"
        "- add_user:\n  - exec_in: useradd -m -s $${shell} $${login}\n"
        '- set_password:\n  - exec_in: echo "$${login}:$${login}" | chpasswd\n'
    )


def test_a_macrostep_heading_holds_the_step_file_header(hello):
    work, cells = hello
    index = next(i for i, c in enumerate(cells) if c.source.startswith("### hello"))
    assert cells[index].source == (
        "### hello\n\nA step file with a default variable and two microsteps."
    )
    cells[index] = markdown("### hello\n\nGreets the user.", **cells[index].metadata)
    _export(work, cells)
    assert (
        (work / "steps" / "setup" / "hello.yaml")
        .read_text()
        .startswith("# Greets the user.\n- greeting: hello\n")
    )


def test_cells_without_markdown_keep_the_file_comments(tmp_path):
    work = copy_tree(RECIPES / "hooks", tmp_path / "hooks")
    files = snapshot(work)
    recipe_notebook(str(work / "nbd-image.yaml"))
    cells = read_notebook(str(work / "nbd-image.ipynb"))
    # a session has no Markdown and no metadata: the files' comments stay
    sources = [c.source for c in cells if c.kind is CellKind.CODE][1:]
    export_session(sources, ".", cwd=str(work))
    assert snapshot(work) == files


# ----------------------------------------------------------------- new steps


def test_new_microsteps_and_macrosteps(hello, tmp_path):
    work, cells = hello
    cells += [
        code("%%microstep wave --section setup --macrostep hello\necho wave"),
        markdown("Publishes the archive."),
        code("%%microstep upload --section export --macrostep publish --context local\nls"),
        code("%%microstep sign --section export --macrostep publish\n- exec_local: echo sig"),
    ]
    out = tmp_path / "out"
    _export(work, cells, out)
    assert (
        (out / "hello.yaml")
        .read_text()
        .endswith(
            '      - exec_out: tar -C "$APPLIANCE" -cf ../hello.tar . && echo '
            '"exported hello.tar"\n  - publish\n'
        )
    )
    assert (out / "steps" / "export" / "publish.yaml").read_text() == (
        "\n# Publishes the archive.\n- upload:\n  - exec_local: ls\n\n"
        "- sign:\n  - exec_local: echo sig\n"
    )
    assert (
        (out / "steps" / "setup" / "hello.yaml")
        .read_text()
        .endswith("\n- wave:\n  - exec_in: echo wave\n")
    )
    build = tmp_path / "build"
    got = plan_of(out / "hello.yaml", work, build)
    assert [s for s, _ in got] == [s for s, _ in session_plan(cells, cwd=work, build=build)]
    assert got[-2:][0][0] == "export/publish/upload"


def test_a_notebook_without_recipe_cell_becomes_a_minimal_recipe(tmp_path):
    cells = [
        markdown("# My appliance"),
        code("%load_ext kameleon_nb"),
        markdown("Make the tree."),
        code("%%microstep tree --context out\nmkdir -p root/etc"),
        code("%%microstep conf --macrostep config\n- exec_in: |\n    echo a\n    echo b"),
        code("%%microstep pack --section export --macrostep pack\ntar -cf x.tar root"),
        code("%kameleon build"),
    ]
    report = _export(tmp_path, cells, tmp_path / "out", name="appliance")
    out = tmp_path / "out"
    assert report.export.recipe == "appliance.yaml"
    assert report.export.left_out == ('cell 1 ("# My appliance")', 'cell 7 ("%kameleon build")')
    recipe = (out / "appliance.yaml").read_text()
    assert "# DESCRIPTION: Written by kameleon_nb from appliance.ipynb.\n" in recipe
    assert recipe.endswith("---\nsetup:\n  - notebook\n  - config\nexport:\n  - pack\n")
    assert (out / "steps" / "setup" / "notebook.yaml").read_text() == (
        "\n# Make the tree.\n- tree:\n  - exec_out: mkdir -p root/etc\n"
    )
    assert (out / "steps" / "setup" / "config.yaml").read_text() == (
        "- conf:\n  - exec_in: |\n      echo a\n      echo b\n"
    )
    build = tmp_path / "build"
    assert plan_of(out / "appliance.yaml", out, build) == session_plan(
        cells, cwd=out, build=build, name="appliance"
    )
    # and back: a notebook of that recipe exports to the same files
    recipe_notebook(str(out / "appliance.yaml"))
    files = snapshot(out)
    assert export_notebook(str(out / "appliance.ipynb")).written == ()
    assert snapshot(out) == files


def test_a_real_notebook_file_saved_by_jupyter(tmp_path):
    notebook = tmp_path / "handwritten.ipynb"
    shutil.copy(NOTEBOOKS / "handwritten.ipynb", notebook)
    report = export_notebook(str(notebook), str(tmp_path / "out"))
    assert report.export.left_out == ('cell 6 ("%kameleon build -c")', 'cell 7 ("Done!")')
    text = (tmp_path / "out" / "steps" / "setup" / "notebook.yaml").read_text()
    assert text == (
        "\n# Say hello, then bye.\n- hello:\n  - exec_local: echo hello\n\n"
        "- bye:\n  - exec_local: |\n      echo bye\n      echo again\n"
    )


def test_session_export_takes_the_last_definition(tmp_path):
    sources = [
        "%%microstep a --context local\necho 1\n",
        "%%microstep b --context local\necho 2\n",
        "%%microstep a --context local\necho 3\n",
    ]
    report = export_session(sources, "out", cwd=str(tmp_path))
    assert report.export.recipe == "notebook.yaml"
    assert (tmp_path / "out" / "steps" / "setup" / "notebook.yaml").read_text() == (
        "- a:\n  - exec_local: echo 3\n\n- b:\n  - exec_local: echo 2\n"
    )
    assert "Exported recipe 'notebook' to " in str(report)


def test_extend_is_re_pointed_and_own_files_are_copied(tmp_path):
    work = copy_tree(RECIPES / "data_override", tmp_path / "case")
    recipe_notebook(str(work / "custom-debian.yaml"))
    out = tmp_path / "deep" / "out"
    report = export_notebook(str(work / "custom-debian.ipynb"), str(out))
    assert "extend: ../../case/base/debian.yaml\n" in (out / "custom-debian.yaml").read_text()
    assert set(report.copied) == {"steps/env/functions.sh", "steps/data/motd"}
    assert (out / "steps" / "data" / "motd").read_bytes() == (work / "steps/data/motd").read_bytes()


def test_extend_with_a_variable_keeps_the_variable(tmp_path):
    work = copy_tree(RECIPES / "extend_first_token", tmp_path / "case")
    recipe_notebook(str(work / "appliance.yaml"))
    out = tmp_path / "out"
    export_notebook(str(work / "appliance.ipynb"), str(out))
    assert (
        "extend: ../case/flavors/$${flavor}/$${variant}.yaml\n"
        in (out / "appliance.yaml").read_text()
    )


def test_duplicate_extend_keys_re_point_the_last_one(tmp_path):
    work = copy_tree(RECIPES / "global_include", tmp_path / "case")
    recipe_notebook(str(work / "g5k-debian12-std.yaml"))
    out = tmp_path / "out"
    report = export_notebook(str(work / "g5k-debian12-std.ipynb"), str(out))
    text = (out / "g5k-debian12-std.yaml").read_text()
    assert "extend: debian11-base.yaml\nextend: ../case/debian12-base.yaml\n" in text
    assert "site.yaml" in report.copied  # a global include next to the recipe


def test_in_place_export_of_a_new_step_writes_next_to_the_recipe(tmp_path):
    work = copy_tree(TINY, tmp_path / "tiny")
    recipe_notebook(str(work / "tiny.yaml"))
    cells = read_notebook(str(work / "tiny.ipynb"))
    cells.append(code("%%microstep extra --section setup --macrostep greet\necho extra"))
    _export(work, cells)
    assert (
        (work / "steps" / "setup" / "greet.yaml")
        .read_text()
        .endswith("- extra:\n  - exec_in: echo extra\n")
    )


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        pytest.param(
            [code("%%microstep\necho hi")],
            r'nb\.ipynb, cell 1 \("%%microstep"\): %%microstep: the following arguments '
            r"are required: name; a microstep cell starts with '%%microstep NAME'",
            id="no-name",
        ),
        pytest.param(
            [code("%%microstep a\necho 1"), markdown("x"), code("%%microstep a\necho 2")],
            r'nb\.ipynb, cell 3 \("%%microstep a"\): defines setup/notebook/a again '
            r"\(cell 1 already does\); rename one of them or delete one",
            id="same-microstep-twice",
        ),
        pytest.param(
            [code("%%microstep a\n- exec_in: [unclosed")],
            r'nb\.ipynb, cell 1 \("%%microstep a"\):2:1: .*; fix the cell\'s body',
            id="invalid-yaml",
        ),
        pytest.param(
            [code("%%microstep a --context out\n- exec_in: x")],
            r"cell 1 .*--context applies to shell bodies",
            id="context-on-yaml",
        ),
        pytest.param(
            [code("%%microstep a --section deploy\necho")],
            r"cell 1 .*invalid choice: 'deploy'",
            id="bad-section",
        ),
        pytest.param(
            [code("%%microstep a\n")],
            r"cell 1 .*the cell has no commands",
            id="empty-body",
        ),
        pytest.param(
            [code("%%microstep a\necho"), code("%%kameleon recipe r.yaml\nsetup: []")],
            r"cell 2 .*the recipe cell comes after microstep cells \(cell 1\)",
            id="header-after-microsteps",
        ),
        pytest.param(
            [code("%%kameleon recipe r.yaml\n{}"), code("%kameleon load r.yaml")],
            r"cell 2 .*a second recipe cell \(the first is cell 1\)",
            id="two-recipe-cells",
        ),
        pytest.param(
            [code("%%kameleon recipe r.yaml\nsetup: [nothere]")],
            r"nb\.ipynb, cell 1 \(the recipe cell\): Step nothere not found",
            id="recipe-cell-step-missing",
        ),
        pytest.param(
            [code("%%kameleon recipe r.yaml\nsetup: [\n")],
            r"nb\.ipynb, cell 1 \(the recipe cell\): .*r\.yaml:2:1",
            id="recipe-cell-invalid-yaml",
        ),
        pytest.param(
            [code("%%microstep a --context local\necho $${nope}")],
            r'cell 1 \("%%microstep a --context local"\): .*variable \$\$\{nope\} not found',
            id="undefined-variable",
        ),
    ],
)
def test_a_notebook_that_cannot_be_a_recipe(tmp_path, cells, message):
    write_notebook(cells, str(tmp_path / "nb.ipynb"))
    with pytest.raises(NotebookError, match=message):
        export_notebook(str(tmp_path / "nb.ipynb"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_cell_cannot_change_a_parents_embedded_macrostep(tmp_path):
    (tmp_path / "base.yaml").write_text("setup:\n  - base:\n    - a:\n      - exec_in: echo a\n")
    cells = [
        code('%%kameleon recipe child.yaml\nextend: base.yaml\nsetup: ["@base"]'),
        code("%%microstep a --section setup --macrostep base\n- exec_in: echo a"),
    ]
    plan_export(cells, str(tmp_path / "out"), base_dir=str(tmp_path), cwd=str(tmp_path), name="x")
    cells[1] = code("%%microstep a --section setup --macrostep base\n- exec_in: echo b")
    with pytest.raises(NotebookError, match=r"cell 2 .*parent recipe .*base\.yaml writes"):
        plan_export(
            cells, str(tmp_path / "out"), base_dir=str(tmp_path), cwd=str(tmp_path), name="x"
        )


def test_a_new_microstep_in_a_selecting_entry_is_refused(tmp_path):
    work = copy_tree(RECIPES / "macrostep_forms", tmp_path / "forms")
    recipe_notebook(str(work / "debian-custom.yaml"))
    cells = read_notebook(str(work / "debian-custom.ipynb"))
    cells.append(code("%%microstep extra --section setup --macrostep system_tweaks\necho"))
    with pytest.raises(NotebookError, match=r"add 'extra' to that list in the recipe cell"):
        _export(work, cells)


def test_a_microstep_in_several_macrosteps_must_say_which(tmp_path):
    cells = [
        code(
            "%%kameleon recipe r.yaml\nsetup:\n  - a:\n    - x: [{exec_in: '1'}]\n"
            "  - b:\n    - x: [{exec_in: '2'}]"
        ),
        code("%%microstep x\necho 3"),
    ]
    with pytest.raises(NotebookError, match=r"in several macrosteps \(setup/a, setup/b\)"):
        plan_export(cells, str(tmp_path), base_dir=str(tmp_path), cwd=str(tmp_path), name="r")


def test_a_missing_recipe_of_a_load_cell(tmp_path):
    write_notebook([code("%kameleon load nothere.yaml")], str(tmp_path / "nb.ipynb"))
    with pytest.raises(NotebookError, match=r"cell 1 \(the recipe cell\): No such file"):
        export_notebook(str(tmp_path / "nb.ipynb"))


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("{not json", NotebookError, r"x\.ipynb:1:2: not a Jupyter notebook \(invalid JSON"),
        ('{"cells": [], "nbformat": 3}', NotebookError, r"nbformat 3 is not supported"),
        ('{"worksheets": []}', NotebookError, r"not a Jupyter notebook \(no 'cells' list\)"),
    ],
)
def test_files_that_are_not_notebooks(tmp_path, content, error, message):
    (tmp_path / "x.ipynb").write_text(content)
    with pytest.raises(error, match=message):
        export_notebook(str(tmp_path / "x.ipynb"))


def test_an_existing_notebook_is_not_overwritten(tmp_path):
    work = copy_tree(HELLO, tmp_path / "hello")
    recipe_notebook(str(work / "hello.yaml"))
    with pytest.raises(UsageError, match=r"hello\.ipynb exists; pass --force"):
        recipe_notebook(str(work / "hello.yaml"))
    recipe_notebook(str(work / "hello.yaml"), force=True)


def test_a_symlinked_recipe_is_written_through_its_link(tmp_path):
    work = copy_tree(RECIPES / "symlink_overlay", tmp_path / "case")
    link = work / "aarch64" / "debian-bookworm-arm64.yaml"
    recipe_notebook(str(link), str(work / "arm.ipynb"))
    cells = read_notebook(str(work / "arm.ipynb"))
    header = next(i for i, c in enumerate(cells) if c.source.startswith("%%kameleon recipe"))
    cells[header] = code(cells[header].source.replace("release: bookworm", "release: trixie"))
    write_notebook(cells, str(work / "arm.ipynb"))
    report = export_notebook(str(work / "arm.ipynb"), str(work / "aarch64"))
    assert report.written == ("debian-bookworm-arm64.yaml",)
    assert link.is_symlink()
    assert "release: trixie" in (work / "debian-bookworm.yaml").read_text()


def test_a_failed_export_puts_every_file_back(hello, tmp_path, monkeypatch):
    from kameleon_nb.frontends.notebook import files as notebook

    work, cells = hello
    before = snapshot(work)
    index = _index(cells, "say_hello")
    cells[index] = code(cells[index].source + "\necho more", **cells[index].metadata)
    cells.append(code("%%microstep extra --section export --macrostep more\ntrue"))

    def broken_check(export, *, cwd):  # the check after writing fails (a bug, a full disk)
        raise ExportError("check failed")

    monkeypatch.setattr(notebook, "check_export", broken_check)
    notebook_path = work / "edited.ipynb"
    write_notebook(cells, str(notebook_path))
    with pytest.raises(ExportError, match="check failed"):
        export_notebook(str(notebook_path), str(work))
    assert snapshot(work) == before  # the step file is as it was, the new one is gone
