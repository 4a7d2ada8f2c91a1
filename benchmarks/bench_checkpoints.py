"""Checkpoint mechanisms on a real Debian rootfs (issue: checkpoints). Needs root.

For each built-in mechanism that can run here (overlay, btrfs, rsync), through the
Builder and real context shells, as a build runs them:
* create S0 on a fresh copy of the rootfs, make a small change (append to etc/motd,
  rewrite etc/hostname, add a 1 MB file, remove usr/share/doc/apt, chmod etc/issue),
  create S1, apply S0, apply S1; times are medians of 3 rounds;
* extra disk used by S1 (the cost of one checkpoint after a small change);
* the same on a ~50 MB tree and on the ~200 MB tree, to show how create and apply
  grow with the rootfs size. Targets for overlay and btrfs: create and apply under
  50 ms, independent of size.

The ~200 MB tree is ``debootstrap --variant=minbase bookworm`` from the mirror apt
uses (cached in $KAMELEON_BENCH_ROOTFS, default /var/tmp/kameleon_nb-bench-rootfs);
the ~50 MB tree is a copy of it without usr/share, usr/bin, apt lists, dpkg info,
caches, perl and gconv.

Run: ``sudo python benchmarks/bench_checkpoints.py``
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import StepId
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.recipes import open_recipe

CACHE = Path(os.environ.get("KAMELEON_BENCH_ROOTFS", "/var/tmp/kameleon_nb-bench-rootfs"))
CHANGE = (
    "echo changed >> etc/motd && echo bench-host > etc/hostname"
    " && head -c 1000000 /dev/urandom > root/newfile && rm -rf usr/share/doc/apt"
    " && chmod 600 etc/issue && mkdir -p opt/app && echo 'echo hi' > opt/app/run.sh"
)


def mirror() -> str:
    for sources in Path("/etc/apt/sources.list.d").glob("*.sources"):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def debian_tree() -> Path:
    full = CACHE / "full"
    if not (full / "etc" / "os-release").exists():
        print(f"debootstrap into {full} (once, ~30 s)...", flush=True)
        shutil.rmtree(full, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(full), mirror()],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    small = CACHE / "small"
    if not (small / "etc" / "os-release").exists():
        shutil.rmtree(small, ignore_errors=True)
        subprocess.run(["cp", "-a", str(full), str(small)], check=True)
        for sub in (
            "usr/share",
            "var/lib/apt/lists",
            "var/cache",
            "usr/lib/x86_64-linux-gnu/perl-base",
            "usr/lib/x86_64-linux-gnu/gconv",
            "usr/bin",
            "var/lib/dpkg/info",
        ):
            shutil.rmtree(small / sub, ignore_errors=True)
            (small / sub).mkdir(parents=True)
    return full


def size_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[0])


class Bench:
    def __init__(self, workspace: Path, mechanism: str) -> None:
        (workspace / "b.yaml").write_text(
            f"checkpoint: {mechanism}.yaml\nglobal:\n  rootfs: $${{kameleon_cwd}}/rootfs\n"
            "setup:\n  - noop:\n    - noop:\n      - exec_local: 'true'\n"
        )
        self.recipe = open_recipe("b.yaml", cwd=str(workspace), checkpointing=True)
        self.builder = Builder(self.recipe, on_event=lambda e: None)
        self.rootfs = Path(self.recipe.kameleon_cwd) / "rootfs"
        self.store = Path(self.recipe.kameleon_cwd) / "checkpoints" / mechanism

    def sh(self, script: str) -> str:
        out: list[str] = []
        result = self.builder.contexts.run(ContextName.LOCAL, script, on_output=out.append)
        if result.exit_status != 0:
            raise RuntimeError("".join(out))
        return "".join(out)

    def timed(self, action, step_id: str) -> float:
        start = time.perf_counter()
        action(StepId(step_id))
        return time.perf_counter() - start

    def disk_kb(self) -> int:
        # -x: do not walk into mounts (a btrfs store mounts its image inside itself)
        return int(self.sh(f"du -skx {self.store} | cut -f1").strip() or 0)


def measure(mechanism: str, tree: Path) -> dict[str, float]:
    results: dict[str, list[float]] = {
        "create0": [],
        "create1": [],
        "apply0": [],
        "apply1": [],
        "extra_kb": [],
    }
    for round_index in range(3):
        with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
            bench = Bench(Path(scratch), mechanism)
            try:
                bench.builder.existing_checkpoints()  # lets the mechanism mount its store
                bench.sh(f"mkdir -p {bench.rootfs} && cp -a {tree}/. {bench.rootfs}/ && sync")
                backend = bench.builder.checkpoints
                results["create0"].append(bench.timed(backend.create, f"a0{round_index:010x}"))
                before = bench.disk_kb()
                bench.sh(f"cd {bench.rootfs} && {CHANGE}")
                results["create1"].append(bench.timed(backend.create, f"a1{round_index:010x}"))
                results["extra_kb"].append(bench.disk_kb() - before)
                results["apply0"].append(bench.timed(backend.restore, f"a0{round_index:010x}"))
                results["apply1"].append(bench.timed(backend.restore, f"a1{round_index:010x}"))
                backend.clear()
            finally:
                bench.builder.close()
    return {key: statistics.median(values) for key, values in results.items()}


def available(mechanism: str) -> bool:
    needs = {"overlay": [], "btrfs": ["mkfs.btrfs"], "rsync": ["rsync"]}[mechanism]
    builtin = Path(__file__).resolve().parents[1] / "kameleon_nb" / "data" / "steps" / "checkpoints"
    return (builtin / f"{mechanism}.yaml").exists() and all(shutil.which(t) for t in needs)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("needs root (chroot, mounts)")
    full = debian_tree()
    small = CACHE / "small"
    print(f"trees: {size_mb(full):.0f} MB and {size_mb(small):.0f} MB")
    print(
        f"{'mechanism':<9} {'tree':>6} {'create S0':>10} {'create S1':>10} {'apply S0':>9} "
        f"{'apply S1':>9} {'extra disk S1':>14}"
    )
    for mechanism in ("overlay", "btrfs", "rsync"):
        if not available(mechanism):
            print(f"{mechanism:<9} (not available here)")
            continue
        for tree in (small, full):
            r = measure(mechanism, tree)
            print(
                f"{mechanism:<9} {size_mb(tree):>4.0f}MB {r['create0'] * 1000:>8.0f}ms "
                f"{r['create1'] * 1000:>8.0f}ms {r['apply0'] * 1000:>7.0f}ms "
                f"{r['apply1'] * 1000:>7.0f}ms {r['extra_kb'] / 1024:>11.1f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
