"""A command that asks the terminal for a password fails at once, never waits."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

RECIPE = """\
global:
  out_context:
    cmd: bash
    workdir: $${{kameleon_cwd}}
  in_context:
    cmd: bash
    workdir: $${{kameleon_cwd}}
setup:
  - ask:
    - password:
      - exec_{context}: read -r -s -p "Password? " secret < /dev/tty
"""


@pytest.mark.parametrize("context", ["local", "out", "in"])
def test_reading_the_terminal_fails_at_once_in_a_script_build(tmp_path: Path, context: str) -> None:
    (tmp_path / "tty.yaml").write_text(RECIPE.format(context=context))
    began = time.monotonic()
    # the test's own terminal (if any) is kameleon's: its contexts must still have none
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", "tty.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - began
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "/dev/tty: No such device or address" in output
    assert f"in the {context} context, exit status 1" in output
    assert elapsed < 60  # a few seconds at most: nothing waits for a user
