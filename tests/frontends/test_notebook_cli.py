"""``kameleon notebook`` and ``kameleon export-recipe``: output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kameleon_nb.frontends.notebook.files import CellKind, NotebookCell, write_notebook
from tests.frontends.notebook_helpers import copy_tree, snapshot

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"


@pytest.fixture
def hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = copy_tree(HELLO, tmp_path / "hello")
    monkeypatch.chdir(work)
    return work


def test_notebook_then_export_recipe(hello, kameleon):
    code, out = kameleon("notebook", "hello.yaml")
    assert code == 0
    assert (
        out
        == f"Wrote {hello}/hello.ipynb: 15 cells, 5 microstep cells (recipe {hello}/hello.yaml)\n"
    )
    files = snapshot(hello)
    code, out = kameleon("export-recipe", "hello.ipynb")
    assert code == 0
    assert out == (f"Exported recipe 'hello' to {hello}/hello.yaml\n  unchanged: hello.yaml\n")
    assert snapshot(hello) == files
    code, out = kameleon("export-recipe", "hello.ipynb", "-o", "../out")
    assert code == 0
    assert out.splitlines()[1] == "  wrote: hello.yaml, steps/setup/hello.yaml"
    assert (hello.parent / "out" / "hello.yaml").read_text() == (hello / "hello.yaml").read_text()


def test_notebook_output_and_globals(hello, kameleon):
    code, out = kameleon("notebook", "-g", "user_name:bob", "hello", "-o", "nb/x.ipynb")
    assert code == 0, out
    text = (hello / "nb" / "x.ipynb").read_text()
    assert '"%%kameleon recipe ../hello.yaml -g user_name:bob\\n"' in text


def test_left_out_cells_are_listed(hello, kameleon):
    cells = [
        NotebookCell(CellKind.CODE, "%%microstep a --context local\necho a"),
        NotebookCell(CellKind.CODE, "%kameleon build"),
        NotebookCell(CellKind.MARKDOWN, "The end."),
    ]
    write_notebook(cells, str(hello / "scratch.ipynb"))
    code, out = kameleon("export-recipe", "scratch.ipynb", "-o", "scratch")
    assert code == 0
    assert out.splitlines()[-1] == (
        'Left out 2 cells that are not part of the recipe: cell 2 ("%kameleon build"), '
        'cell 3 ("The end.")'
    )


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["notebook"], 15, 'Error: ERROR: "kameleon notebook" takes one recipe'),
        (["export-recipe"], 15, 'Error: ERROR: "kameleon export-recipe" was called with no'),
        (["notebook", "nothere.yaml"], 16, "Error: No such file or directory @ rb_sysopen - "),
        (["export-recipe", "nothere.ipynb"], 16, "Error: No such file or directory - "),
        (["export-recipe", "hello.yaml"], 11, "/hello.yaml:1:1: not a Jupyter notebook (invalid"),
        (["export-recipe", "bad.ipynb"], 11, 'Error: bad.ipynb, cell 1 ("%%microstep"): '),
        (["notebook", "hello.yaml", "-o", "exists.ipynb"], 15, "exists.ipynb exists; pass --force"),
    ],
)
def test_errors_are_one_line(hello, kameleon, argv, status, message):
    write_notebook([NotebookCell(CellKind.CODE, "%%microstep\necho")], str(hello / "bad.ipynb"))
    (hello / "exists.ipynb").write_text("{}")
    code, out = kameleon(*argv)
    assert code == status, out
    assert out.startswith("Error: "), out
    assert message in out, out
    assert out.count("\n") <= 2
    assert "Traceback" not in out


def test_the_cli_runs_without_jupyter(hello, tmp_path):
    # import-linter forbids it statically; this checks it at run time too
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('IPython', 'ipywidgets', 'nbformat'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from kameleon_nb.frontends.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "notebook", "hello.yaml"],
        cwd=hello,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    run = subprocess.run(
        [sys.executable, "-c", script, "export-recipe", "hello.ipynb", "-o", str(tmp_path / "o")],
        cwd=hello,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
