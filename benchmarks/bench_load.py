"""Load + dry-run speed of the recipe core (issue: recipe language).

Prints, for generated recipes:
* a deep recipe: 10 ``extend`` levels, 100 microsteps (target < 0.3 s);
* flat recipes of 100, 1,000 and 10,000 microsteps (target: 1,000 < 1 s), with the
  microseconds per microstep, which must stay flat (linear growth).

Each figure is the median of several in-process runs of load + resolve + dry-run
rendering (what ``kameleon build --dryrun`` does after Python start-up), plus one
wall-clock run of the real CLI for the deep recipe and the 1,000-microstep recipe.

Run: ``python benchmarks/bench_load.py``
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.frontends.render import checkpoint_table, dryrun_lines


def _step_file(path: Path, macro: int, micro: int) -> None:
    lines = ["- pkg: base", "- opts: -y"]
    for m in range(micro):
        lines += [
            f"- micro_{macro}_{m}:",
            f'  - exec_in: apt-get install $${{opts}} $${{pkg}}-{m} && echo "$${{user_name}}"',
            "  - exec_out: |",
            f"      mkdir -p $${{rootfs}}/opt/{m}",
            f"      echo step {m} > $${{rootfs}}/opt/{m}/stamp",
        ]
    path.write_text("\n".join(lines) + "\n")


def make_flat(root: Path, microsteps: int, per_macro: int = 10) -> Path:
    (root / "steps" / "setup").mkdir(parents=True)
    macros = microsteps // per_macro
    for i in range(macros):
        _step_file(root / "steps" / "setup" / f"macro_{i}.yaml", i, per_macro)
    entries = "\n".join(f"  - macro_{i}:\n    - pkg: p{i}" for i in range(macros))
    (root / "flat.yaml").write_text(
        "global:\n  user_name: alice\n  rootfs: /tmp/rootfs\n"
        "  in_context:\n    cmd: bash\n  out_context:\n    cmd: bash\n"
        f"setup:\n{entries}\n"
    )
    return root / "flat.yaml"


def make_deep(root: Path, levels: int = 10, microsteps: int = 100) -> Path:
    per_level = microsteps // levels
    for level in range(levels):
        directory = root / f"level{level}"
        (directory / "steps" / "setup").mkdir(parents=True)
        _step_file(directory / "steps" / "setup" / f"l{level}.yaml", level, per_level)
        parent = f"extend: ../level{level - 1}/r{level - 1}.yaml\n" if level else ""
        base = '  - "@base"\n' if level else ""
        (directory / f"r{level}.yaml").write_text(
            f"{parent}global:\n  user_name: u{level}\n  rootfs: /tmp/r\n"
            f"  pkgs: $${{pkgs}} extra{level}\n"
            * (1 if level else 0)
            + ("global:\n  user_name: u0\n  rootfs: /tmp/r\n  pkgs: base\n" if not level else "")
            + f"setup:\n{base}  - l{level}\n"
        )
    return root / f"level{levels - 1}" / f"r{levels - 1}.yaml"


def time_inprocess(recipe: Path, cwd: Path, repeat: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        resolved = open_recipe(str(recipe), cwd=str(cwd))
        dryrun_lines(resolved)
        checkpoint_table(list(resolved.microsteps()))
        times.append(time.perf_counter() - start)
        count = sum(1 for _ in resolved.microsteps())
    return statistics.median(times), count


def time_cli(recipe: Path, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--dryrun", str(recipe)],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        deep = make_deep(root / "deep")
        seconds, count = time_inprocess(deep, deep.parent, 7)
        cli = time_cli(deep, deep.parent)
        print(
            f"deep recipe (10 extend levels, {count} microsteps): "
            f"{seconds * 1000:.1f} ms in-process, {cli * 1000:.0f} ms CLI wall "
            f"(target < 300 ms) {'OK' if seconds < 0.3 else 'SLOW'}"
        )
        for size, repeat in ((100, 9), (1000, 5), (10000, 3)):
            recipe = make_flat(root / f"flat{size}", size)
            seconds, count = time_inprocess(recipe, recipe.parent, repeat)
            extra = ""
            if size == 1000:
                cli = time_cli(recipe, recipe.parent)
                extra = f", {cli * 1000:.0f} ms CLI wall (target < 1 s) " + (
                    "OK" if seconds < 1 else "SLOW"
                )
            print(
                f"flat recipe, {count:>6} microsteps: {seconds * 1000:8.1f} ms, "
                f"{seconds / count * 1e6:6.1f} µs per microstep{extra}"
            )


if __name__ == "__main__":
    main()
