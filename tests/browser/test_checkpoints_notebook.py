"""Notebook 2 in a real JupyterLab and Chromium: Run All, then a table's Restore button."""

from __future__ import annotations

import os

import pytest

from .lab import REPO, Lab, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.jupyter,
    pytest.mark.slow,
    pytest.mark.timeout(600),
]

STEP = "setup/configure_system/set_hostname"


def test_restore_from_the_checkpoint_table(lab: Lab) -> None:
    lab.copy(REPO / "examples")  # the notebook loads ../examples/...
    notebooks = lab.copy(REPO / "notebooks")
    nb = lab.open(notebooks / "02-checkpoints.ipynb")
    nb.run_all(timeout_ms=300_000)

    # after Run All the motd is the one of the last cell
    assert "Restored, then changed: kameleon-busybox" in nb.output_text("%%microstep motd")
    # every table of the notebook froze as a later cell changed the session (no controls
    # left, the rows as they were): show a live one
    assert nb.output("%kameleon checkpoints").locator("select").count() == 0
    table = nb.cells().count()
    nb.run_new_cell("%kameleon checkpoints")
    nb.choose(STEP, cell=table)
    nb.click("Restore", cell=table)
    clicked = nb.output(table)
    expect(clicked).to_contain_text(f"({STEP}):", timeout=30_000)
    status = clicked.inner_text()
    assert "the files and the context shells' variables are back at that step" in status
    lab.screenshot("02-checkpoints-restore")

    # the appliance is back at that step: seen from inside it, through a new cell
    output = nb.run_new_cell("%kameleon shell in cd /etc && ls -1")
    expect(output).to_contain_text("hostname", timeout=60_000)
    listing = output.inner_text().split()
    assert listing == ["group", "hostname", "passwd"]  # no motd: a later step made it
    rootless = os.geteuid() != 0 or os.environ.get("KAMELEON_NB_ROOTLESS") == "1"
    if rootless:  # the tree is a plain directory on this machine: look at it too
        etc = notebooks / "build" / "busybox-rootless" / "rootfs" / "etc"
        assert sorted(p.name for p in etc.iterdir()) == ["group", "hostname", "passwd"]
    lab.screenshot("02-checkpoints-after-restore")
