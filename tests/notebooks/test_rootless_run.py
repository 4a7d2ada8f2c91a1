"""The teaching notebooks run without root (Binder has none): nbval, as an unprivileged user.

As root, the notebooks are collected by the suite itself (``pytest`` runs them with
nbval, in their root variants); this test runs them once more as ``nobody`` on a copy
of the checkout (``scripts/as-user.sh``), which takes their rootless variants.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.shell,
    pytest.mark.jupyter,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: the suite runs them"),
    pytest.mark.timeout(900),
]


@pytest.fixture
def open_dir():
    """A scratch directory another user can reach (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="knb-notebooks-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_every_notebook_runs_as_an_unprivileged_user(open_dir):
    user = os.environ.get("KNB_TEST_USER", "nobody")
    work = open_dir / "as-user"
    result = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "as-user.sh"),
            "--keep",
            user,
            "--",
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "notebooks",
        ],
        cwd=ROOT,
        env={**os.environ, "KNB_VENV": sys.prefix, "KNB_AS_USER_DIR": str(work)},
        capture_output=True,
        text=True,
        check=False,
        timeout=880,
    )
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert " passed" in result.stdout, report
    builds = work / "src" / "notebooks" / "build"
    assert (builds / "busybox-rootless" / "rootfs" / "etc" / "motd").is_file()  # notebook 2
    assert not (builds / "busybox").exists()  # the chroot variant needs root
