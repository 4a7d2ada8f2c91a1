"""Round trips over generated recipes and generated notebooks (hypothesis).

Recipes are written as text in assorted YAML styles (plain, quoted, ``|`` blocks,
flow lists, comments everywhere), with step files, step variables, microstep
selections, embedded macrosteps, a parent recipe, hooks, pipes, rescues and
``on_checkpoint``. Notebooks are written as cells (shell and YAML bodies, Markdown).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kameleon_nb.errors import KameleonError
from kameleon_nb.frontends.notebook.cells import magic_of, split_cell
from kameleon_nb.frontends.notebook.files import (
    CellKind,
    NotebookCell,
    export_notebook,
    read_notebook,
    recipe_notebook,
    write_notebook,
)
from tests.frontends.notebook_helpers import (
    microstep_cells,
    plan_of,
    session_plan,
    snapshot,
)

SETTINGS = settings(
    # KAMELEON_NB_EXAMPLES=400 for a deeper run (all properties held at 400)
    max_examples=int(os.environ.get("KAMELEON_NB_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "base"}

names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda n: n not in RESERVED)
words = st.sampled_from(
    [
        "echo",
        "ls",
        "-l",
        "$${v}",
        '"$${w}"',
        "'q'",
        "a#b",
        "x:y",
        "$HOME",
        "${X%/}",
        "$$",
        "|",
        "&&",
        ">",
        "/tmp/f",
        "é",
        "--",
        "---",
        "[1]",
        "{a}",
        "*",
        "!",
        "yes",
        "12",
        "0755",
        "$${kameleon_cwd}/out",
    ]
)
lines = st.lists(words, min_size=1, max_size=5).map(" ".join)
values = st.one_of(
    lines,
    st.lists(lines, min_size=2, max_size=4).map(lambda ls: "\n".join(ls) + "\n"),
    st.lists(lines, min_size=2, max_size=3).map("\n".join),  # no final newline (|-)
    st.lists(lines, min_size=1, max_size=2).map(lambda ls: "  " + "\n".join(ls) + "\n"),
)
contexts = st.sampled_from(["local", "out", "in"])
policies = st.sampled_from(["use_cache", "redo", "skip", "only", "disabled", "disable"])
comments = st.lists(
    st.from_regex(r"[A-Za-z][A-Za-z0-9 .,`*]{0,20}", fullmatch=True), min_size=1, max_size=2
)


def _scalar(value: str, style: int, indent: int) -> str:
    """``value`` as YAML, in one of a few styles (falling back to JSON quoting)."""
    pad = " " * indent
    if (
        "\n" in value.rstrip("\n")
        and style % 3 != 2
        and not value.startswith(" ")
        and not any(line != line.rstrip() for line in value.splitlines())
    ):
        chomp = "+" if value.endswith("\n\n") else "" if value.endswith("\n") else "-"
        body = "".join(pad + line + "\n" if line else "\n" for line in value.splitlines())
        return f"|{chomp}\n{body}".rstrip("\n")
    plain = value
    if style % 3 == 0 and "\n" not in value and value == value.strip():
        try:
            if yaml.safe_load(f"k: {plain}") == {"k": value}:
                return plain
        except yaml.YAMLError:
            pass
    if style % 3 == 1 and "\n" not in value and "'" not in value and value == value.strip():
        return f"'{value}'"
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Writer:
    lines: list[str]

    def add(self, text: str) -> None:
        self.lines.append(text)


@st.composite
def commands(draw: st.DrawFn, section: str, depth: int = 0) -> list[tuple[object, int]]:
    """(command, style) pairs."""
    count = draw(st.integers(1, 3))
    out: list[tuple[object, int]] = []
    for _ in range(count):
        kind = draw(st.integers(0, 9 if depth == 0 else 3))
        style = draw(st.integers(0, 5))
        if kind <= 4:
            out.append(({f"exec_{draw(contexts)}": draw(values)}, style))
        elif kind == 5:
            out.append(
                (
                    {
                        "pipe": [
                            {"exec_local": draw(lines)},
                            {f"exec_{draw(contexts)}": draw(lines)},
                        ]
                    },
                    style,
                )
            )
        elif kind == 6:
            out.append(
                ({"rescue": [{"exec_local": draw(lines)}, {"exec_local": draw(lines)}]}, style)
            )
        elif kind == 7:
            hook = draw(
                st.sampled_from(
                    [f"on_{section}_clean", "on_clean", f"on_{section}_init", "on_export_clean"]
                )
            )
            inner = [c for c, _ in draw(commands(section, depth + 1))]
            out.append(({hook: inner}, style))
        elif kind == 8:
            out.append(({"on_checkpoint": draw(policies)}, style))
        else:
            inner = [c for c, _ in draw(commands(section, depth + 1))]
            out.append(({"group": inner}, style))
    return out


def _write_commands(w: Writer, items: list[tuple[object, int]], indent: int, note: bool) -> None:
    pad = " " * indent
    for index, (item, style) in enumerate(items):
        assert isinstance(item, dict)
        ((key, value),) = item.items()
        if note and index == 1:
            w.add(f"{pad}# inside the microstep")
        if isinstance(value, list):
            if style % 4 == 3:
                w.add(f"{pad}- {key}: {json.dumps(value, ensure_ascii=False)}")
                continue
            w.add(f"{pad}- {key}:")
            _write_commands(w, [(v, style) for v in value], indent + 2, False)
        else:
            w.add(f"{pad}- {key}: {_scalar(str(value), style, indent + 4)}")


@dataclass
class Micro:
    name: str
    items: list[tuple[object, int]]
    lead: list[str] | None
    inner_comment: bool


@st.composite
def microsteps(draw: st.DrawFn, section: str) -> list[Micro]:
    chosen = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    return [
        Micro(
            name,
            draw(commands(section)),
            draw(st.none() | comments),
            draw(st.booleans()),
        )
        for name in chosen
    ]


def _write_microsteps(w: Writer, micros: list[Micro], indent: int, blank: bool) -> None:
    pad = " " * indent
    for micro in micros:
        if blank:
            w.add("")
        for line in micro.lead or []:
            w.add(f"{pad}# {line}")
        w.add(f"{pad}- {micro.name}:")
        _write_commands(w, micro.items, indent + 2, micro.inner_comment)


@dataclass
class Recipe:
    files: dict[str, str]
    path: str


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    files: dict[str, str] = {}
    extend = draw(st.booleans())
    sections: dict[str, list[str]] = {}
    macro_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    for name in macro_names:
        section = draw(st.sampled_from(["bootstrap", "setup", "export"]))
        micros = draw(microsteps(section))
        kind = draw(st.integers(0, 3))
        w = Writer([])
        if kind == 0:  # embedded
            w.add(f"  - {name}:")
            if draw(st.booleans()):
                w.add("    - local_var: $${v}")
            _write_microsteps(w, micros, 4, False)
        else:  # a step file, maybe with variables, overrides or a selection
            f = Writer([])
            if draw(st.booleans()):
                f.add("# A generated step file.")
            if draw(st.booleans()):
                f.add("- stepvar: default")
            _write_microsteps(f, micros, 0, draw(st.booleans()))
            files[f"steps/{section}/{name}.yaml"] = "\n".join(f.lines) + "\n"
            if kind == 1:
                w.add(f"  - {name}")
            elif kind == 2:
                w.add(f"  - {name}:\n    - stepvar: $${{w}}")
            else:
                chosen = draw(
                    st.lists(st.sampled_from([m.name for m in micros]), min_size=1, unique=True)
                )
                w.add(f"  - {name}:")
                w.lines.extend(f"    - {m}" for m in chosen)
        sections.setdefault(section, []).extend(w.lines)
    text = ["# DESCRIPTION: generated", "#", "---"]
    if extend:
        text.append("extend: parent/base.yaml")
        files["parent/base.yaml"] = (
            "global:\n  v: parent\nsetup:\n  - inherited:\n    - hi:\n      - exec_local: echo hi\n"
        )
    text += ["global:", "  v: vee", f"  w: {_scalar('double u', draw(st.integers(0, 2)), 4)}", ""]
    for section, lines_ in sections.items():
        if draw(st.booleans()):
            text.append(f"# the {section} section")
        text.append(f"{section}:")
        if extend and section == "setup":
            text.append('  - "@base"')
        text += lines_
    files["recipe.yaml"] = "\n".join(text) + "\n"
    return Recipe(files, "recipe.yaml")


def _materialise(root: Path, recipe: Recipe) -> Path:
    for relative, text in recipe.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        yaml.safe_load(text)  # the generator writes valid YAML
    return root / recipe.path


@contextlib.contextmanager
def _materialised(recipe: Recipe) -> Iterator[tuple[Path, Path, Path, Path, list]]:
    """The recipe written in a scratch dir: (root, work dir, recipe path, build, plan).

    A generated recipe may be invalid (the example is dropped); any other error is a bug.
    """
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        work = root / "work"
        path = _materialise(work, recipe)
        build = root / "build"
        try:
            plan = plan_of(path, work, build)
        except KameleonError:
            assume(False)
        yield root, work, path, build, plan


@SETTINGS
@given(recipe=recipes())
def test_generated_recipes_round_trip(recipe: Recipe):
    with _materialised(recipe) as (root, work, path, build, before):
        notebook = work / "recipe.ipynb"
        recipe_notebook(str(path), str(notebook))
        cells = read_notebook(str(notebook))
        assert session_plan(cells, cwd=work, build=build) == before
        files = snapshot(work)
        assert export_notebook(str(notebook)).written == ()
        assert snapshot(work) == files
        out = root / "out" / "x"
        report = export_notebook(str(notebook), str(out))
        assert plan_of(out / report.export.recipe, work, build) == before
        recipe_notebook(str(out / "recipe.yaml"), str(out / "recipe.ipynb"))
        assert microstep_cells(read_notebook(str(out / "recipe.ipynb"))) == microstep_cells(cells)


def _bodies(texts: st.SearchStrategy[str], values_: st.SearchStrategy[str]) -> st.SearchStrategy:
    return st.one_of(
        values_.map(lambda v: ("shell", v.rstrip("\n") or "true")),
        st.lists(st.tuples(contexts, texts), min_size=1, max_size=3).map(
            lambda cs: ("yaml", "".join(f"- exec_{c}: {json.dumps(v)}\n" for c, v in cs))
        ),
    )


new_bodies = _bodies(lines, values)
# a scratch notebook has no globals: no $${v}
plain_lines = lines.map(lambda t: t.replace("$${v}", "v").replace("$${w}", "w"))
plain_values = values.map(lambda t: t.replace("$${v}", "v").replace("$${w}", "w"))
notebook_bodies = _bodies(plain_lines, plain_values)


@SETTINGS
@given(recipe=recipes(), data=st.data())
def test_an_edited_cell_changes_only_its_microstep(recipe: Recipe, data: st.DataObject):
    with _materialised(recipe) as (root, work, path, build, _before):
        notebook = work / "recipe.ipynb"
        recipe_notebook(str(path), str(notebook))
        cells = read_notebook(str(notebook))
        indexes = [i for i, c in enumerate(cells) if c.source.startswith("%%microstep ")]
        index = data.draw(st.sampled_from(indexes))
        kind, body = data.draw(new_bodies)
        first = cells[index].source.split("\n", 1)[0]
        line = first.split(" --context ")[0] if kind == "yaml" else first
        if kind == "yaml" and " --context " in first:
            line = (
                first.split(" --context ")[0]
                + " "
                + " ".join(first.split(" --context ")[1].split(" ")[1:])
            )
        cells[index] = NotebookCell(
            CellKind.CODE, f"{line.rstrip()}\n{body}", cells[index].metadata
        )
        edited = work / "edited.ipynb"
        write_notebook(cells, str(edited))
        try:
            expected = session_plan(cells, cwd=work, build=build)
        except KameleonError:  # e.g. a "---" that upstream's text deletes: no recipe either
            assume(False)
        out = root / "out"
        report = export_notebook(str(edited), str(out))
        assert plan_of(out / report.export.recipe, work, build) == expected
        # the other files are copies of the originals (the recipe's extend is re-pointed)
        origin = cells[index].kameleon.get("origin")
        for relative, text in recipe.files.items():
            if relative != origin and not relative.startswith("parent/"):
                moved = text.replace("extend: parent/", "extend: ../work/parent/")
                assert (out / relative).read_text() == moved, relative


markdown_texts = st.from_regex(r"[A-Z][a-z ,.]{0,30}(\n\n[A-Z][a-z ,.*`]{0,30})?", fullmatch=True)


@st.composite
def notebooks(draw: st.DrawFn) -> list[NotebookCell]:
    cells = [NotebookCell(CellKind.CODE, "%load_ext kameleon_nb")]
    seen: set[str] = set()
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            cells.append(NotebookCell(CellKind.MARKDOWN, draw(markdown_texts)))
        name = draw(names)
        section = draw(st.sampled_from([None, "bootstrap", "setup", "export"]))
        macrostep = draw(st.none() | names)
        if name in seen:  # a cell without --section would locate the first one
            continue
        seen.add(name)
        line = f"%%microstep {name}"
        if section:
            line += f" --section {section}"
        if macrostep:
            line += f" --macrostep {macrostep}"
        kind, body = draw(notebook_bodies)
        if kind == "shell":
            line += f" --context {draw(contexts)}"
        if draw(st.booleans()):
            line += f" --on-checkpoint {draw(st.sampled_from(['redo', 'skip', 'only']))}"
        cells.append(NotebookCell(CellKind.CODE, f"{line}\n{body}"))
    return cells


@SETTINGS
@given(cells=notebooks())
def test_generated_notebooks_round_trip(cells: list[NotebookCell]):
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        build = root / "build"
        write_notebook(cells, str(root / "nb.ipynb"))
        try:
            expected = session_plan(cells, cwd=root, build=build, name="nb")
        except KameleonError:  # e.g. a "---" that upstream's text deletes
            assume(False)
        out = root / "out"
        report = export_notebook(str(root / "nb.ipynb"), str(out))
        assert plan_of(out / report.export.recipe, out, build) == expected
        recipe_notebook(str(out / "nb.yaml"))
        again = read_notebook(str(out / "nb.ipynb"))
        assert session_plan(again, cwd=out, build=build) == expected
        # the comments come back as the Markdown above their microstep
        for cell_list in (cells, again):
            for index, cell in enumerate(cell_list):
                if (
                    cell.source.startswith("%%microstep")
                    and index
                    and (cell_list[index - 1].kind is CellKind.MARKDOWN)
                ):
                    assert cell_list[index - 1].source.strip()
        before = _comments(cells)
        after = _comments(again)
        assert {k: v for k, v in after.items() if k in before} == before
        files = snapshot(out)
        export_notebook(str(out / "nb.ipynb"))
        assert snapshot(out) == files


def _comments(cells: list[NotebookCell]) -> dict[str, str]:
    """Microstep name → the Markdown right above its cell (a run of cells, joined)."""
    found = {}
    for index, cell in enumerate(cells):
        if cell.kind is not CellKind.CODE:
            continue
        magic = magic_of(split_cell(cell.source)[0])
        if not magic or magic[0] != "%%microstep":
            continue
        run: list[str] = []
        above = index - 1
        while (
            above >= 0
            and cells[above].kind is CellKind.MARKDOWN
            and (cells[above].role is None or cells[above].role.value == "comment")
        ):
            run.insert(0, cells[above].source.strip())
            above -= 1
        if run:
            found[magic[1].split()[0]] = "\n\n".join(run)
    return found
