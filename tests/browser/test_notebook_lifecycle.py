"""A notebook's life in a real JupyterLab and Chromium (issue 14's browser acceptance).

A person builds with checkpoints, deletes a ``%%microstep`` cell and saves: the recipe no
longer has that microstep (a cell run after the save stays). They rebuild three times,
each time with a checkpoint table: the widget models neither the kernel nor the page
holds grow. They close the notebook and reopen it without a kernel: the build summaries
and the tables the later ones superseded still read.

The last table, live when the notebook was saved, reads too: its rows are a display of
their own (only its controls are a widget). A ``%kameleon plan`` that drops a deleted
cell's microstep changes the recipe: the table freezes as it was, as for any later cell
that changes the session.

Everything runs rootless and in seconds: plain bash contexts on a directory tree,
checkpointed with rsync. Screenshots go to ``tests/artifacts/lifecycle-*.png``.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.frontends.recipes import DIRECTORY_APPLIANCE

from .lab import Lab, Notebook, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.jupyter,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

RECIPE = f"%%kameleon recipe lifecycle.yaml\n{DIRECTORY_APPLIANCE}  hostname: lifecycle"

MAKE_TREE = "%%microstep make_tree --section bootstrap --macrostep base --context out"
HOSTNAME = "%%microstep hostname --macrostep system"
MOTD = "%%microstep motd --macrostep system"
USERS = "%%microstep users --macrostep system"
BUILD = "%kameleon build -c"
TABLE = "%kameleon checkpoints"

CELLS = [
    "%load_ext kameleon_nb",
    RECIPE,
    f"{MAKE_TREE}\nmkdir -p $${{rootfs}}/etc",
    f'{HOSTNAME}\necho "$${{hostname}}" > etc/hostname',
    f'{MOTD}\necho "welcome on $${{hostname}}" > etc/motd',
    f'{USERS}\necho "student:x:1000:1000::/home/student:/bin/sh" > etc/passwd',
    BUILD,
    TABLE,
]

# typed into new cells, as a person would
PLAN = "%kameleon plan"
ISSUE = '%%microstep issue --macrostep system\necho "$${hostname}" > etc/issue'
REBUILD = "%kameleon build -c -F bootstrap/base/make_tree\n%kameleon checkpoints"
COUNT = "import ipywidgets.widgets.widget as w; print('kernel widget models:', len(w._instances))"

DONE = "Build of 'lifecycle' done:"
DROPPED = "Dropped the microsteps of cells no longer in lifecycle.ipynb: setup/system/motd"


def write_notebook(path: Path, sources: list[str]) -> Path:
    """A notebook (nbformat 4.5, cell ids) of code cells with these sources, never run."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": uuid.uuid4().hex[:8],
            "metadata": {},
            "outputs": [],
            "source": source.splitlines(keepends=True),
        }
        for source in sources
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path


def saved_sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


def kernel_models(nb: Notebook) -> int:
    """The widget models the kernel holds, read from a new cell's output."""
    text = nb.run_new_cell(COUNT).inner_text()
    found = re.search(r"kernel widget models: (\d+)", text)
    assert found, f"no count in {text!r}"
    return int(found.group(1))


def reopen_without_kernel(lab: Lab, nb: Notebook) -> Notebook:
    """Save, shut the kernel down, close the tab; open the saved file again, No Kernel."""
    nb.save()
    nb.shutdown_kernel()
    nb.close()
    sessions = [s["path"] for s in lab.server.api("GET", "/api/sessions")]
    assert not [p for p in sessions if p.endswith(f"/{nb.path.name}")], f"left: {sessions}"
    return lab.open(nb.path, kernel=False)


def test_delete_a_cell_rebuild_three_times_reopen_without_kernel(lab: Lab) -> None:
    path = write_notebook(lab.workdir / "lifecycle" / "lifecycle.ipynb", CELLS)
    nb = lab.open(path)
    nb.run_all()
    expect(nb.output(BUILD)).to_contain_text(f"{DONE} 4 run, 4 checkpoints created")
    expect(nb.output(TABLE)).to_contain_text("setup/system/motd")

    # one live checkpoint table: the widget models it takes, in the kernel and the page
    kernel = [kernel_models(nb)]
    page = [nb.widget_models()]

    # delete the motd cell and save; run a new cell: the plan reads the saved notebook
    nb.delete_cell(MOTD)
    nb.save()
    assert not any(s.startswith(MOTD) for s in saved_sources(path))
    expect(nb.run_new_cell(ISSUE)).to_contain_text("setup/system/issue: ok")
    plan = nb.run_new_cell(PLAN)
    expect(plan).to_contain_text(DROPPED)  # motd only: the issue cell ran after the save
    expect(plan).to_contain_text("recipe 'lifecycle': 4 microsteps")
    rows = plan.locator("table tbody tr")
    expect(rows).to_have_count(4)
    names = [row.split("\t")[3] for row in rows.all_inner_texts()]
    assert names == ["make_tree", "hostname", "users", "issue"]
    plan.scroll_into_view_if_needed()
    lab.screenshot("lifecycle-01-after-delete-plan")

    # three rebuilds, each showing a table: the models stay as many as with the first table
    for rebuild in range(1, 4):
        output = nb.run_new_cell(REBUILD)
        expect(output).to_contain_text(f"{DONE} 3 run, 1 from checkpoint, 3 checkpoints created")
        # stale: motd, and users and issue as they were with motd before them
        expect(output.locator(".kameleon-checkpoints")).to_contain_text("7 (4 valid)")
        kernel.append(kernel_models(nb))
        page.append(nb.widget_models())
        # one live table in the page; each earlier one kept what it showed, as HTML
        expect(nb.panel.locator(".kameleon-checkpoints")).to_have_count(1)
        expect(nb.panel.locator(".kameleon-checkpoints-snapshot")).to_have_count(rebuild)
    print(f"widget models with the first table, then after rebuilds 1-3: {kernel=} {page=}")
    lab.screenshot("lifecycle-02-after-three-rebuilds")
    assert kernel[1] == kernel[2] == kernel[3], f"the kernel's models grew: {kernel}"
    assert page[1] == page[2] == page[3], f"the page's models grew: {page}"
    assert kernel[3] <= kernel[0], f"rebuilds left models behind in the kernel: {kernel}"
    assert page[3] <= page[0], f"rebuilds left models behind in the page: {page}"

    # close, reopen the saved notebook with No Kernel: what a later reader sees
    reopened = reopen_without_kernel(lab, nb)
    panel = reopened.panel
    expect(reopened.cells()).to_have_count(len(CELLS) + 1 - 1 + 2 + 2 * 3)
    expect(panel).not_to_contain_text("Error displaying widget")
    expect(reopened.output(PLAN)).to_contain_text(DROPPED)
    summaries = panel.get_by_text(DONE)
    expect(summaries).to_have_count(4)  # the first build and three rebuilds
    for index in range(4):
        expect(summaries.nth(index)).to_be_visible()
    expect(panel.get_by_text("microsteps: done")).to_have_count(4)  # the progress, as HTML
    snapshots = panel.locator(".kameleon-checkpoints-snapshot")
    expect(snapshots).to_have_count(3)  # the tables the next one superseded, as they were
    expect(snapshots.first).to_contain_text("Checkpoints of 'lifecycle': 4 (4 valid)")
    expect(snapshots.first.locator("tbody tr")).to_have_count(4)
    expect(snapshots.first.get_by_text("setup/system/motd")).to_be_visible()
    last = snapshots.last
    last.scroll_into_view_if_needed()
    expect(last).to_contain_text("Checkpoints of 'lifecycle': 7 (4 valid)")
    expect(last.locator("tbody tr")).to_have_count(7)
    for row in last.locator("tbody tr").all():
        expect(row).to_be_visible()
    expect(last.get_by_text("◀ the tree is here")).to_be_visible()
    lab.screenshot("lifecycle-03-reopened-without-kernel")


def test_the_last_table_reads_when_reopened(lab: Lab) -> None:
    """The last table was live when saved: its rows are a display of their own, so they read
    without a kernel (the controls under them are a widget, drawn only with one)."""
    path = write_notebook(
        lab.workdir / "live" / "lifecycle.ipynb",
        [CELLS[0], RECIPE, f"{MAKE_TREE}\nmkdir -p $${{rootfs}}/etc", BUILD, TABLE],
    )
    nb = lab.open(path)
    nb.run_all()
    expect(nb.output(TABLE).locator(".kameleon-checkpoints")).to_contain_text("1 (1 valid)")
    row = "bootstrap/base/make_tree"

    # without a kernel
    reopened = reopen_without_kernel(lab, nb)
    saved = json.loads(path.read_text())["metadata"]["widgets"]
    assert saved["application/vnd.jupyter.widget-state+json"]["state"], "no widget state saved"
    expect(reopened.output(BUILD)).to_contain_text(f"{DONE} 1 run, 1 checkpoints created")
    table = reopened.output(TABLE)
    table.scroll_into_view_if_needed()
    expect(table.locator(".kameleon-checkpoints")).to_contain_text("1 (1 valid)")
    expect(table.get_by_role("cell", name=row)).to_be_visible()
    expect(table.get_by_text("◀ the tree is here")).to_be_visible()
    lab.screenshot("lifecycle-04-last-table-reopened-without-kernel")
    reopened.close()

    # with a new kernel (Binder's case): the same rows, and the controls from the saved state
    renewed = lab.open(path)
    table = renewed.output(TABLE)
    expect(table.locator(".kameleon-checkpoints")).to_contain_text("1 (1 valid)")
    expect(table.get_by_role("cell", name=row)).to_be_visible()
    lab.screenshot("lifecycle-05-last-table-reopened-with-a-new-kernel")


def test_a_plan_that_drops_cells_freezes_the_table_as_it_was(lab: Lab) -> None:
    path = write_notebook(lab.workdir / "drop" / "lifecycle.ipynb", CELLS)
    nb = lab.open(path)
    nb.run_all()
    table = nb.output(TABLE)
    expect(table.locator(".kameleon-checkpoints")).to_contain_text("4 (4 valid)")

    nb.delete_cell(MOTD)
    nb.save()
    expect(nb.run_new_cell(PLAN)).to_contain_text(DROPPED)
    # the recipe changed: the table keeps what it showed, and has no controls any more ...
    frozen = table.locator(".kameleon-checkpoints-snapshot")
    expect(frozen).to_contain_text("4 (4 valid)")
    expect(table.locator(".kameleon-checkpoints")).to_have_count(0)
    expect(table.locator("select")).to_have_count(0)
    lab.screenshot("lifecycle-06-table-frozen-by-a-plan-that-dropped-a-cell", nb.cell(TABLE))
    # ... and a new table shows motd's checkpoint, and the users one after it, as stale
    fresh = nb.run_new_cell(TABLE)
    expect(fresh.locator(".kameleon-checkpoints")).to_contain_text("4 (2 valid)")
