"""No-change rebuild overhead (issue: checkpoints).

Builds a 200-microstep recipe with checkpoints (the built-in ``simple`` mechanism),
then rebuilds it unchanged with ``--from-checkpoint last`` several times and prints
the rebuild's wall time, the time spent in the ``apply`` hook, and the overhead
beyond it (target: under 1 s). Everything runs in-process through the same Builder
the CLI uses, with real context shells.

Run: ``python benchmarks/bench_rebuild.py``
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import BuildEvent, CheckpointRestored, MicrostepStarted
from kameleon_nb.engine.recipes import open_recipe

MICROSTEPS = 200


def write_recipe(workspace: Path) -> None:
    macros = []
    for m in range(MICROSTEPS // 10):
        micro = "\n".join(
            f"    - step_{m}_{i}:\n      - exec_in: echo {m}-{i} >> $${{kameleon_cwd}}/trace"
            for i in range(10)
        )
        macros.append(f"  - macro_{m}:\n{micro}")
    (workspace / "rebuild.yaml").write_text(
        "checkpoint: simple.yaml\n"
        "global:\n  in_context:\n    cmd: bash\n    workdir: $${kameleon_cwd}/in\n"
        "setup:\n" + "\n".join(macros) + "\n"
    )


def build(workspace: Path, options: BuildOptions) -> tuple[float, float]:
    recipe = open_recipe("rebuild.yaml", cwd=str(workspace), checkpointing=True)
    marks: dict[str, float] = {}

    def sink(event: BuildEvent) -> None:
        if isinstance(event, CheckpointRestored):
            marks["apply_start"] = time.perf_counter()
        elif isinstance(event, MicrostepStarted) and "apply_end" not in marks:
            marks["apply_end"] = time.perf_counter()

    start = time.perf_counter()
    with Builder(recipe, on_event=sink) as builder:
        builder.build(options)
    total = time.perf_counter() - start
    apply = (
        marks.get("apply_end", 0.0) - marks.get("apply_start", 0.0)
        if ("apply_start" in marks)
        else 0.0
    )
    return total, apply


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch)
        write_recipe(workspace)
        first, _ = build(workspace, BuildOptions(checkpointing=True))
        runs = [
            build(workspace, BuildOptions(checkpointing=True, from_checkpoint="last"))
            for _ in range(5)
        ]
    totals = [t for t, _ in runs]
    applies = [a for _, a in runs]
    overheads = [t - a for t, a in runs]
    print(f"{MICROSTEPS}-microstep recipe, simple mechanism")
    print(f"  first build with checkpoints: {first:.2f} s")
    print(
        f"  no-change rebuild --from-checkpoint last (median of 5): "
        f"{statistics.median(totals) * 1000:.0f} ms, of which apply hook "
        f"{statistics.median(applies) * 1000:.0f} ms"
    )
    overhead = statistics.median(overheads)
    print(
        f"  overhead beyond apply: {overhead * 1000:.0f} ms (target < 1000 ms) "
        f"{'OK' if overhead < 1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
