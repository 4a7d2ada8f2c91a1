"""Each teaching notebook, run, then rendered by nbconvert to static HTML (what GitHub and
a saved notebook without a kernel show): every kameleon table and summary is there.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))

pytestmark = [pytest.mark.shell, pytest.mark.jupyter, pytest.mark.slow, pytest.mark.timeout(600)]


def _count(nb: nbformat.NotebookNode, magic: str) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code" and cell.source.lstrip().startswith(magic)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_rendered_html_shows_every_table(path: Path, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    work = tmp_path / "notebooks"
    work.mkdir()
    copy = work / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(work)}}).execute()
    nb.metadata.pop("widgets", None)  # as a saved notebook without widget state
    html, _ = HTMLExporter().from_notebook_node(nb)

    assert "Error displaying widget" not in html
    tables = html.count("kameleon-checkpoint-rows") + html.count("No checkpoint yet.")
    assert tables >= _count(nb, "%kameleon checkpoints")
    builds = _count(nb, "%kameleon build")
    assert html.count("kameleon-progress-snapshot") >= builds
    assert html.count("Build of &#x27;") + html.count("Build of '") >= builds
    # ... and as plain text (a terminal, nbconvert --to markdown): no "<... object>"
    plain = [
        str(output.data.get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "data" in output
    ]
    assert not [p for p in plain if re.fullmatch(r"<[\w.]+ object( at 0x[0-9a-f]+)?>", p)]
    assert sum(p.startswith("Build progress: ") for p in plain) >= builds
    if _count(nb, "%kameleon plan") or _count(nb, "%kameleon load"):
        assert "<table class='kameleon-nb'>" in html or '<table class="kameleon-nb">' in html
