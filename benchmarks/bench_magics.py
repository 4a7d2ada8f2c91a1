"""Overhead of a ``%%microstep`` cell (issue: Jupyter front end).

Runs ``%%microstep t --context local`` with the body ``true`` in an in-process
IPython, many times, and prints side by side:
* the command itself: ``true`` run directly in the same kind of context shell;
* the cell: ``ip.run_cell`` wall time (parse the line, define the microstep,
  re-resolve the recipe, run it, display the one-line summary);
* the overhead, cell minus command. Target: < 50 ms beyond the command.

The cell is measured on recipes of 0, 100 and 1,000 other microsteps (every cell
re-resolves the recipe, so the cost grows with it), without checkpointing (the same
cell again and again), and with checkpointing (the ``simple`` mechanism; each cell
is a new microstep at the end of the recipe, so each one is checkpointed: its
summary is checked).

Run: ``python benchmarks/bench_magics.py``
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.engine.shell import ContextShell

RUNS = 60


def command_alone() -> float:
    shell = ContextShell(ContextSpec(name=ContextName.LOCAL, cmd="bash", start_dir=os.getcwd()))
    shell.start()
    try:
        for _ in range(5):
            shell.run("true")
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            shell.run("true")
            times.append(time.perf_counter() - start)
    finally:
        shell.close()
    return statistics.median(times)


def recipe_text(others: int) -> str:
    steps = "\n".join(f'    - m{i}:\n      - exec_local: "true"' for i in range(others))
    body = f"setup:\n  - many:\n{steps}\n" if others else ""
    return "checkpoint: simple.yaml\n" + body


def cell_times(ip: InteractiveShell, workspace: Path, others: int, checkpoint: bool) -> float:
    path = workspace / f"r{others}.yaml"
    path.write_text(recipe_text(others))
    flag = " -c" if checkpoint else ""
    with capture_output():
        ip.run_cell(f"%kameleon load {path.name}{flag}")
        if checkpoint:  # bring the tree to the end of the recipe: new cells are in line
            ip.run_cell("%kameleon build -c")
        for i in range(5):
            ip.run_cell(f"%%microstep w{i} --context local\ntrue\n")
    times = []
    for i in range(RUNS):
        name = f"t{i}" if checkpoint else "t"
        with capture_output() as out:
            start = time.perf_counter()
            result = ip.run_cell(f"%%microstep {name} --context local\ntrue\n")
            times.append(time.perf_counter() - start)
        assert result.success, result.error_in_exec
        shown = out.outputs[-1].data["text/plain"]
        assert ("checkpoint " in shown) == checkpoint, shown
    return statistics.median(times)


def main() -> None:
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        config.InteractiveShell.warn_venv = False  # the caller's VIRTUAL_ENV is not ours
        ip = InteractiveShell.instance(config=config)
        ip.run_line_magic("load_ext", "kameleon_nb")
        alone = command_alone()
        print(f"command alone (true in a context shell): {alone * 1000:7.2f} ms (median)")
        print(f"{'recipe':>24} {'checkpointing':>14} {'cell':>10} {'overhead':>10}")
        for others in (0, 100, 1000):
            for checkpoint in (False, True):
                cell = cell_times(ip, Path(tmp), others, checkpoint)
                label = f"{others} other microsteps"
                print(
                    f"{label:>24} {'on' if checkpoint else 'off':>14} "
                    f"{cell * 1000:8.2f} ms {(cell - alone) * 1000:8.2f} ms"
                )
        ip.run_line_magic("unload_ext", "kameleon_nb")
        os.chdir(home)
    InteractiveShell.clear_instance()
    print("target: overhead < 50 ms")


if __name__ == "__main__":
    main()
