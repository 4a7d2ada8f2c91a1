"""The fault campaign's big inputs through the real CLI: time and memory (issue 12).

The fuzz part of ``fault_campaign.py`` (its ``huge-steps`` and ``extend-deep``
mutations) writes step files of 100,000 microsteps and chains of 400 ``extend``
parents; each run must end within 10 s on a loaded 2-core machine. This builds the
same shapes (plus a 16 MiB step file, the largest file a recipe may read) and runs
``kameleon build -d -l`` and ``kameleon info`` on each, printing wall time, CPU time
(user + system) and maximum RSS, the best of ``--repeat`` runs.

``--against DIR`` runs the same commands with the kameleon_nb package of another
tree (a checkout of an older commit) first, to print the speed-up.

Run: ``python benchmarks/bench_huge_recipe.py [--repeat 3] [--against /path/to/old/tree]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_huge_steps(root: Path, microsteps: int) -> Path:
    """The fuzz's ``huge-steps`` shape: one step file of ``microsteps`` one-line steps."""
    (root / "steps" / "setup").mkdir(parents=True)
    body = "".join(f"- m{k}:\n  - exec_local: echo {k}\n" for k in range(microsteps))
    (root / "steps" / "setup" / "many.yaml").write_text(body)
    (root / "r.yaml").write_text("setup:\n  - many\n")
    return root / "r.yaml"


def make_extend_chain(root: Path, depth: int) -> Path:
    """The fuzz's ``extend-deep`` shape: ``depth`` parents, one global each.

    The recipes sit three directories below the working directory, as the
    collections' do (``from_scratch/x86_64/``): each steps directory is looked for
    up to it.
    """
    directory = root / "collection" / "from_scratch" / "x86_64"
    directory.mkdir(parents=True)
    for k in range(depth):
        parent = f"extend: chain{k + 1}\n" if k + 1 < depth else ""
        (directory / f"chain{k}.yaml").write_text(parent + f"global:\n  c{k}: {k}\n")
    (directory / "r.yaml").write_text(
        "extend: chain0\nsetup:\n  - s:\n    - m:\n      - exec_local: x\n"
    )
    return directory / "r.yaml"


def run_cli(argv: list[str], cwd: Path, package_root: Path) -> tuple[float, float, int, int]:
    """(wall s, CPU s, max RSS MiB, exit status) of one CLI run."""
    env = dict(os.environ, PYTHONPATH=str(package_root))
    code = "import sys; from kameleon_nb.frontends.cli import main; sys.exit(main(sys.argv[1:]))"
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss >> 10, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another tree holding kameleon_nb/")
    args = parser.parse_args()
    trees = [("this tree", ROOT)]
    if args.against:
        trees.insert(0, (f"{args.against}", args.against.resolve()))
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        cases = [
            ("100,000 microsteps (3.3 MB step file)", make_huge_steps(base / "h100k", 100_000)),
            ("20,000 microsteps", make_huge_steps(base / "h20k", 20_000)),
            ("430,000 microsteps (15.8 MiB step file)", make_huge_steps(base / "h16m", 430_000)),
            ("400 extend parents", make_extend_chain(base / "chain", 400)),
        ]
        for label, tree in trees:
            print(f"== {label}")
            for name, recipe in cases:
                cwd = base / recipe.relative_to(base).parts[0]
                target = str(recipe.relative_to(cwd))
                for argv in (["build", "-d", "-l", target], ["info", target]):
                    runs = [run_cli(argv, cwd, tree) for _ in range(max(1, args.repeat))]
                    wall, cpu, _, status = min(runs)
                    rss = max(r[2] for r in runs)
                    print(
                        f"  {name:<40} {' '.join(argv[:-1]):<12} wall {wall:6.2f} s, "
                        f"CPU {cpu:6.2f} s, max RSS {rss:5d} MiB, exit {status}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
