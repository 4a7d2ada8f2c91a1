"""Per-command overhead of the build engine (issue: build engine).

Builds a recipe of 1,000 microsteps, each one ``exec_local: "true"``, in one build
with real context shells, and prints, side by side:
* the median time per microstep (builder + shell protocol + the command itself),
  from the build's own events, and the mean over the whole build;
* the floor: the same 1,000 ``true`` lines piped into one bash;
* the ratio of the two. Target: median <= 0.5 ms per command.

Run: ``python benchmarks/bench_engine.py``
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import BuildEvent, MicrostepFinished, MicrostepStarted
from kameleon_nb.engine.recipes import open_recipe

COMMANDS = 1000


def floor_seconds() -> float:
    script = "true\n" * COMMANDS
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(["bash"], input=script, text=True, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def engine_run(workspace: Path) -> tuple[list[float], float]:
    steps = "\n".join(f'    - m{i}:\n      - exec_local: "true"' for i in range(COMMANDS))
    (workspace / "bench.yaml").write_text(f"setup:\n  - many:\n{steps}\n")
    recipe = open_recipe("bench.yaml", cwd=str(workspace))
    started: dict[int, float] = {}
    durations: list[float] = []

    def sink(event: BuildEvent) -> None:
        if isinstance(event, MicrostepStarted):
            started[event.order] = time.perf_counter()
        elif isinstance(event, MicrostepFinished) and event.order in started:
            durations.append(time.perf_counter() - started[event.order])

    with Builder(recipe, on_event=sink) as builder:
        builder.contexts.run(ContextName.LOCAL, "true")  # start the shell before measuring
        start = time.perf_counter()
        builder.build(BuildOptions())
        total = time.perf_counter() - start
    return durations, total


def main() -> None:
    floor = floor_seconds() / COMMANDS
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(3):
            workspace = Path(scratch) / f"run{index}"
            workspace.mkdir()
            runs.append(engine_run(workspace))
    medians = [statistics.median(d) for d, _ in runs]
    totals = [t / COMMANDS for _, t in runs]
    median = statistics.median(medians)
    print(f'{COMMANDS} exec_local "true" microsteps in one build, 3 builds:')
    print(
        f"  engine median per command: {median * 1e3:.3f} ms "
        f"(runs: {', '.join(f'{m * 1e3:.3f}' for m in medians)}); "
        f"mean incl. build overhead: {statistics.median(totals) * 1e3:.3f} ms"
    )
    print(f"  floor (1000 lines piped into one bash): {floor * 1e3:.4f} ms per command")
    print(
        f"  ratio engine/floor: {median / floor:.0f}x; target median <= 0.5 ms: "
        f"{'OK' if median <= 0.5e-3 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
