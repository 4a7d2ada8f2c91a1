"""What the persistent cache costs: a build downloading 200 MB, without and with ``-C``.

Serves ``--files`` random files (``--megabytes`` in all) on 127.0.0.2 and builds a recipe
that fetches each with curl in the out context, measured side by side, alternating,
median of ``--runs``:

* ``direct``: ``kameleon build`` with no cache (curl talks to the server);
* ``record``: ``kameleon build -C`` (through the recording proxy, archive packed);
* ``replay``: ``kameleon build --from-cache`` on that archive, the server still up
  but never asked (as root: in a network namespace with nothing but loopback).

Prints the seconds of each, the ratios to ``direct`` and the archive's size. Usage::

    python benchmarks/bench_cache.py [--megabytes 200] [--files 4] [--runs 3] [--compression C]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RECIPE = """\
global:
  server: http://127.0.0.2:8000
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}
bootstrap:
  - fetch:
    - tree:
      - exec_out: rm -rf rootfs && mkdir -p rootfs
{steps}
export: []
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _build(argv: list[str], cwd: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"build failed ({' '.join(argv)}):\n{done.stdout}{done.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--compression", default="gzip", choices=["none", "gzip", "bz2", "xz", "zstd"]
    )
    args = parser.parse_args()
    for tool in ("curl",):
        if shutil.which(tool) is None:
            sys.exit(f"needs {tool}")

    top = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        site = top / "site"
        site.mkdir()
        size = args.megabytes * 1_000_000 // args.files
        for number in range(args.files):
            with open(site / f"f{number}.bin", "wb") as stream:
                for _ in range(size // 1_000_000):
                    stream.write(os.urandom(1_000_000))
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.2", 0), functools.partial(_Quiet, directory=str(site))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.2:{server.server_address[1]}"
        steps = "\n".join(
            f'    - get{n}:\n      - exec_out: curl -fsS "$${{server}}/f{n}.bin" -o rootfs/f{n}.bin'
            for n in range(args.files)
        )
        work = top / "work"
        work.mkdir()
        (work / "dl.yaml").write_text(RECIPE.replace("{steps}", steps))
        times: dict[str, list[float]] = {"direct": [], "record": [], "replay": []}
        archive_size = 0
        for run in range(args.runs):
            base = ["dl.yaml", "-g", f"server:{url}"]
            times["direct"].append(_build([*base, "-b", f"b-direct-{run}"], work))
            record = [*base, "-b", f"b-record-{run}", "-C", "--cache-archive-compression"]
            times["record"].append(_build([*record, args.compression], work))
            archive = next((work / f"b-record-{run}" / "dl").glob("dl-cache.tar*"))
            archive_size = archive.stat().st_size
            replay = ["--from-cache", str(archive), "-b", f"b-replay-{run}"]
            times["replay"].append(_build(replay, work))
            for name in ("direct", "record", "replay"):
                shutil.rmtree(work / f"b-{name}-{run}", ignore_errors=True)
            print(
                f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
                flush=True,
            )
        server.shutdown()
        direct = statistics.median(times["direct"])
        print(
            f"\n{args.megabytes} MB in {args.files} files, median of {args.runs} "
            f"({os.cpu_count()} CPUs, {'root' if os.geteuid() == 0 else 'not root'}):"
        )
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:<7} {median:6.2f} s   x{median / direct:.2f} of direct")
        print(f"  archive {archive_size / 1e6:.1f} MB ({args.compression}; random data)")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
