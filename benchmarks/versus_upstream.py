"""kameleon_nb against upstream Kameleon 2.11.0, side by side (issue 15).

Runs each figure of the performance table as whole ``kameleon`` processes, for
kameleon_nb and, when ``kameleon-oracle`` is installed (``../shared/oracle/setup.sh``),
for upstream in the same run, alternating A B A B, and prints a markdown table of the
medians, their ratio, the goal and the peak RSS of each process tree (the largest
process of the tree, as ``wait4`` reports it: ``/usr/bin/time``'s ``%M``).

Figures (recipes under ``benchmarks/recipes/``, plain bash contexts):

* 200 microsteps of ``exec_local: "true"``, the whole build;
* the time per command beyond a 1-command build: (200-step build - 1-step build) / 199,
  the median over builds run back to back (at least 15 pairs for kameleon_nb, whose
  difference is about 0.1 s);
* the first checkpointed build of 200 microsteps (``build -c``), with a checkpoint
  mechanism that only keeps a list of ids (``steps/checkpoints/bookkeeping.yaml``);
* the no-change rebuild of it, ``build -c -F last``;
* one command printing 50 MB of 2-byte lines (``yes | head -c 50000000``), stdout to
  ``/dev/null``;
* ``build -d -l`` over the real recipes upstream accepts (the entry points of
  ``tests/data/corpus`` whose recorded ``l`` answer exits 0), per recipe.

Every process gets stdin ``/dev/null``, stdout ``/dev/null``, a scratch ``HOME`` and
``LC_ALL=C.UTF-8``. The machine's load (``uptime``) is printed before and after.

Run: ``python benchmarks/versus_upstream.py [--runs N] [--quick] [--no-upstream]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
CORPUS = HERE.parent / "tests" / "data" / "corpus"
UPSTREAM_COMMAND = "kameleon-oracle"
COMMANDS = 200
PAIRS = 15  # at least, for kameleon_nb's per-command figure
TIMES = "\u00d7"  # the multiplication sign


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    def add(self, seconds: float, rss_kib: int) -> None:
        self.seconds.append(seconds)
        self.rss_kib.append(rss_kib)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak_mib(self) -> float:
        return max(self.rss_kib) / 1024


@dataclass(frozen=True)
class Tool:
    """One implementation: the argv that starts it and the directory it builds in."""

    name: str
    argv: tuple[str, ...]
    workspace: Path
    home: Path
    env: tuple[tuple[str, str], ...] = ()

    def run(self, args: Sequence[str], cwd: Path | None = None) -> tuple[float, int]:
        """Run ``kameleon ARGS``; return its wall time and the peak RSS (KiB) of its tree."""
        env = dict(os.environ, HOME=str(self.home), LC_ALL="C.UTF-8", **dict(self.env))
        for name in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
            env.pop(name, None)
        start = time.perf_counter()
        process = subprocess.Popen(
            [*self.argv, *args],
            cwd=cwd or self.workspace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{self.name}: kameleon {' '.join(args)} exited {status}")
        return seconds, usage.ru_maxrss


def ours_argv() -> tuple[str, ...]:
    script = Path(sys.executable).parent / "kameleon"
    if script.exists():
        return (str(script),)
    return (sys.executable, "-m", "kameleon_nb")


def bytecode_env(scratch: Path) -> tuple[tuple[str, str], ...]:
    """Compiled bytecode for kameleon_nb, as an installed package has it.

    A development shell may set ``PYTHONDONTWRITEBYTECODE`` (every start then compiles
    the package again); the runs get a bytecode cache of their own, filled here.
    """
    prefix = scratch / "pycache"
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(prefix))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    package = HERE.parent / "kameleon_nb"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True)
    return (("PYTHONPYCACHEPREFIX", str(prefix)),)


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {os.cpu_count()} cores, {model or platform.machine()}"


def corpus_cases(limit: int | None) -> list[tuple[str, list[str]]]:
    """(collection, argv after ``kameleon``) of each accepted entry point."""
    cases = []
    for collection in ("K", "D"):
        for answer in sorted((CORPUS / collection).rglob("*.json")):
            mode = json.loads(answer.read_text(encoding="utf-8"))["modes"].get("l")
            if mode is not None and mode["rc"] == 0:
                cases.append((collection, list(mode["argv"][1:])))
    return cases[:limit] if limit else cases


def extract_corpus(root: Path) -> None:
    for collection in ("K", "D"):
        with tarfile.open(CORPUS / f"{collection}.tar.gz") as archive:
            archive.extractall(root / collection, filter="tar")
        # the archives hold the tree itself or one top directory: find the recipes' root
        inner = list((root / collection).iterdir())
        if len(inner) == 1 and inner[0].is_dir():
            top = inner[0]
            for item in top.iterdir():
                item.rename(root / collection / item.name)
            top.rmdir()


@dataclass
class Row:
    figure: str
    goal: float | None  # the ratio upstream / kameleon_nb to reach
    samples: dict[str, Sample] = field(default_factory=dict)
    derived: dict[str, float] = field(default_factory=dict)


def measure(
    tools: list[Tool],
    runs: int,
    rows: list[Row],
    key: str,
    step: Callable[[Tool], tuple[float, int]],
) -> None:
    row = next(r for r in rows if r.figure == key)
    for _ in range(runs):
        for tool in tools:  # A B A B
            seconds, rss = step(tool)
            row.samples.setdefault(tool.name, Sample()).add(seconds, rss)
    print(
        f"  {key}: " + ", ".join(f"{t.name} {row.samples[t.name].median:.3f} s" for t in tools),
        file=sys.stderr,
    )


def fresh(tool: Tool, recipe: str) -> None:
    shutil.rmtree(tool.workspace / "build" / recipe, ignore_errors=True)


def run_all(
    tools: list[Tool], runs: int, corpus_limit: int | None, scratch: Path
) -> tuple[list[Row], Row]:
    rows = [
        Row(f'{COMMANDS} {TIMES} `exec_local: "true"`, whole build', None),
        Row("per command, beyond a 1-command build", 100.0),
        Row(f"first checkpointed build, {COMMANDS} microsteps", 30.0),
        Row("no-change rebuild `-c -F last`", 5.0),
        Row("one command printing 50 MB of 2-byte lines", 5.0),
        Row("`build -d -l` over the real recipes upstream accepts, per recipe", 5.0),
    ]
    one = Row("1-command build", None)

    def build(recipe: str, *options: str) -> Callable[[Tool], tuple[float, int]]:
        def step(tool: Tool) -> tuple[float, int]:
            if "-F" not in options:
                fresh(tool, recipe)
            return tool.run(["build", *options, f"{recipe}.yaml"])

        return step

    print(f"measuring ({runs} runs each, alternating)…", file=sys.stderr)
    # The 200-command and the 1-command builds run back to back (A200 A1 B200 B1 ...):
    # the figure per command is the median of the differences of these pairs, which a
    # change of the machine's load between runs disturbs less than a difference of
    # medians would.
    # kameleon_nb's pairs take half a second: it gets at least PAIRS of them (the
    # first ``runs`` alternate with upstream's), which a difference of ~0.1 s needs.
    many, single = build("exec200"), build("exec1")
    differences: dict[str, list[float]] = {}
    for index in range(max(runs, PAIRS)):
        for tool in tools:
            if index >= runs and tool.name != "kameleon_nb":
                continue
            seconds, rss = many(tool)
            rows[0].samples.setdefault(tool.name, Sample()).add(seconds, rss)
            alone, rss = single(tool)
            one.samples.setdefault(tool.name, Sample()).add(alone, rss)
            differences.setdefault(tool.name, []).append(seconds - alone)
    for tool in tools:
        per_command = statistics.median(differences[tool.name]) / (COMMANDS - 1)
        rows[1].derived[tool.name] = per_command * 1000
    print(
        "  exec200 / exec1: "
        + ", ".join(
            f"{t.name} {rows[0].samples[t.name].median:.3f} / {one.samples[t.name].median:.3f} s"
            for t in tools
        ),
        file=sys.stderr,
    )
    measure(tools, runs, rows, rows[2].figure, build("checkpointed200", "-c"))
    measure(tools, runs, rows, rows[3].figure, build("checkpointed200", "-c", "-F", "last"))
    measure(tools, runs, rows, rows[4].figure, build("output50mb"))

    cases = corpus_cases(corpus_limit)
    trees = scratch / "corpus"
    extract_corpus(trees)
    rows[5].figure = rows[5].figure.replace("recipes", f"{len(cases)} recipes")

    def corpus(tool: Tool) -> tuple[float, int]:
        total, peak = 0.0, 0
        for collection, argv in cases:
            seconds, rss = tool.run(argv, cwd=trees / collection)
            total += seconds
            peak = max(peak, rss)
        return total / len(cases), peak

    measure(tools, runs, rows, rows[5].figure, corpus)
    return rows, one


def table(rows: list[Row], names: list[str]) -> list[str]:
    upstream = "upstream" in names
    lines = [
        "| figure | upstream | peak RSS | kameleon_nb | peak RSS | ratio | goal |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells: dict[str, tuple[float, str]] = {}
        for name in names:
            if name in row.derived:
                value = row.derived[name]
                cells[name] = (value, f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms")
                cells[name + "rss"] = (0, "—")
            else:
                sample = row.samples[name]
                cells[name] = (sample.median, f"{sample.median:.3f} s")
                cells[name + "rss"] = (0, f"{sample.peak_mib:.0f} MiB")
        ratio = "—"
        met = ""
        if upstream and cells["kameleon_nb"][0] > 0:
            value = cells["upstream"][0] / cells["kameleon_nb"][0]
            ratio = f"{value:.1f}{TIMES}"
            if row.goal is not None:
                met = " met" if value >= row.goal else " MISSED"
        goal = f"≥ {row.goal:g}{TIMES}{met}" if row.goal is not None else "—"
        up = cells["upstream"][1] if upstream else "—"
        up_rss = cells["upstreamrss"][1] if upstream else "—"
        lines.append(
            f"| {row.figure} | {up} | {up_rss} | {cells['kameleon_nb'][1]} | "
            f"{cells['kameleon_nbrss'][1]} | {ratio} | {goal} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure and tool (median)")
    parser.add_argument(
        "--quick", action="store_true", help="1 run each, 12 corpus recipes: a smoke test"
    )
    parser.add_argument("--no-upstream", action="store_true", help="measure kameleon_nb only")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    corpus_limit = 12 if args.quick else None
    upstream = None if args.no_upstream else shutil.which(UPSTREAM_COMMAND)
    before = load()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="knb-versus-") as scratch_name:
        scratch = Path(scratch_name)
        tools = []
        for name, command in (("kameleon_nb", ours_argv()), ("upstream", (upstream,))):
            if command[0] is None:
                continue
            workspace = scratch / name
            shutil.copytree(RECIPES, workspace)
            home = scratch / f"home-{name}"
            home.mkdir()
            env = bytecode_env(scratch) if name == "kameleon_nb" else ()
            tools.append(Tool(name, tuple(str(c) for c in command), workspace, home, env))
        for tool in tools:  # warm the file cache
            tool.run(["version"])
        rows, one = run_all(tools, runs, corpus_limit, scratch)
    after = load()
    print(
        f"Measured {started} on {machine()}, Python {platform.python_version()}, "
        f"median of {runs} run(s) each, A B A B."
    )
    print(f"Load before: {before}")
    print(f"Load after:  {after}")
    if upstream is None:
        print("(kameleon-oracle not found: kameleon_nb only)")
    print()
    print("\n".join(table(rows, [t.name for t in tools])))
    print()
    print(
        "The 1-command build (the base of the per-command figure): "
        + ", ".join(f"{t.name} {one.samples[t.name].median:.3f} s" for t in tools)
        + ". Peak RSS: the largest process of the build's tree (wait4)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
