"""The fault campaign's fuzz harness keeps and replays every failing run (issue 12).

``benchmarks/fault_campaign.py --part fuzz`` counted 19 runs over 1 GiB and 20 of
its hangs without their inputs: a mutation made the recipe ``/dev/zero``, a FIFO or
``/dev/tty`` and a later mutation read it, in the harness's child, before kameleon ran
(so before its memory limit, and before it recorded anything).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fault_campaign as fc  # noqa: E402


@pytest.mark.parametrize("kind", ["fifo", "devzero", "urandom", "tty", "dir", "dangling", "loop"])
def test_a_special_recipe_file_is_never_read_by_a_later_mutation(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    recipe = tree / "r.yaml"
    recipe.write_text("setup: []\n")
    mutator = fc.Mutator(fc.random.Random(1), tree, recipe)
    while mutator.special(recipe) != kind:  # the kinds come from the random generator
        pass
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: bounded, as the campaign's
        status = 1
        try:
            os.setsid()  # no controlling terminal: /dev/tty cannot be opened
            resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
            for _ in range(20):
                mutator.text_mutation()
                mutator.h_non_utf8_content()
            status = 0 if not any(m.startswith("text:") for m in mutator.done) else 2
        finally:
            os._exit(status)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("a mutation blocked on the special file")
    assert os.waitstatus_to_exitcode(status) == 0, "a mutation read the special file"
    with pytest.raises(OSError, match="not a regular file"):
        fc.read_bytes(recipe)


def _materialised(base: Path, wanted: str) -> tuple[fc.Source, int, Path, str, list[str]]:
    """The first task of seed 3 (local sources) whose mutations include ``wanted``."""
    sources = fc.local_sources()
    for index in range(2000):
        source = fc.pick_source(sources, 3, index)
        case = base / f"case-{index}"
        case.mkdir(parents=True)
        _, arg, mutations = fc.materialise(source, 3, index, case)
        if any(wanted in m for m in mutations):
            return source, index, case, arg, mutations
        fc.remove(case)
    raise AssertionError(f"no task of seed 3 makes {wanted}")


def _listing(tree: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``tree``: its kind and content (a link's target)."""
    found: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            kind = fc._entry_kind(path) or "?"
            content = ""
            if kind == "file":
                content = fc.hashlib.sha256(path.read_bytes()).hexdigest()
            elif kind == "symlink":
                content = os.readlink(path)
            found[str(path.relative_to(tree))] = (kind, content)
    return found


@pytest.mark.parametrize(
    "wanted", ["hostile:huge-steps", "special:fifo", "special:dangling", "hostile:dirname"]
)
def test_a_failing_run_is_kept_and_rebuilt_as_it_was(tmp_path: Path, wanted: str) -> None:
    source, index, case, arg, mutations = _materialised(tmp_path / "runs", wanted)
    meta = {"source": source.name, "stage": "run", "mutations": mutations, "arg": arg}
    meta["argv"] = ["info", arg]
    result = fc.FuzzResult(
        fc.FuzzTask(index, "info"), source, 3, None, 0, 0, 10.0, "", "", meta, case
    )
    sample = fc.save_failure(result, ["hang"], tmp_path / "out")
    record = json.loads((sample / "result.json").read_text())
    assert record["source"] == source.name
    assert record["source_root"] == str(source.root)
    assert record["mutations"] == mutations
    assert (record["seed"], record["index"], record["mode"]) == (3, index, "info")
    saved = sum(1 for p in sample.rglob("*") if p.is_file())
    assert saved < 10, "only what the mutations wrote is kept"
    again = tmp_path / "again"
    again.mkdir()
    cwd, replay_arg, replay_mutations = fc.restore(sample, again)
    assert (cwd, replay_arg, replay_mutations) == (again, arg, mutations)
    assert _listing(again) == _listing(case)


def test_the_printed_command_replays_a_saved_run(tmp_path: Path) -> None:
    source, index, case, arg, mutations = _materialised(tmp_path / "runs", "hostile:var-cycle")
    meta = {"source": source.name, "stage": "run", "mutations": mutations, "arg": arg}
    meta["argv"] = ["build", "-d", "-l", arg]
    result = fc.FuzzResult(fc.FuzzTask(index, "l"), source, 3, None, 0, 0, 10.0, "", "", meta, case)
    sample = fc.save_failure(result, ["hang"], tmp_path / "out")
    command = fc.replay_command(sample, 10.0)
    assert command.startswith(f"{fc.PYTHON} {ROOT}/benchmarks/fault_campaign.py ")
    done = subprocess.run(
        [*shlex.split(command), "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # it passes now: one error line
    assert f"{sample}: clean; exit 6," in done.stdout
    assert f"source {source.name}; mutations {mutations}" in done.stdout
    assert "Error: " in done.stdout
    assert f"by hand: cd {tmp_path}/work/replay/{sample.name} && " in done.stdout
