"""kameleon_nb's own state files on a full disk: a clear error, nothing half-written."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import StepId
from kameleon_nb.engine.builddir import CheckpointRecords
from kameleon_nb.errors import BuildError

pytestmark = pytest.mark.root


@pytest.fixture
def full_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root (a small tmpfs)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        (mount / "state" / ".kameleon_nb" / "checkpoints").mkdir(parents=True)
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as stream:
            while True:  # fill it up
                stream.write(b"x" * 4096)
                stream.flush()
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_names_the_file_and_leaves_no_partial_file(full_disk: Path) -> None:
    records = CheckpointRecords(str(full_disk / "state"))
    with pytest.raises(BuildError, match=r"cannot write .*0123456789ab\.vars\.json: .*space"):
        records.save(StepId("0123456789ab"), {ContextName.LOCAL: "x" * 200_000}, slug="s/m/x")
    assert os.listdir(records.directory) == []
    assert records.get(StepId("0123456789ab")) is None
