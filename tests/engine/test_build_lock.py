"""A build directory has one owner at a time; a dead owner blocks no one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.buildcheck import assert_nothing_left

RECIPE = """\
checkpoint: simple.yaml
global:
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}
  in_context:
    cmd: bash
    workdir: $${kameleon_cwd}
setup:
  - work:
    - first:
      - exec_out: echo one >> trace
    - slow:
      - exec_out: touch started && while [ ! -e go ]; do sleep 0.05; done
      - exec_out: echo two >> trace
"""


def _kameleon(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", *args, "lock.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    (tmp_path / "lock.yaml").write_text(RECIPE)
    return tmp_path / "build" / "lock"


@pytest.mark.parametrize("second", [["-c"], ["-l"], ["--clean"]])
def test_a_second_build_is_refused_at_once_naming_the_holder(
    tmp_path: Path, build_dir: Path, second: list[str]
) -> None:
    first = _kameleon(tmp_path, "-c")
    try:
        _wait_for(build_dir / "started", first)
        began = time.monotonic()
        refused = _kameleon(tmp_path, *second)
        output = refused.communicate(timeout=60)[0]
        elapsed = time.monotonic() - began
        assert refused.returncode == 7, output
        lines = output.strip().splitlines()
        assert len(lines) == 1, output
        assert re.fullmatch(
            rf"Error: The build directory {re.escape(str(build_dir))} is in use by pid "
            rf"{first.pid} \(.*kameleon_nb build --script -c lock\.yaml\), since "
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\. Wait for it to end .*--build-path",
            lines[0],
        ), lines[0]
        assert elapsed < 10  # at once (a Python start-up), never a wait for the holder
        (build_dir / "go").touch()
        first_output = first.communicate(timeout=60)[0]
        assert first.returncode == 0, first_output
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    # the refused command changed nothing: one build ran, its checkpoints are intact
    assert (build_dir / "trace").read_text() == "one\ntwo\n"
    rerun = _kameleon(tmp_path, "-c")
    output = rerun.communicate(timeout=60)[0]
    assert rerun.returncode == 0, output
    assert "Restoring last build from step: setup/work/slow" in output, output


def test_a_killed_holder_blocks_no_one(tmp_path: Path, build_dir: Path) -> None:
    first = _kameleon(tmp_path, "-c")
    _wait_for(build_dir / "started", first)
    first.send_signal(signal.SIGKILL)  # the build process only: no clean-up of its own
    first.communicate()
    assert_nothing_left(build_dir)
    (build_dir / "go").touch()
    second = _kameleon(tmp_path, "-c")
    output = second.communicate(timeout=60)[0]
    assert second.returncode == 0, output
    assert "Restoring last build from step: setup/work/first" in output, output
    assert (build_dir / "trace").read_text() == "one\ntwo\n"
