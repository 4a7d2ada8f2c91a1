"""``--until STEP``: build up to a step and stop there (the tree is then at that step)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.engine.buildcheck import cli

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.shell]


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "hello", tmp_path / "hello")
    return tmp_path / "hello" / "hello.yaml"


def _ran(out: str) -> list[str]:
    return re.findall(r"^Step \d+: (\S+)", out, re.MULTILINE)


def test_a_build_stops_after_the_step(hello: Path) -> None:
    rc, out = cli(
        "build", str(hello), "-b", str(hello.parent / "b"), "--until", "setup/hello/say_hello"
    )
    assert rc == 0, out
    assert _ran(out) == ["bootstrap/prepare/make_tree", "setup/hello/say_hello"]
    assert "Stopped after step setup/hello/say_hello (--until)" in out
    assert "_clean_setup" not in out  # no clean step: the tree stays as the step left it


def test_until_then_the_rest_from_its_checkpoint(hello: Path) -> None:
    build = str(hello.parent / "b")
    rc, out = cli("build", str(hello), "-b", build, "-c", "--until", "setup/hello/say_hello")
    assert rc == 0, out
    rc, out = cli("build", str(hello), "-b", build, "-c")
    assert rc == 0, out
    assert _ran(out)[:2] == ["bootstrap/prepare/make_tree", "setup/hello/say_hello"]
    assert "Restoring last build from step: setup/hello/say_hello" in out


def test_an_unknown_until_step_is_one_line(hello: Path) -> None:
    rc, out = cli("build", str(hello), "-b", str(hello.parent / "b"), "--until", "nosuch")
    assert rc == 7, out
    assert out.strip().splitlines()[-1] == (
        "Error: Unknown step 'nosuch' for --until: give a microstep's id or "
        "section/macrostep/microstep (kameleon build -d -l, or %kameleon plan, lists them)"
    )
