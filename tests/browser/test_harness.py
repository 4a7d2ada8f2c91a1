"""The browser harness, proven on stand-in notebooks: Run All, widget clicks, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

# Through lab.py: it skips this module when Playwright or Chromium is missing.
from .lab import DATA, Lab, LabError, expect

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

ROWS = "def checkpoint_row("  # text of the cell that shows one HBox row per checkpoint
GRID = "widgets.GridBox("  # text of the cell that shows the same rows in a GridBox


def test_restore_button_on_a_row_acts_in_the_kernel_and_on_the_page(lab: Lab) -> None:
    nbdir = lab.copy(DATA, "notebooks")
    nb = lab.open(nbdir / "restore_rows.ipynb")
    nb.run_all()

    assert "3 checkpoints shown" in nb.output_text("len(CHECKPOINTS)")
    expect(nb.output(ROWS)).to_contain_text("nothing restored yet")
    assert not (nbdir / "restored.txt").exists()

    nb.click("Restore", cell=ROWS, row="d4e5f6")

    expect(nb.output(ROWS)).to_contain_text("restored d4e5f6 (setup/packages)")
    assert (nbdir / "restored.txt").read_text() == "d4e5f6\n"
    assert "restored d4e5f6" in lab.text()
    # The user settings of the harness keep JupyterLab's news toast off the screenshots.
    expect(lab.page.locator(".Toastify__toast")).to_have_count(0)
    shot = lab.screenshot("browser-restore-rows")
    assert shot.stat().st_size > 0


def test_restore_button_on_a_grid_row_is_found_by_its_line(lab: Lab) -> None:
    nbdir = lab.copy(DATA, "notebooks")
    nb = lab.open(nbdir / "restore_rows.ipynb")
    nb.run_all()

    nb.click("Restore", cell=GRID, row="0718aa")

    expect(nb.output(GRID)).to_contain_text("grid: restored 0718aa")
    assert (nbdir / "grid-restored.txt").read_text() == "0718aa\n"
    lab.screenshot("browser-restore-grid", nb.cell(GRID))


def test_run_all_reports_the_failing_cell_with_a_screenshot(lab: Lab) -> None:
    nb = lab.open(lab.copy(DATA / "failing.ipynb"))

    with pytest.raises(LabError) as failure:
        nb.run_all()

    message = str(failure.value)
    assert "cells [3] did not run" in message
    assert "RuntimeError: checkpoint 42 is missing" in message
    shot = Path(message.split("screenshot: ", 1)[1].split("\n", 1)[0])
    assert shot.is_file()
    assert str(lab.server.log_path) in message
