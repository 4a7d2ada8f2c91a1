"""Fault campaign (issue 12): hostile recipes, kills, concurrent builds, a full disk, rebuilds.

Measures what the code does, whatever it does: every subprocess runs under a timeout in
a session of its own and is killed with its whole tree when it overruns; after each
build the harness looks for processes, mounts and loop devices left under the build
directory (and for processes carrying the run's marker in their environment), reports
them, then removes them itself, so one bad trial never poisons the next one.

Parts (``--part``, repeatable; default: all):

``fuzz``
    Mutated recipes (from ``examples/``, ``tests/data/recipes``, the real collections
    ``tests/data/corpus/{K,D}.tar.gz`` and trees of ``fuzz_differential``'s generator),
    with hostile mutations (alias bombs, doubling variables, YAML anchor bombs,
    ``/dev/zero``/FIFO/directory/dangling symlinks as recipe files, non-UTF-8 names and
    bytes, huge values, deep nesting, extend cycles, recipe directories with spaces,
    quotes, ``$`` or a leading ``-``), each run through ``kameleon build -d -l`` and
    ``kameleon info`` in a forked child of a warm interpreter (RLIMIT_AS 1 GiB, a
    timeout, its own process group). Counts tracebacks (``Traceback``, exit 154, an
    exception escaping ``main``, a signal), hangs, runs over 1 GiB (MemoryError or
    max RSS), errors that are not exactly one ``Error: ...`` line, and errors naming no
    file; classifies failures by their normalised first error line. Every failing run
    is kept under ``--out`` (the entries its mutations wrote, its source tree, its
    mutations and command, in ``result.json``) and listed with the command that
    replays it (``--replay DIR``: the tree rebuilt, run again in the same child).
``kill``
    Real builds (chroot + overlay, chroot + rsync as root; proot + rsync), killed with
    SIGKILL (and, separately, SIGINT) of the ``kameleon`` process right after a chosen
    ``--log-json`` event: during a step, during a checkpoint ``create``, during an
    ``apply``. Then: processes and mounts left, and every listed checkpoint (the newest
    and one other; ``--verify-all``: each) restored with ``build -F ID`` to a build
    that must finish (its last step checks the content of every step's file).
``concurrent``
    Two builds of the same recipe in the same build directory at once, x N: exit
    statuses, whether the second was refused (and named a lock), corruption after.
``diskfull``
    A 30 MB tmpfs as build directory (overlay, rsync); a recipe writing until full;
    then every listed checkpoint must restore (the step after it checks the files).
``rebuild``
    Overlay: 10 rebuilds (a late step edited, or ``-F`` an earlier checkpoint); disk
    use of ``checkpoints/overlay`` against the layers the kept checkpoints need (no
    orphan layer), and against the valid ones (what ``--keep-stale`` retires).

Usage::

    python benchmarks/fault_campaign.py --quick                # all parts, small
    python benchmarks/fault_campaign.py --part fuzz --recipes 5000 --jobs 2
    python benchmarks/fault_campaign.py --replay /tmp/fault-campaign-failures/fuzz/CLASS/RUN
    python benchmarks/fault_campaign.py --part kill --kills 30 --sigint-kills 10
    python benchmarks/fault_campaign.py --part concurrent --part diskfull --part rebuild

Root is needed for the chroot backend, overlay and tmpfs; without root those trials
are skipped (and said so). Scratch goes to ``--work`` (default
``/tmp/fault-campaign``), failing inputs to ``--out`` (default
``/tmp/fault-campaign-failures``). Prints one block of figures per part, and a JSON
summary with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import hashlib
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import stat as stat_mod
import subprocess
import sys
import tarfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_differential as fd  # noqa: E402  (the generator and its YAML writer)

from tests.engine import buildcheck  # noqa: E402  (process and mount helpers)

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable
GIB = 1 << 30
IS_ROOT = os.geteuid() == 0
#: Where outputs and --log-json files go (never the build directory: it may be full).
CAPTURE = Path("/tmp/fault-campaign/capture")
ERROR_EXITS = {1, 2, 6, 7, 8, 11, 15, 16, 17}
CHECKPOINT_ROW = re.compile(r"^([0-9a-f]{12}) \| (\S+)")

# ---------------------------------------------------------------------------------------
# Running things without ever hanging
# ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one subprocess did."""

    argv: list[str]
    rc: int | None  # None: timed out (then killed with its tree)
    out: str
    seconds: float
    cwd: str = ""

    @property
    def timed_out(self) -> bool:
        return self.rc is None

    def tail(self, lines: int = 6) -> str:
        return "\n".join(self.out.rstrip().splitlines()[-lines:])

    def error_line(self) -> str:
        """The ``Error:`` line, else the failure's key lines, else the last line."""
        lines = self.out.splitlines()
        found = [line for line in lines if line.startswith("Error: ")]
        if found:
            return found[0]
        keys = [ln.strip() for ln in lines if re.search(r"CAMPAIGN|[Ee]rror|[Ff]ail|denied", ln)]
        return " | ".join(keys[-3:]) if keys else (self.tail(1) or "(no output)")

    def command_line(self) -> str:
        return "cd " + shell_quote(self.cwd) + " && " + " ".join(map(shell_quote, self.argv))


def shell_quote(text: str) -> str:
    if re.fullmatch(r"[\w@%+=:,./-]+", text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal ``pid``, its process group and every descendant (also those that left it)."""
    family = [pid, *buildcheck.descendants(pid)]
    with contextlib.suppress(OSError):
        os.killpg(pid, sig)
    for member in family:
        with contextlib.suppress(OSError):
            os.kill(member, sig)


def run(
    argv: list[str],
    *,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    on_line: Callable[[subprocess.Popen[bytes]], bool] | None = None,
) -> Run:
    """Run ``argv`` (stdin /dev/null, stdout+stderr together) in a session of its own.

    ``on_line`` (optional) is polled every few ms while it runs; it may signal the
    process and returns True once it did what it wanted.
    """
    started = time.monotonic()
    CAPTURE.mkdir(parents=True, exist_ok=True)
    out_path = CAPTURE / f"out-{os.getpid()}-{secrets.token_hex(4)}"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    rc: int | None = None
    done_hook = on_line is None
    try:
        while True:
            rc = proc.poll()
            if rc is not None:
                break
            if time.monotonic() - started > timeout:
                kill_tree(proc.pid)
                proc.wait()
                rc = None
                break
            if not done_hook and on_line is not None:
                done_hook = on_line(proc)
            time.sleep(0.003 if not done_hook else 0.02)
    finally:
        if proc.poll() is None:
            kill_tree(proc.pid)
            proc.wait()
    text = out_path.read_bytes()[-200_000:].decode("utf-8", "replace")
    out_path.unlink()
    return Run(argv, rc, text, time.monotonic() - started, str(cwd))


def kameleon(*args: str) -> list[str]:
    return [PYTHON, "-m", "kameleon_nb", *args]


def build_env(marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMELEON")}
    env.update(LC_ALL="C.UTF-8", CAMPAIGN_MARKER=marker, PYTHONDONTWRITEBYTECODE="1")
    return env


# ---------------------------------------------------------------------------------------
# What a build leaves behind, and removing it
# ---------------------------------------------------------------------------------------


def _ancestors() -> set[int]:
    found, pid = set(), os.getpid()
    while pid and pid not in found:
        found.add(pid)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            continue
        break
    return found


def stray_processes(root: Path, marker: str) -> dict[int, str]:
    """Live processes whose cwd/root/argv names ``root`` or whose environment has ``marker``."""
    mine = _ancestors()
    found: dict[int, str] = {}
    needle, root_b = marker.encode(), str(root).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine or not buildcheck.alive(int(entry)):
            continue
        pid = int(entry)
        reason = ""
        for link in ("cwd", "root"):
            with contextlib.suppress(OSError):
                if buildcheck.under(os.readlink(f"/proc/{pid}/{link}"), root):
                    reason = link
        with contextlib.suppress(OSError):
            if root_b in Path(f"/proc/{pid}/cmdline").read_bytes():
                reason = reason or "argv"
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/environ").read_bytes():
                reason = reason or "environ"
        if reason:
            found[pid] = f"{reason}: {buildcheck._cmdline(pid)[:160]}"
    return found


def mounts_under(root: Path) -> list[str]:
    return [m for m in buildcheck.mount_points() if buildcheck.under(m, root)]


def loops_under(root: Path) -> list[str]:
    done = subprocess.run(
        ["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    return [line.split()[0] for line in done.stdout.splitlines() if str(root) in line]


@dataclass
class Leftovers:
    processes: dict[int, str] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.mounts or self.loops)

    def describe(self) -> str:
        parts = [f"process {p} {c}" for p, c in sorted(self.processes.items())]
        parts += [f"mount {m}" for m in self.mounts] + [f"loop {x}" for x in self.loops]
        return "; ".join(parts)


def leftovers(root: Path, marker: str, grace: float = 5.0) -> Leftovers:
    """What is still there after ``grace`` seconds (a watchdog may need a moment)."""
    deadline = time.monotonic() + grace
    while True:
        found = Leftovers(stray_processes(root, marker), mounts_under(root), loops_under(root))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def clean_up(root: Path, marker: str, remove: bool = False) -> None:
    """Kill what is left, unmount (deepest first), detach loops; optionally ``rm -rf``."""
    for _ in range(3):
        for pid in stray_processes(root, marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    for mount in sorted(mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False, timeout=20)
    for loop in loops_under(root):
        subprocess.run(["losetup", "-d", loop], capture_output=True, check=False, timeout=20)
    if remove and root.exists():
        if mounts_under(root):
            raise RuntimeError(f"refusing to remove {root}: still mounted")
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Part 1: fuzz
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A recipe tree to mutate: files under ``root`` (or a generated tree), the entry."""

    name: str
    root: Path | None
    recipe: str
    generated: int = -1  # fuzz_differential.generate index when root is None


def corpus_sources(work: Path) -> list[Source]:
    """The real collections, extracted once under ``work`` (their golden entry points)."""
    sources: list[Source] = []
    data = ROOT / "tests" / "data" / "corpus"
    for collection in ("K", "D"):
        tree = work / "corpus" / collection
        archive = data / f"{collection}.tar.gz"
        if not (tree / ".extracted").is_file():
            shutil.rmtree(tree, ignore_errors=True)
            tree.mkdir(parents=True)
            with tarfile.open(archive) as tar:
                tar.extractall(tree, filter="tar")
            (tree / ".extracted").write_text("ok")
        entries = set()
        for golden in sorted((data / collection).rglob("*.json")):
            entries.add(json.loads(golden.read_text(encoding="utf-8"))["recipe"])
        sources += [Source(f"{collection}:{e}", tree, e) for e in sorted(entries)]
    return sources


def local_sources() -> list[Source]:
    sources = []
    for base in (ROOT / "examples", ROOT / "tests" / "data" / "recipes"):
        for tree in sorted(p for p in base.iterdir() if p.is_dir()):
            for recipe in sorted(tree.glob("*.yaml")):
                sources.append(Source(f"{base.name}:{tree.name}/{recipe.name}", tree, recipe.name))
    return sources


def link_tree(source: Path, target: Path) -> None:
    """Hard-link copy of ``source`` (files are never written in place: see ``put``)."""
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            src, dst = Path(dirpath) / name, target / rel / name
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)


def remove(path: Path) -> None:
    """Remove a file, link, FIFO or directory tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def put(path: Path, data: str | bytes) -> None:
    """Replace ``path`` (unlink first: it may be a hard link into the sources)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove(path)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes; OSError for anything else.

    A special-file mutation may have made the recipe ``/dev/zero`` (read for ever, until
    the harness child runs out of memory), a FIFO or ``/dev/tty`` (blocked for ever):
    a later mutation must skip it, not read it.
    """
    if not path.is_file():
        raise OSError(f"{path}: not a regular file")
    return path.read_bytes()


def read(path: Path) -> str:
    return read_bytes(path).decode("utf-8", "surrogateescape")


def write_back(path: Path, text: str) -> None:
    put(path, text.encode("utf-8", "surrogateescape"))


HOSTILE_DIRS = [
    "with space", "it's", 'dq"uote', "$HOME", "${x}x", "-lead", "--help", "back\\slash",
    "semi;colon", "glob*?[a]", "tab\there", "new\nline", "`uname`", "$(touch PWNED)", "é ü 日本",
    "a:b", "%s%n", "~tilde", "..dots..", " lead-space", "trail-space ",
]  # fmt: skip
NON_UTF8 = [b"caf\xe9", b"\xff\xfe", b"bad\x80name", b"\xc3\x28"]


class Mutator:
    """Applies random mutations to a materialised tree; records what it did."""

    def __init__(self, rng: random.Random, tree: Path, recipe: Path) -> None:
        self.rng = rng
        self.tree = tree
        self.recipe = recipe
        self.done: list[str] = []

    def yaml_files(self) -> list[Path]:
        found = [
            p
            for p in self.tree.rglob("*.y*ml")
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 1_000_000
        ]
        return found or [self.recipe]

    def target(self) -> Path:
        if self.rng.random() < 0.6 or not self.recipe.is_file():
            return self.recipe
        return self.rng.choice(self.yaml_files())

    # -- text mutations ------------------------------------------------------------
    def text_mutation(self) -> None:
        path = self.target()
        try:
            text = read(path)
        except OSError:
            return
        lines = text.split("\n")
        kind = self.rng.choice(
            [
                "delete-line", "dup-line", "swap-lines", "indent", "dedent", "scalar",
                "truncate", "byte", "undefined-var", "garbage", "nul", "crlf", "tab", "dollar",
                "step-name", "empty",
            ]
        )  # fmt: skip
        i = self.rng.randrange(len(lines))
        j = self.rng.randrange(len(lines))
        if kind == "delete-line":
            del lines[i]
        elif kind == "dup-line":
            lines.insert(i, lines[i])
        elif kind == "swap-lines":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = "  " + lines[i]
        elif kind == "dedent":
            lines[i] = lines[i][2:]
        elif kind == "scalar":
            match = [k for k, line in enumerate(lines) if re.search(r":\s+\S", line)]
            if match:
                k = self.rng.choice(match)
                token = self.rng.choice(fd.TYPED_TOKENS + fd.STRING_VALUES)
                token = fd.inline_scalar(
                    fd.Scalar(token, self.rng.choice(["raw", "plain"])), False, None
                )
                lines[k] = re.sub(r"(:\s+).*", lambda m: m.group(1) + token, lines[k], count=1)
        elif kind == "truncate":
            text = text[: self.rng.randrange(len(text) + 1)]
            lines = text.split("\n")
        elif kind == "byte":
            raw = bytearray(text.encode("utf-8", "surrogateescape"))
            if raw:
                raw[self.rng.randrange(len(raw))] = self.rng.randrange(256)
            lines = raw.decode("utf-8", "surrogateescape").split("\n")
        elif kind == "undefined-var":
            lines[i] = lines[i] + " $${no_such_variable}"
        elif kind == "garbage":
            lines.insert(
                i, self.rng.choice(["]", "x: [1, 2", "a: b: c", "\tbad: tab", "- @x", "? "])
            )
        elif kind == "nul":
            lines[i] = lines[i] + "\0"
        elif kind == "crlf":
            lines = [line + "\r" for line in lines]
        elif kind == "tab":
            lines[i] = lines[i].replace("  ", "\t", 1)
        elif kind == "dollar":
            lines[i] = lines[i].replace("$${", self.rng.choice(["$$", "${", "$${$${", "$${}"]), 1)
        elif kind == "step-name":
            lines[i] = re.sub(r"- (\w+)$", r"- \1_nothere", lines[i])
        elif kind == "empty":
            lines = []
        write_back(path, "\n".join(lines))
        self.done.append(f"text:{kind}")

    # -- hostile mutations ---------------------------------------------------------
    def append(self, text: str) -> None:
        """Append top-level YAML to the entry recipe (a repeated key: the last wins)."""
        with contextlib.suppress(OSError):
            body = read(self.recipe) if self.recipe.is_file() else ""
            write_back(self.recipe, body.rstrip("\n") + "\n" + text)

    def add_globals(self, entries: list[str]) -> None:
        """Insert ``key: value`` lines at the top of the recipe's ``global:`` map."""
        with contextlib.suppress(OSError):
            lines = read(self.recipe).split("\n")
            for k, line in enumerate(lines):
                if re.fullmatch(r"global:\s*", line):
                    nxt = next((ln for ln in lines[k + 1 :] if ln.strip()), "  x")
                    pad = re.match(r"\s*", nxt).group(0) or "  "  # type: ignore[union-attr]
                    lines[k + 1 : k + 1] = [pad + e for e in entries]
                    write_back(self.recipe, "\n".join(lines))
                    return
            self.append("global:\n" + "".join(f"  {e}\n" for e in entries))

    def use_in_step(self, command: str) -> None:
        self.append(
            "setup:\n  - hostile:\n    - m:\n      - exec_local: " + command + "\n"
            if self.rng.random() < 0.7
            else "bootstrap:\n  - hostile:\n    - m:\n      - exec_in: " + command + "\n"
        )

    def hostile_mutation(self) -> None:
        kind = self.rng.choice(
            [
                "alias-bomb", "alias-deep", "var-doubling", "anchor-bomb", "anchor-bomb-step",
                "special-step", "special-aliases", "special-checkpoint", "special-extend",
                "special-env", "special-recipe", "special-data", "non-utf8-name",
                "non-utf8-content", "huge-value", "huge-steps", "deep-flow", "deep-block",
                "extend-self", "extend-deep", "var-cycle", "include-steps-many",
                "alias-recursive",
            ]
        )  # fmt: skip
        getattr(self, "h_" + kind.replace("-", "_"))()
        self.done.append(f"hostile:{kind}")

    def h_alias_bomb(self) -> None:
        depth = self.rng.choice([20, 30, 40])
        body = "aliases:\n  a0:\n    - exec_local: echo bomb\n"
        for k in range(1, depth):
            body += f"  a{k}:\n    - a{k - 1}\n    - a{k - 1}\n"
        self.append(body + f"setup:\n  - bomb:\n    - m:\n      - a{depth - 1}\n")

    def h_alias_deep(self) -> None:
        depth = self.rng.choice([500, 2000, 10000])
        body = "aliases:\n  d0:\n    - exec_local: echo @1\n"
        for k in range(1, depth):
            body += f"  d{k}:\n    - d{k - 1}: @1\n"
        self.append(body + f"setup:\n  - deep:\n    - m:\n      - d{depth - 1}: x\n")

    def h_alias_recursive(self) -> None:
        self.append(
            "aliases:\n  r1:\n    - r2\n  r2:\n    - r1\nsetup:\n  - rec:\n    - m:\n      - r1\n"
        )

    def h_var_doubling(self) -> None:
        depth = self.rng.choice([30, 40, 64])
        entries = ["v0: xx"] + [f'v{k}: "$${{v{k - 1}}}$${{v{k - 1}}}"' for k in range(1, depth)]
        self.add_globals(entries)
        self.use_in_step(f"echo $${{v{depth - 1}}}")

    def h_anchor_bomb(self) -> None:
        levels = self.rng.choice([8, 9, 12])
        entries = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for k in range(1, levels):
            entries.append(f"lol{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
        self.add_globals(entries)
        if self.rng.random() < 0.6:
            self.use_in_step(f"echo $${{lol{levels - 1}}}")

    def h_anchor_bomb_step(self) -> None:
        body = "x0: &s0\n  - exec_local: echo a\n  - exec_local: echo b\n"
        for k in range(1, 25):
            body += f"x{k}: &s{k}\n  - *s{k - 1}\n  - *s{k - 1}\n"
        step = self.tree / "steps" / "setup" / "anchored.yaml"
        # the bomb in the step file itself: microsteps whose commands double each level
        put(step, body.replace("x0:", "- x0:").replace("\nx", "\n- x") + "- m:\n  - group: *s24\n")
        self.append("setup:\n  - anchored\n")

    def special(self, path: Path) -> str:
        kind = self.rng.choice(["devzero", "fifo", "dir", "dangling", "loop", "urandom", "tty"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            put(path, "")
            path.unlink()
        if kind == "devzero":
            path.symlink_to("/dev/zero")
        elif kind == "urandom":
            path.symlink_to("/dev/urandom")
        elif kind == "tty":
            path.symlink_to("/dev/tty")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "dangling":
            path.symlink_to(path.parent / "no-such-target.yaml")
        else:
            path.symlink_to(path.name)  # a symlink to itself: ELOOP
        return kind

    def h_special_step(self) -> None:
        kind = self.special(self.tree / "steps" / "setup" / "special.yaml")
        self.append("setup:\n  - special\n")
        self.done.append(f"special:{kind}")

    def h_special_aliases(self) -> None:
        kind = self.special(self.tree / "steps" / "aliases" / "special.yaml")
        self.append("aliases: special.yaml\n")
        self.done.append(f"special:{kind}")

    def h_special_checkpoint(self) -> None:
        kind = self.special(self.tree / "steps" / "checkpoints" / "special.yaml")
        self.append("checkpoint: special.yaml\n")
        self.done.append(f"special:{kind}")

    def h_special_extend(self) -> None:
        kind = self.special(self.recipe.parent / "special-parent.yaml")
        self.append("extend: special-parent\n")
        self.done.append(f"special:{kind}")

    def h_special_env(self) -> None:
        kind = self.special(self.tree / "steps" / "env" / "special.sh")
        self.append("env: special.sh\n")
        self.done.append(f"special:{kind}")

    def h_special_recipe(self) -> None:
        self.done.append(f"special:{self.special(self.recipe)}")

    def h_special_data(self) -> None:
        kind = self.special(self.tree / "steps" / "data" / "special.txt")
        self.use_in_step("cat $${kameleon_data_dir}/special.txt")
        self.done.append(f"special:{kind}")

    def h_non_utf8_name(self) -> None:
        bad = self.rng.choice(NON_UTF8)
        name = os.fsdecode(b"st" + bad)
        put(self.tree / "steps" / "setup" / (name + ".yaml"), "- m:\n  - exec_local: echo hi\n")
        self.append("setup:\n  - " + name + "\n")

    def h_non_utf8_content(self) -> None:
        bad = self.rng.choice(NON_UTF8)
        path = self.target()
        with contextlib.suppress(OSError):
            data = read_bytes(path)
            at = self.rng.randrange(len(data) + 1)
            put(path, data[:at] + bad + data[at:])

    def h_huge_value(self) -> None:
        size = self.rng.choice([1 << 20, 8 << 20, 40 << 20])
        self.add_globals([f"huge: {'x' * size}"])
        if self.rng.random() < 0.5:
            self.use_in_step("echo $${huge}$${huge}")

    def h_huge_steps(self) -> None:
        count = self.rng.choice([20_000, 100_000])
        body = "".join(f"- m{k}:\n  - exec_local: echo {k}\n" for k in range(count))
        put(self.tree / "steps" / "setup" / "many.yaml", body)
        self.append("setup:\n  - many\n")

    def h_deep_flow(self) -> None:
        depth = self.rng.choice([1000, 5000, 50_000])
        self.add_globals(["deep: " + "[" * depth + "x" + "]" * depth])
        if self.rng.random() < 0.5:
            self.use_in_step("echo $${deep}")

    def h_deep_block(self) -> None:
        depth = self.rng.choice([300, 1000, 3000])
        body = "".join(" " * k + f"k{k}:\n" for k in range(depth)) + " " * depth + "v\n"
        put(self.recipe.parent / "deep.yaml", body)
        self.append("extend: deep\n")

    def h_extend_self(self) -> None:
        self.append(f"extend: {self.recipe.stem}\n")

    def h_extend_deep(self) -> None:
        depth = self.rng.choice([100, 400])
        directory = self.recipe.parent
        for k in range(depth):
            parent = f"extend: chain{k + 1}\n" if k + 1 < depth else ""
            put(directory / f"chain{k}.yaml", parent + f"global:\n  c{k}: {k}\n")
        self.append("extend: chain0\n")

    def h_var_cycle(self) -> None:
        self.add_globals(["cy1: $${cy2}", "cy2: pre-$${cy1}"])
        self.use_in_step("echo $${cy1}")

    def h_include_steps_many(self) -> None:
        self.add_globals(["include_steps: [" + ", ".join(f"d{k}" for k in range(2000)) + "]"])


@dataclass(frozen=True)
class FuzzTask:
    index: int
    mode: str  # "l" (build -d -l) or "info"
    replay: Path | None = None  # a saved failing run (``--replay``) instead of a mutation

    @property
    def slug(self) -> str:
        return self.replay.name if self.replay is not None else f"{self.index}-{self.mode}"


def materialise(source: Source, seed: int, index: int, case: Path) -> tuple[Path, str, list[str]]:
    """Write the mutated tree of task ``index`` under ``case``; (cwd, recipe arg, mutations)."""
    digest = hashlib.sha256(f"campaign:{seed}:{index}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    hostile_dir = rng.random() < 0.2
    dirname = rng.choice(HOSTILE_DIRS) if hostile_dir else "tree"
    if hostile_dir and rng.random() < 0.2:
        dirname = os.fsdecode(b"dir" + rng.choice(NON_UTF8))
    tree = case / dirname
    if source.root is not None:
        link_tree(source.root, tree)
    else:
        generated = fd.generate(seed, source.generated)
        generated.write(tree)
        source = Source(source.name, None, generated.recipe, source.generated)
    recipe = tree / source.recipe
    mutator = Mutator(rng, tree, recipe)
    if hostile_dir:
        mutator.done.append("hostile:dirname")
    roll = rng.random()
    if roll < 0.45:
        mutator.hostile_mutation()
        if rng.random() < 0.3:
            mutator.text_mutation()
    elif roll < 0.9:
        for _ in range(rng.randint(1, 3)):
            mutator.text_mutation()
    arg = os.path.join(dirname, source.recipe)
    if arg.startswith("-") and rng.random() < 0.7:
        arg = "./" + arg
    return case, arg, mutator.done


def pick_source(sources: list[Source], seed: int, index: int) -> Source:
    rng = random.Random(f"source:{seed}:{index}")
    return rng.choice(sources)


def fuzz_child(
    source: Source, seed: int, task: FuzzTask, case: Path, mem_limit: int
) -> None:  # pragma: no cover - runs in the forked child
    """Materialise (or restore a saved run), limit, run the CLI in-process; never returns."""
    code = 198
    try:
        os.setpgid(0, 0)
        case.mkdir(parents=True)
        meta: dict[str, Any] = {"source": source.name, "stage": "materialise"}
        (case / "meta.json").write_text(json.dumps(meta, ensure_ascii=True))
        if task.replay is not None:
            cwd, arg, mutations = restore(task.replay, case)
        else:
            cwd, arg, mutations = materialise(source, seed, task.index, case)
        argv = ["build", "-d", "-l", arg] if task.mode == "l" else ["info", arg]
        meta.update(stage="run", mutations=mutations, argv=argv, cwd=str(cwd), arg=arg)
        (case / "meta.json").write_text(json.dumps(meta, ensure_ascii=True))
        out = os.open(case / "stdout", os.O_WRONLY | os.O_CREAT, 0o644)
        err = os.open(case / "stderr", os.O_WRONLY | os.O_CREAT, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.chdir(cwd)
        from kameleon_nb.frontends.cli import main

        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc()
            sys.stderr.write("CAMPAIGN: exception escaped main()\n")
            code = 199
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.write("CAMPAIGN: harness error in child\n")
            sys.stderr.flush()
        code = 197
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 196)


@dataclass
class FuzzResult:
    task: FuzzTask
    origin: Source
    seed: int
    rc: int | None  # None: hang (killed)
    signal: int
    maxrss: int  # bytes
    seconds: float
    stdout: str
    stderr: str
    meta: dict[str, Any]
    case: Path


def _read_capped(path: Path, limit: int = 1 << 20) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def fuzz_pool(
    tasks: list[FuzzTask],
    sources: list[Source],
    seed: int,
    scratch: Path,
    jobs: int,
    timeout: float,
    mem_limit: int,
) -> Iterator[FuzzResult]:
    """Fork one child per task, ``jobs`` at a time; yield each result."""
    from kameleon_nb.frontends import cli  # warm the parent: children start at once

    del cli
    pending = list(reversed(tasks))
    running: dict[int, tuple[FuzzTask, Source, Path, float]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            task = pending.pop()
            if task.replay is None:
                source = pick_source(sources, seed, task.index)
            else:
                source = saved_source(task.replay)
            case = scratch / task.slug
            shutil.rmtree(case, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                fuzz_child(source, seed, task, case, mem_limit)
            running[pid] = (task, source, case, time.monotonic())
        reaped = False
        for pid, (task, source, case, started) in list(running.items()):
            waited, status, usage = os.wait4(pid, os.WNOHANG)
            hung = False
            if waited == 0:
                if time.monotonic() - started < timeout:
                    continue
                kill_tree(pid)
                waited, status, usage = os.wait4(pid, 0)
                hung = True
            reaped = True
            del running[pid]
            rc: int | None = None
            sig = 0
            if not hung:
                if os.WIFSIGNALED(status):
                    sig = os.WTERMSIG(status)
                else:
                    rc = os.WEXITSTATUS(status)
            try:
                meta = json.loads((case / "meta.json").read_text())
            except (OSError, ValueError):
                meta = {}
            yield FuzzResult(
                task,
                source,
                seed,
                rc,
                sig,
                usage.ru_maxrss * 1024,
                time.monotonic() - started,
                _read_capped(case / "stdout"),
                _read_capped(case / "stderr"),
                meta,
                case,
            )
        if not reaped:
            time.sleep(0.002)


PATHISH = re.compile(r"[^\s'\"`()]+\.ya?ml\b")


def names_a_file(line: str, result: FuzzResult) -> bool:
    if PATHISH.search(line):
        return True
    cwd = Path(str(result.meta.get("cwd", ".")))
    for token in re.findall(r"[^\s'\"`(),]+", line):
        word = token.rstrip(".:;")
        if "/" in word or word.endswith((".sh", ".txt")):
            candidate = cwd / word
            if os.path.lexists(word) or os.path.lexists(candidate):
                return True
    return any(name in line for name in ("special.", "/dev/", "steps/", ".yaml", ".yml"))


def normalise(line: str) -> str:
    line = re.sub(r"/tmp/fault-campaign[^\s'\":)]*", "<T>", line)
    line = re.sub(r"\(<T>[^)]*\)", "(<T>)", line)
    line = re.sub(r"\b[0-9a-f]{12}\b", "<ID>", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r'"[^"]*"', '"…"', line)
    line = re.sub(r"\d+", "N", line)
    return re.sub(r"\s+", " ", line).strip()[:110]


def classify(result: FuzzResult, mem_limit: int) -> list[str]:
    """The failure kinds of one run (empty: a clean answer)."""
    if result.meta.get("stage") != "run" and result.rc not in (196, 197):
        # the child hung or died while writing the mutated tree: the harness's fault,
        # not kameleon's (kameleon was never called)
        return ["harness", "harness-" + ("hang" if result.rc is None else "died")]
    kinds = []
    text = result.stdout + result.stderr
    if result.rc is None:
        kinds.append("hang")
    if result.signal:
        kinds.append(f"signal-{signal.Signals(result.signal).name}")
    # main() prints a MemoryError as "fatal error has occurred : ." (its text is empty)
    empty_fatal = result.rc == 154 and "has occurred : ." in text and result.maxrss > mem_limit // 4
    if "MemoryError" in text or result.maxrss >= mem_limit or empty_fatal:
        kinds.append("over-1GiB")
    if "Traceback" in text or result.rc in (154, 199):
        kinds.append("traceback")
    if result.rc in (196, 197, 198):
        kinds.append("harness")
    if result.rc is not None and result.rc not in (0, 154, 199) and result.rc < 196:
        errors = [line for line in text.splitlines() if line.startswith("Error: ")]
        if result.rc not in ERROR_EXITS:
            kinds.append("odd-exit")
        if len(errors) != 1:
            kinds.append("not-one-error-line")
        else:
            after = text.split(errors[0], 1)[1]
            if after.strip():
                kinds.append("error-not-last-line")
            if not names_a_file(errors[0], result):
                kinds.append("error-names-no-file")
    return kinds


def first_error(result: FuzzResult) -> str:
    if result.rc is None:
        return "(hang)"
    text = result.stdout + result.stderr
    for line in text.splitlines():
        if line.startswith(("Error: ", "Unfortunately", "CAMPAIGN")):
            return line
    tb = [line for line in text.splitlines() if re.match(r"\w+(Error|Exception)\b", line)]
    if tb:
        return tb[-1]
    return (text.strip().splitlines() or ["(no output)"])[-1]


def tree_changes(tree: Path, base: Path | None) -> tuple[dict[str, str], list[str]]:
    """What a mutation wrote over the source tree ``base`` (None: a generated tree).

    Returns ``(changed, removed)``: each entry that is new or differs from the source
    (a file that is no longer a hard link with the same bytes, a symlink with another
    target, a FIFO, a directory where the source has none) with its kind (``file``,
    ``symlink``, ``fifo``, ``dir``), and the source's entries that are gone; paths
    relative to ``tree``.
    """
    changed: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(tree))
            kind = _entry_kind(path)
            if kind is None or (kind == "dir" and base is None and any(path.iterdir())):
                continue  # a generated tree's directories come with their files
            original = None if base is None else base / rel
            if original is None or not _same_entry(path, original, kind):
                changed[rel] = kind
    removed: list[str] = []
    if base is not None:
        for dirpath, dirnames, filenames in os.walk(base):
            for name in [*dirnames, *filenames]:
                rel = str((Path(dirpath) / name).relative_to(base))
                if not os.path.lexists(tree / rel) and not any(
                    rel.startswith(gone + "/") for gone in removed
                ):
                    removed.append(rel)
    return changed, removed


def _entry_kind(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if stat_mod.S_ISLNK(mode):
            return "symlink"
        if stat_mod.S_ISDIR(mode):
            return "dir"
        if stat_mod.S_ISFIFO(mode):
            return "fifo"
        if stat_mod.S_ISREG(mode):
            return "file"
    return None


def _same_entry(path: Path, original: Path, kind: str) -> bool:
    """Whether ``path`` is still the source's ``original`` (a hard link, or the same)."""
    if _entry_kind(original) != kind:
        return False
    with contextlib.suppress(OSError):
        if kind == "symlink":
            return os.readlink(path) == os.readlink(original)
        if kind != "file" or os.path.samefile(path, original):
            return True
        return path.stat().st_size == original.stat().st_size and filecmp.cmp(
            path, original, shallow=False
        )
    return False


def save_failure(result: FuzzResult, kinds: list[str], out: Path) -> Path:
    """Keep what replays a failing run: the entries its mutations wrote, and how.

    Under ``out/fuzz/<class>/<seed>-<index>-<mode>/``: ``tree/`` holds the changed
    entries (the mutated recipe, the step files the mutations wrote or replaced) and
    ``result.json`` the source tree, the mutations, the command and what broke, so
    ``--replay DIR`` rebuilds the tree and runs it again (when the child died while
    mutating, before it ran kameleon, the replay makes the mutations again from the
    seed). Returns the directory.
    """
    cls = kinds[0] + " " + normalise(first_error(result))[:60]
    slug = re.sub(r"[^\w.-]+", "_", cls)[:80]
    target = out / "fuzz" / slug / f"{result.seed}-{result.task.index}-{result.task.mode}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    origin = result.origin
    arg = str(result.meta.get("arg", ""))
    tree_name = arg.removeprefix("./").split("/", 1)[0] if arg else ""
    changed: dict[str, str] = {}
    removed: list[str] = []
    if tree_name and (result.case / tree_name).is_dir():
        base = None if origin.root is None else origin.root
        changed, removed = tree_changes(result.case / tree_name, base)
        for rel, kind in changed.items():
            source, saved = result.case / tree_name / rel, target / "tree" / rel
            saved.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                if kind == "file":
                    shutil.copyfile(source, saved)
                elif kind == "symlink":
                    os.symlink(os.readlink(source), saved)
                elif kind == "dir":
                    saved.mkdir(exist_ok=True)
    record = {
        "kinds": kinds,
        "rc": result.rc,
        "signal": result.signal,
        "maxrss": result.maxrss,
        "seconds": round(result.seconds, 2),
        "first_error": first_error(result),
        "source": origin.name,
        "source_root": None if origin.root is None else str(origin.root),
        "source_recipe": origin.recipe,
        "generated": origin.generated,
        "seed": result.seed,
        "index": result.task.index,
        "mode": result.task.mode,
        "mutations": result.meta.get("mutations"),
        "stage": result.meta.get("stage"),
        "argv": result.meta.get("argv"),
        "arg": arg,
        "tree": tree_name,
        "changed": changed,
        "removed": removed,
        "output_tail": (result.stdout + result.stderr)[-2000:],
    }
    (target / "result.json").write_text(json.dumps(record, indent=1, ensure_ascii=True))
    return target


def replay_command(sample: Path, timeout: float) -> str:
    script = str(ROOT / "benchmarks" / "fault_campaign.py")
    argv = [PYTHON, script, "--fuzz-timeout", f"{timeout:g}", "--replay", str(sample)]
    return " ".join(map(shell_quote, argv))


def saved_source(sample: Path) -> Source:
    """The source tree a saved run was mutated from (the collections extracted again)."""
    record = json.loads((sample / "result.json").read_text())
    root = None if record["source_root"] is None else Path(record["source_root"])
    if root is not None and not root.is_dir() and record["source"][:2] in ("K:", "D:"):
        corpus_sources(root.parent.parent)  # <work>/corpus/<collection>
    return Source(record["source"], root, record["source_recipe"], record["generated"])


def restore(sample: Path, case: Path) -> tuple[Path, str, list[str]]:
    """Rebuild a saved run's tree under ``case``: (cwd, recipe argument, mutations)."""
    record = json.loads((sample / "result.json").read_text())
    if not record["tree"]:
        # the child died before running kameleon: the mutations are made again
        source = saved_source(sample)
        return materialise(source, record["seed"], record["index"], case)
    tree = case / record["tree"]
    if record["source_root"] is not None:
        link_tree(Path(record["source_root"]), tree)
    for rel in record["removed"]:
        remove(tree / rel)
    for rel, kind in record["changed"].items():  # top-down: a new directory comes first
        path, saved = tree / rel, sample / "tree" / rel
        if kind == "dir" and path.is_dir() and not path.is_symlink():
            continue
        remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            shutil.copyfile(saved, path)
        elif kind == "symlink":
            os.symlink(os.readlink(saved), path)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()
    return case, record["arg"], list(record["mutations"] or [])


def part_replay(args: argparse.Namespace) -> int:
    """``--replay DIR``: run saved failing runs again, as the campaign ran them."""
    samples = [Path(p).resolve() for p in args.replay]
    tasks = []
    for sample in samples:
        record = json.loads((sample / "result.json").read_text())
        tasks.append(FuzzTask(record["index"], record["mode"], sample))
    scratch = args.work / "replay"
    clean_up(scratch, "no-marker", remove=True)
    scratch.mkdir(parents=True, exist_ok=True)
    still = 0
    for result in fuzz_pool(tasks, [], args.seed, scratch, 1, args.fuzz_timeout, GIB):
        kinds = classify(result, GIB)
        still += bool(kinds)
        print(
            f"{result.task.replay}: {' '.join(kinds) or 'clean'}; exit {result.rc}, "
            f"{result.seconds:.1f} s, max RSS {result.maxrss >> 20} MiB"
        )
        print(f"  source {result.origin.name}; mutations {result.meta.get('mutations')}")
        print(f"  {first_error(result)}")
        print(
            "  the tree is kept; by hand: cd "
            + shell_quote(str(result.case))
            + " && "
            + " ".join(map(shell_quote, kameleon(*result.meta.get("argv", []))))
        )
    return 1 if still else 0


def part_fuzz(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    scratch = args.work / "fuzz"
    clean_up(scratch, "no-marker", remove=True)
    scratch.mkdir(parents=True, exist_ok=True)
    sources = local_sources() + corpus_sources(args.work)
    generated = [Source(f"generated:{k}", None, "", k) for k in range(max(20, len(sources) // 3))]
    pool = sources + generated
    count = args.recipes
    tasks = [FuzzTask(i, mode) for i in range(count) for mode in ("l", "info")]
    mem_limit = GIB
    kinds_count: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    mutation_fail: Counter[str] = Counter()
    rc_count: Counter[str] = Counter()
    replays: list[str] = []
    started = time.monotonic()
    runs = 0
    failing = 0
    max_rss = 0
    slowest = 0.0
    print(
        f"== fuzz: {count} mutated recipes x 2 modes from {len(sources)} sources "
        f"(+{len(generated)} generated), {args.jobs} jobs, timeout {args.fuzz_timeout} s, "
        "RLIMIT_AS 1 GiB",
        flush=True,
    )
    for result in fuzz_pool(
        tasks, pool, args.seed, scratch, args.jobs, args.fuzz_timeout, mem_limit
    ):
        runs += 1
        max_rss = max(max_rss, result.maxrss)
        slowest = max(slowest, result.seconds)
        rc_count[str(result.rc) if result.rc is not None else "timeout"] += 1
        kinds = classify(result, mem_limit)
        if kinds:
            failing += 1
            kinds_count.update(kinds)
            classes[f"[{kinds[0]}] {normalise(first_error(result))}"] += 1
            for mutation in result.meta.get("mutations", []) or ["(none)"]:
                mutation_fail[f"{kinds[0]} <- {mutation}"] += 1
            sample = save_failure(result, kinds, args.out)
            replays.append(f"[{' '.join(kinds)}] {replay_command(sample, args.fuzz_timeout)}")
        shutil.rmtree(result.case, ignore_errors=True)
        if runs % 1000 == 0:
            print(
                f"  ... {runs}/{len(tasks)} runs, {failing} failing, "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
    elapsed = time.monotonic() - started
    print(
        f"runs: {runs} ({count} recipes x build -d -l, info) in {elapsed:.0f} s "
        f"({runs / max(elapsed, 1e-9):.1f}/s); max RSS {max_rss >> 20} MiB; slowest "
        f"{slowest:.1f} s"
    )
    print(f"exit statuses: {dict(sorted(rc_count.items()))}")
    for kind in (
        "traceback",
        "hang",
        "over-1GiB",
        "not-one-error-line",
        "error-not-last-line",
        "error-names-no-file",
        "odd-exit",
        "harness",
    ):
        print(f"  {kind:<22} {kinds_count.get(kind, 0)}")
    for kind, n in kinds_count.items():
        if kind.startswith("signal-"):
            print(f"  {kind:<22} {n}")
    print(f"failure classes (first error line, normalised; {len(classes)} classes):")
    for cls, n in classes.most_common(args.show):
        print(f"  {n:>5}  {cls}")
    print("failures by mutation (top):")
    for cls, n in mutation_fail.most_common(args.show):
        print(f"  {n:>5}  {cls}")
    print(f"failing runs ({len(replays)}), each kept under {args.out / 'fuzz'}; replay one with:")
    for line in replays:
        print(f"  {line}")
    (args.out / "fuzz").mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz" / f"replay-seed{args.seed}.txt").write_text(
        "".join(line + "\n" for line in replays)
    )
    summary["fuzz"] = {
        "recipes": count,
        "runs": runs,
        "seconds": round(elapsed),
        "failing": failing,
        "kinds": dict(kinds_count),
        "classes": dict(classes.most_common(60)),
        "exit_statuses": dict(rc_count),
        "max_rss_mib": max_rss >> 20,
    }
    shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Real builds: recipes, backends, verification of listed checkpoints
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    extend: str
    mechanism: str
    root: bool  # needs root

    @property
    def create_window(self) -> float:
        """How long a ``create`` takes, roughly (to spread kills over it)."""
        return 0.03 if self.mechanism == "overlay" else 0.4


BACKENDS = [
    Backend("chroot+overlay", "backends/chroot", "overlay", True),
    Backend("chroot+rsync", "backends/chroot", "rsync", True),
    Backend("proot+rsync", "backends/proot", "rsync", False),
]
BOOT_SLUGS = buildcheck.BUSYBOX_SLUGS[:4]
RECIPE = "k.yaml"


def payload_step(name: str, number: int, kib: int, sleep: float, extra: str = "") -> str:
    """A microstep writing ``/data/f<number>`` (random) and its md5 (written atomically)."""
    return (
        f"    - {name}:\n"
        "      - exec_in: |\n"
        "          mkdir -p /data\n"
        "          for s in /data/*.md5; do\n"
        '            [ -e "$s" ] || continue\n'
        '            md5sum -c "$s" >/dev/null 2>&1 || { echo "CAMPAIGN-CORRUPT $s"; exit 3; }\n'
        "          done\n"
        f"          head -c {kib * 1024} /dev/urandom > /data/f{number}\n"
        f"          echo '{extra}' >> /data/f{number}\n"
        f"          md5sum /data/f{number} > /data/f{number}.tmp\n"
        f"          mv /data/f{number}.tmp /data/f{number}.md5\n"
        + (f"          sleep {sleep}\n" if sleep else "")
    )


def write_recipe(
    directory: Path, backend: Backend, steps: int, kib: int, sleep: float, variable: str = "gen"
) -> list[str]:
    """The campaign's recipe: busybox rootfs, ``steps`` payload steps, a final check.

    ``$${<variable>}`` is used in the first payload step: a new value reruns every payload
    step. Returns the slugs in build order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    body = (
        f"extend: {backend.extend}\ncheckpoint: {backend.mechanism}.yaml\n"
        f"global:\n  {variable}: '0'\n  hostname: campaign\n"
        "bootstrap:\n  - busybox_rootfs\nsetup:\n  - work:\n"
    )
    for k in range(1, steps + 1):
        body += payload_step(f"s{k}", k, kib, sleep, f"$${{{variable}}}" if k == 1 else "")
    body += (
        "  - verify:\n    - check:\n      - exec_in: |\n"
        f"          test $(ls /data/*.md5 | wc -l) -eq {steps} \\\n"
        "            || { echo CAMPAIGN-CORRUPT count; exit 3; }\n"
        "          for s in /data/*.md5; do\n"
        '            md5sum -c "$s" >/dev/null 2>&1 || { echo "CAMPAIGN-CORRUPT $s"; exit 3; }\n'
        "          done\n"
    )
    (directory / RECIPE).write_text(body)
    return BOOT_SLUGS + [f"setup/work/s{k}" for k in range(1, steps + 1)] + ["setup/verify/check"]


def listed(directory: Path, env: dict[str, str], globals_: list[str]) -> tuple[list[str], Run]:
    """The ids ``build -l`` lists (in its order)."""
    done = run(kameleon("build", "-l", *globals_, RECIPE), cwd=directory, timeout=90, env=env)
    ids = [m.group(1) for line in done.out.splitlines() if (m := CHECKPOINT_ROW.match(line))]
    return ids, done


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


@dataclass
class Verdict:
    """What restoring listed checkpoints gave."""

    checked: int = 0
    corrupt: list[str] = field(default_factory=list)  # "id: reason"
    commands: list[str] = field(default_factory=list)


def verify_checkpoints(
    directory: Path,
    env: dict[str, str],
    globals_: list[str],
    ids: list[str],
    rng: random.Random,
    every: bool,
    marker: str,
    tolerate_full: bool = False,
) -> Verdict:
    """``build -F ID`` for the newest listed id and one other (or each): must finish.

    With ``tolerate_full`` (a full disk), a restore passes when the build went on past
    the restored checkpoint (a later "No space left" is the disk, not the checkpoint),
    and fails when the step after it found a file of an earlier step damaged.
    """
    verdict = Verdict()
    chosen = (
        list(ids)
        if every
        else ([ids[-1], *rng.sample(ids[:-1], min(1, len(ids) - 1))] if ids else [])
    )
    for step_id in chosen:
        log = CAPTURE / f"verify-{step_id}.json"
        with contextlib.suppress(OSError):
            log.unlink()
        done = run(
            kameleon("build", "--script", "-F", step_id, "--log-json", str(log), *globals_, RECIPE),
            cwd=directory,
            timeout=300,
            env=env,
        )
        verdict.checked += 1
        verdict.commands.append(done.command_line())
        reason = ""
        if "CAMPAIGN-CORRUPT" in done.out:
            line = next(ln for ln in done.out.splitlines() if "CAMPAIGN-CORRUPT" in ln)
            reason = "content damaged: " + line.strip()
        elif done.timed_out:
            reason = "restore build timed out"
        elif done.rc != 0:
            seen = [e.get("event") for e in events(log)]
            restored = "CheckpointRestored" in seen
            went_on = restored and "MicrostepStarted" in seen[seen.index("CheckpointRestored") :]
            if not (tolerate_full and went_on):
                detail = " | ".join(
                    ln.strip()
                    for ln in done.out.splitlines()
                    if re.search(r"No space|error|Error|fail", ln) and "occured" not in ln
                )
                reason = f"exit {done.rc}: {detail[-300:] or done.error_line()[:200]}"
        if reason:
            verdict.corrupt.append(f"{step_id}: {reason}")
        left = leftovers(directory, marker, grace=3)
        if left:
            verdict.corrupt.append(f"{step_id}: left after a normal build: {left.describe()[:300]}")
        clean_up(directory, marker)
    return verdict


def keep_reproducer(directory: Path, out: Path, name: str, notes: dict[str, Any]) -> Path:
    """Copy a failing build directory (no rootfs mounts, the recipe, logs) for triage."""
    target = out / name
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cp", "-a", str(directory), str(target)], check=False, timeout=300, capture_output=True
    )
    (target / "CAMPAIGN-NOTES.json").write_text(json.dumps(notes, indent=1, ensure_ascii=False))
    return target


class EventWatch:
    """Polls a ``--log-json`` file; signals the build right after the chosen event."""

    def __init__(
        self, log: Path, match: Callable[[dict[str, Any]], bool], delay: float, sig: int
    ) -> None:
        self.log = log
        self.match = match
        self.delay = delay
        self.sig = sig
        self.offset = 0
        self.buffer = b""
        self.hit_at: float | None = None
        self.sent: dict[str, Any] | None = None
        self.event: dict[str, Any] | None = None

    def __call__(self, proc: subprocess.Popen[bytes]) -> bool:
        if self.hit_at is None:
            with contextlib.suppress(OSError), open(self.log, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
                self.offset += len(chunk)
                self.buffer += chunk
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if self.match(record):
                        self.hit_at = time.monotonic()
                        self.event = record
                        break
        if self.hit_at is not None and time.monotonic() - self.hit_at >= self.delay:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, self.sig)
            self.sent = self.event
            return True
        return False


# ---------------------------------------------------------------------------------------
# Part 2: kills
# ---------------------------------------------------------------------------------------

MOMENTS = ("step", "create", "apply")


@dataclass
class KillStats:
    kills: Counter[str] = field(default_factory=Counter)  # "SIGKILL/create" -> n
    missed: int = 0
    hung_after_signal: int = 0
    exit_codes: Counter[str] = field(default_factory=Counter)
    corrupt: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    checked: int = 0
    reproducers: list[str] = field(default_factory=list)
    seconds: float = 0.0


def fresh_dir(directory: Path, backend: Backend, marker: str, steps: int) -> list[str]:
    clean_up(directory, marker, remove=True)
    return write_recipe(directory, backend, steps, kib=256, sleep=0.4)


def kill_trial(
    backend: Backend,
    directory: Path,
    trial: int,
    moment: str,
    sig: int,
    rng: random.Random,
    args: argparse.Namespace,
    marker: str,
    stats: KillStats,
    fresh: bool,
    slugs: list[str],
) -> bool:
    """One kill; returns False when the build ended before the chosen moment."""
    env = build_env(marker)
    gen = ["-g", f"gen:{trial}"]
    if moment == "apply" and fresh:
        warm = run(
            kameleon("build", "--script", "-c", "-g", "gen:warm", RECIPE),
            cwd=directory,
            timeout=300,
            env=env,
        )
        if warm.rc != 0:
            stats.corrupt.append(f"trial {trial}: warm-up build failed: {warm.error_line()}")
    candidates = slugs if fresh else [s for s in slugs if s.startswith("setup/")]
    target = rng.choice(candidates)
    if moment == "step":
        delay = rng.uniform(0, 0.45)

        def match(e: dict[str, Any]) -> bool:
            return (
                e.get("event") == "MicrostepStarted"
                and e.get("slug") == target
                and "Running" in str(e.get("reason"))
            )
    elif moment == "create":
        delay = rng.uniform(0, backend.create_window)

        def match(e: dict[str, Any]) -> bool:
            return e.get("event") == "CheckpointCreated" and e.get("slug") == target
    else:
        delay = rng.uniform(0, backend.create_window)

        def match(e: dict[str, Any]) -> bool:
            return e.get("event") == "CheckpointRestored"

    log = CAPTURE / f"kill-{trial}.json"
    watch = EventWatch(log, match, delay, sig)
    argv = kameleon("build", "--script", "-c", *gen, "--log-json", str(log), RECIPE)
    done = run(argv, cwd=directory, timeout=args.build_timeout, env=env, on_line=watch)
    name = f"{signal.Signals(sig).name}/{moment}"
    if watch.sent is None:
        stats.missed += 1
        clean_up(directory, marker)
        return False
    stats.kills[name] += 1
    stats.exit_codes[
        f"{signal.Signals(sig).name}:{done.rc if done.rc is not None else 'hang'}"
    ] += 1
    if done.timed_out:
        stats.hung_after_signal += 1
    at = target if moment != "apply" else "apply"
    where = f"{backend.name} trial {trial} {name} at {at} +{delay * 1000:.0f} ms"
    left = leftovers(directory, marker, grace=5)
    if left.processes:
        stats.processes.append(f"{where}: " + left.describe()[:400])
    if left.mounts or left.loops:
        stats.mounts.append(f"{where}: " + left.describe()[:400])
    clean_up(directory, marker)
    ids, listing = listed(directory, env, gen)
    if listing.rc != 0:
        stats.corrupt.append(f"{where}: build -l failed: {listing.error_line()}")
    if ids:
        verdict = verify_checkpoints(directory, env, gen, ids, rng, args.verify_all, marker)
    else:
        verdict = Verdict()
        after = run(
            kameleon("build", "--script", "-c", *gen, RECIPE),
            cwd=directory,
            timeout=args.build_timeout,
            env=env,
        )
        verdict.checked, verdict.commands = 1, [after.command_line()]
        if after.rc != 0:
            verdict.corrupt.append(
                f"(no checkpoint listed) next build: exit {after.rc}: {after.error_line()}"
            )
    stats.checked += verdict.checked
    if verdict.corrupt:
        stats.corrupt += [f"{where}: {c}" for c in verdict.corrupt]
        if len(stats.reproducers) < 4:
            path = keep_reproducer(
                directory,
                args.out,
                f"kill/{backend.name}-{trial}",
                {
                    "killed": argv,
                    "signal": name,
                    "event": watch.sent,
                    "delay": delay,
                    "verify": verdict.commands,
                    "corrupt": verdict.corrupt,
                },
            )
            stats.reproducers.append(str(path))
        return True
    return True


def part_kill(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    print(
        f"== kill: {args.kills} SIGKILL + {args.sigint_kills} SIGINT per backend, "
        f"moments {', '.join(MOMENTS)}",
        flush=True,
    )
    summary["kill"] = {}
    for backend in BACKENDS:
        if backend.root and not IS_ROOT:
            print(f"{backend.name}: skipped (needs root)")
            continue
        if backend.extend.endswith("proot") and not shutil.which("proot"):
            print(f"{backend.name}: skipped (no proot)")
            continue
        rng = random.Random(f"kill:{args.seed}:{backend.name}")
        marker = "campaign-" + secrets.token_hex(6)
        directory = args.work / "kill" / backend.name.replace("+", "-")
        slugs = fresh_dir(directory, backend, marker, args.steps)
        stats = KillStats()
        started = time.monotonic()
        plan = [signal.SIGKILL] * args.kills + [signal.SIGINT] * args.sigint_kills
        trial = 0
        fresh = True
        for number, sig in enumerate(plan):
            moment = MOMENTS[number % len(MOMENTS)]
            for _attempt in range(3):
                trial += 1
                if trial % 10 == 0:
                    slugs, fresh = fresh_dir(directory, backend, marker, args.steps), True
                before = len(stats.corrupt)
                hit = kill_trial(
                    backend, directory, trial, moment, sig, rng, args, marker, stats, fresh, slugs
                )
                fresh = False
                if len(stats.corrupt) > before:  # start over from a clean directory
                    slugs, fresh = fresh_dir(directory, backend, marker, args.steps), True
                if hit:
                    break
        stats.seconds = time.monotonic() - started
        clean_up(directory, marker, remove=True)
        total = sum(stats.kills.values())
        print(
            f"{backend.name}: {total} kills ({dict(sorted(stats.kills.items()))}), "
            f"{stats.missed} missed moments, {stats.seconds:.0f} s"
        )
        print(
            f"  corrupt checkpoints: {len(stats.corrupt)} (of {stats.checked} restores checked); "
            f"kills leaving processes: {len(stats.processes)}; leaving mounts/loops: "
            f"{len(stats.mounts)}; hung after the signal: {stats.hung_after_signal}"
        )
        print(f"  exit statuses of killed builds: {dict(sorted(stats.exit_codes.items()))}")
        for line in (stats.corrupt + stats.processes + stats.mounts)[: args.show]:
            print(f"    - {line}")
        for path in stats.reproducers:
            print(f"  reproducer: {path}")
        summary["kill"][backend.name] = {
            "kills": dict(stats.kills),
            "missed": stats.missed,
            "corrupt": stats.corrupt,
            "processes_left": stats.processes,
            "mounts_left": stats.mounts,
            "restores_checked": stats.checked,
            "hung_after_signal": stats.hung_after_signal,
            "exit_codes": dict(stats.exit_codes),
            "seconds": round(stats.seconds),
        }


# ---------------------------------------------------------------------------------------
# Part 3: concurrent builds in one build directory
# ---------------------------------------------------------------------------------------


def part_concurrent(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    import threading

    backend = BACKENDS[0] if IS_ROOT else BACKENDS[2]
    marker = "campaign-" + secrets.token_hex(6)
    directory = args.work / "concurrent"
    rng = random.Random(f"concurrent:{args.seed}")
    print(
        f"== concurrent: {args.rounds} x two builds of one recipe in one build dir "
        f"({backend.name})",
        flush=True,
    )
    refused = both_ran = corrupt_rounds = later_failed = 0
    notes: list[str] = []
    second_times: list[float] = []
    for number in range(args.rounds):
        write_recipe(directory, backend, args.steps, kib=256, sleep=0.2)
        clean_up(directory, marker)
        env = build_env(marker)
        gen = ["-g", f"gen:c{number}"]
        results: dict[str, Run] = {}

        def start(
            name: str,
            gen: list[str] = gen,
            env: dict[str, str] = env,
            results: dict[str, Run] = results,
        ) -> None:
            results[name] = run(
                kameleon("build", "--script", "-c", *gen, RECIPE),
                cwd=directory,
                timeout=args.build_timeout,
                env=env,
            )

        first = threading.Thread(target=start, args=("A",))
        second = threading.Thread(target=start, args=("B",))
        first.start()
        time.sleep(rng.uniform(0.0, 1.5))
        second.start()
        first.join()
        second.join()
        a, b = results["A"], results["B"]
        second_times.append(b.seconds)
        if a.rc == 0 and b.rc == 0:
            both_ran += 1
        was_refused = (
            b.rc not in (0, None)
            and b.seconds < 5
            and re.search(
                r"\block(ed|s)?\b|another build|already (running|in use|building)|(held|in use) by",
                b.out,
                re.I,
            )
            is not None
        )
        refused += was_refused
        problems = []
        if a.rc != 0:
            problems.append(f"first build: exit {a.rc}: {a.error_line()[:200]}")
        if b.rc != 0:
            what = "refused" if was_refused else "second build"
            problems.append(f"{what}: exit {b.rc}: {b.error_line()[:200]}")
        left = leftovers(directory, marker, grace=5)
        if left:
            problems.append("left: " + left.describe()[:300])
        clean_up(directory, marker)
        ids, _ = listed(directory, env, gen)
        verdict = verify_checkpoints(directory, env, gen, ids, rng, args.verify_all, marker)
        after = run(
            kameleon("build", "--script", "-c", *gen, RECIPE),
            cwd=directory,
            timeout=args.build_timeout,
            env=env,
        )
        if after.rc != 0:
            later_failed += 1
            problems.append(f"later build: exit {after.rc}: {after.error_line()[:160]}")
        problems += [f"restore {c}" for c in verdict.corrupt]
        if verdict.corrupt or after.rc != 0:
            corrupt_rounds += 1
            if corrupt_rounds <= 2:
                path = keep_reproducer(
                    directory,
                    args.out,
                    f"concurrent/round-{number}",
                    {
                        "first": a.command_line(),
                        "second": b.command_line(),
                        "first_out": a.tail(15),
                        "second_out": b.tail(15),
                        "problems": problems,
                    },
                )
                problems.append(f"reproducer {path}")
        notes += [
            f"round {number} (B after {b.seconds:.1f} s, rc A={a.rc} B={b.rc}): {p}"
            for p in problems
        ]
        print(
            f"  round {number}: A exit {a.rc} ({a.seconds:.1f} s), "
            f"B exit {b.rc} ({b.seconds:.1f} s)"
            f"{' refused' if was_refused else ''}"
            f"{' CORRUPT' if verdict.corrupt or after.rc else ''}",
            flush=True,
        )
    clean_up(directory, marker, remove=True)
    print(
        f"rounds: {args.rounds}; second build refused: {refused}; both ran to the end: "
        f"{both_ran}; rounds with corruption (a listed checkpoint not restorable or a later "
        f"build failing): {corrupt_rounds} (later build failed: {later_failed})"
    )
    for note in notes[: args.show]:
        print(f"    - {note}")
    summary["concurrent"] = {
        "rounds": args.rounds,
        "refused": refused,
        "both_ran": both_ran,
        "corrupt_rounds": corrupt_rounds,
        "later_failed": later_failed,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------
# Part 4: a full disk
# ---------------------------------------------------------------------------------------


def part_diskfull(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    print("== diskfull: 30 MB tmpfs as build directory, a recipe writing until full", flush=True)
    summary["diskfull"] = {}
    if not IS_ROOT:
        print("skipped (needs root to mount a tmpfs)")
        return
    for backend in BACKENDS[:2]:
        marker = "campaign-" + secrets.token_hex(6)
        mnt = args.work / "diskfull" / backend.name.replace("+", "-")
        clean_up(mnt, marker, remove=True)
        mnt.mkdir(parents=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=30M", "campaign", str(mnt)], check=True, timeout=30
        )
        top, mnt = mnt, mnt / "r"  # the tmpfs itself is not a leftover
        try:
            write_recipe(mnt, backend, steps=14, kib=3 * 1024, sleep=0)
            env = build_env(marker)
            log = CAPTURE / "fill.json"
            done = run(
                kameleon("build", "--script", "-c", "--log-json", str(log), RECIPE),
                cwd=mnt,
                timeout=args.build_timeout,
                env=env,
            )
            errors = [ln for ln in done.out.splitlines() if ln.startswith("Error: ")]
            left = leftovers(mnt, marker, grace=5)
            clean_up(mnt, marker)
            df = shutil.disk_usage(mnt)
            ids, listing = listed(mnt, env, [])
            rng = random.Random(0)
            # newest first: each restore build goes on and fills the disk again
            verdict = verify_checkpoints(
                mnt, env, [], ids[::-1], rng, True, marker, tolerate_full=True
            )
            # a restore that failed for lack of space: intact if it passes with more room
            no_space = [c.split(":", 1)[0] for c in verdict.corrupt if "No space left" in c]
            retried = Verdict()
            if no_space:
                subprocess.run(
                    ["mount", "-o", "remount,size=400M", str(top)], check=False, timeout=30
                )
                retried = verify_checkpoints(
                    mnt, env, [], no_space, rng, True, marker, tolerate_full=True
                )
                verdict.corrupt = [
                    c for c in verdict.corrupt if c.split(":", 1)[0] not in no_space
                ] + [f"{c} (also with 400 MB)" for c in retried.corrupt]
            print(
                f"{backend.name}: filling build exit {done.rc} in {done.seconds:.1f} s; "
                f"{len(errors)} Error line(s): {errors[0][:150] if errors else done.tail(2)!r}"
            )
            print(
                f"  free after: {df.free >> 10} KiB; listed checkpoints: {len(ids)} "
                f"(build -l exit {listing.rc}); restored OK: "
                f"{verdict.checked - len(verdict.corrupt)}"
                f"/{verdict.checked}; left after the failure: {left.describe() or 'nothing'}"
            )
            print(
                f"  restores that failed on the full disk for lack of space: {len(no_space)}"
                f" (then passed with 400 MB: {len(no_space) - len(retried.corrupt)})"
            )
            for line in verdict.corrupt[: args.show]:
                print(f"    - not restorable: {line}")
            if verdict.corrupt:
                path = keep_reproducer(
                    mnt,
                    args.out,
                    f"diskfull/{backend.name}",
                    {
                        "fill": done.command_line(),
                        "fill_out": done.tail(20),
                        "verify": verdict.commands,
                        "corrupt": verdict.corrupt,
                        "setup": "mount -t tmpfs -o size=30M campaign DIR; write the recipe there",
                    },
                )
                print(f"  reproducer: {path}")
            summary["diskfull"][backend.name] = {
                "fill_exit": done.rc,
                "error_lines": errors[:3],
                "listed": len(ids),
                "checked": verdict.checked,
                "not_restorable": verdict.corrupt,
                "left": left.describe(),
            }
        finally:
            clean_up(mnt, marker)
            subprocess.run(["umount", "-l", str(top)], check=False, timeout=30)
            shutil.rmtree(top, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Part 5: disk use of overlay layers after rebuilds
# ---------------------------------------------------------------------------------------


def du_bytes(paths: list[Path]) -> int:
    """Bytes on disk of ``paths`` together (a hard-linked file counted once)."""
    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return 0
    done = subprocess.run(
        ["du", "-s", "-c", "-B1", *existing],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return int(done.stdout.strip().splitlines()[-1].split()[0]) if done.stdout.strip() else 0


def live_layers(store: Path, ids: list[str]) -> list[Path]:
    """The layer directories the listed checkpoints stand on (their parent chains)."""
    layers: set[str] = set()
    for step_id in ids:
        try:
            layer = (store / "ids" / step_id).read_text().strip()
        except OSError:
            continue
        while layer and layer != "base" and layer not in layers:
            layers.add(layer)
            try:
                layer = (store / "l" / f"{layer}.parent").read_text().strip()
            except OSError:
                break
    return [store / "l" / layer for layer in sorted(layers)] + [store / "base"]


def part_rebuild(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    print(
        f"== rebuild: overlay, {args.rebuilds} rebuilds (edit a late step / -F an earlier "
        "checkpoint)",
        flush=True,
    )
    if not IS_ROOT:
        print("skipped (overlay needs root)")
        summary["rebuild"] = "skipped"
        return
    backend = BACKENDS[0]
    marker = "campaign-" + secrets.token_hex(6)
    directory = args.work / "rebuild"
    clean_up(directory, marker, remove=True)
    write_recipe(directory, backend, args.steps, kib=512, sleep=0, variable="rev")
    env = build_env(marker)
    store = directory / "build" / "k" / "checkpoints" / "overlay"
    keep = ["--keep-stale", args.keep_stale]
    first = run(
        kameleon("build", "--script", "-c", "-g", "rev:0", RECIPE),
        cwd=directory,
        timeout=args.build_timeout,
        env=env,
    )
    rows = []
    rev = 0
    failures = []
    if first.rc != 0:
        failures.append(f"first build: exit {first.rc}: {first.error_line()}")
    for number in range(1, args.rebuilds + 1):
        if number % 2:
            rev = number
            how = f"-g rev:{rev} (payload steps edited)"
            argv = kameleon("build", "--script", "-c", *keep, "-g", f"rev:{rev}", RECIPE)
        else:
            ids, _ = listed(directory, env, ["-g", f"rev:{rev}"])
            early = (
                ids[len(BOOT_SLUGS) + 1] if len(ids) > len(BOOT_SLUGS) + 1 else (ids or ["last"])[0]
            )
            how = f"-F {early} (s2), same recipe"
            argv = kameleon("build", "--script", "-F", early, *keep, "-g", f"rev:{rev}", RECIPE)
        done = run(argv, cwd=directory, timeout=args.build_timeout, env=env)
        if done.rc != 0:
            failures.append(f"rebuild {number} ({how}): exit {done.rc}: {done.error_line()}")
        clean_up(directory, marker)
        ids, _ = listed(directory, env, ["-g", f"rev:{rev}"])
        kept = sorted(p.name for p in (store / "ids").glob("*")) if (store / "ids").is_dir() else []
        total = du_bytes([store])
        live = du_bytes(live_layers(store, kept))
        valid = du_bytes(live_layers(store, ids))
        layers = (
            len([p for p in (store / "l").glob("*") if p.is_dir()]) if (store / "l").is_dir() else 0
        )
        rows.append((number, how, total, live, valid, layers, len(kept), len(ids)))
        print(
            f"  rebuild {number:>2} {how:<34} store {total >> 10:>7} KiB, layers of kept "
            f"checkpoints {live >> 10:>7} KiB (ratio {total / max(live, 1):.2f}), of valid ones "
            f"{valid >> 10:>7} KiB (ratio {total / max(valid, 1):.2f}); {layers} layer dirs, "
            f"{len(kept)} kept, {len(ids)} valid",
            flush=True,
        )
    clean_up(directory, marker, remove=True)
    if rows:
        _, _, total, live, valid, layers, count, count_valid = rows[-1]
        print(
            f"after {args.rebuilds} rebuilds (--keep-stale {args.keep_stale}): "
            f"checkpoints/overlay {total >> 10} KiB; layers of the {count} kept checkpoints "
            f"{live >> 10} KiB: ratio {total / max(live, 1):.2f} (target <= 1.10); of the "
            f"{count_valid} valid ones {valid >> 10} KiB: ratio {total / max(valid, 1):.2f}; "
            f"{layers} layer directories"
        )
    for failure in failures:
        print(f"    - {failure}")
    summary["rebuild"] = {
        "rows": [
            dict(
                zip(
                    ("n", "how", "store", "kept_layers", "valid_layers", "layers", "kept", "valid"),
                    r,
                    strict=True,
                )
            )
            for r in rows
        ],
        "keep_stale": args.keep_stale,
        "ratio": rows[-1][2] / max(rows[-1][3], 1) if rows else None,
        "ratio_valid": rows[-1][2] / max(rows[-1][4], 1) if rows else None,
        "failures": failures,
    }


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

PARTS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], None]] = {
    "fuzz": part_fuzz,
    "kill": part_kill,
    "concurrent": part_concurrent,
    "diskfull": part_diskfull,
    "rebuild": part_rebuild,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="repeatable")
    parser.add_argument("--quick", action="store_true", help="a small run of each part")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--recipes", type=int, default=5000, help="fuzz: mutated recipes")
    parser.add_argument("--jobs", type=int, default=2, help="fuzz: forked children at once")
    parser.add_argument("--fuzz-timeout", type=float, default=10.0)
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs per backend")
    parser.add_argument("--sigint-kills", type=int, default=10, help="SIGINTs per backend")
    parser.add_argument("--rounds", type=int, default=10, help="concurrent: rounds")
    parser.add_argument("--rebuilds", type=int, default=10)
    parser.add_argument(
        "--keep-stale", default="1", help="rebuild part: the builds' --keep-stale (N or all)"
    )
    parser.add_argument("--steps", type=int, default=5, help="payload steps of build recipes")
    parser.add_argument(
        "--verify-all",
        action="store_true",
        help="restore every listed checkpoint (default: newest + one)",
    )
    parser.add_argument("--build-timeout", type=float, default=300.0)
    parser.add_argument("--show", type=int, default=25, help="lines per list")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fault-campaign"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/fault-campaign-failures"))
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument(
        "--replay",
        action="append",
        metavar="DIR",
        help="run a failing fuzz run saved under --out again (repeatable), then stop",
    )
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if args.quick:
        args.recipes = min(args.recipes, 150)
        args.kills = min(args.kills, 3)
        args.sigint_kills = min(args.sigint_kills, 1)
        args.rounds = min(args.rounds, 2)
        args.rebuilds = min(args.rebuilds, 3)
        args.steps = min(args.steps, 3)
    args.work = args.work.resolve()
    args.out = args.out.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    global CAPTURE  # noqa: PLW0603  (one scratch root for the whole run)
    CAPTURE = args.work / "capture"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replay:
        return part_replay(args)
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in args.part or list(PARTS):
        started = time.monotonic()
        try:
            PARTS[name](args, summary)
        except Exception:  # a harness bug in one part must not hide the others' figures
            traceback.print_exc()
            summary[f"{name}_error"] = traceback.format_exc()
        print(f"-- {name}: {time.monotonic() - started:.0f} s\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
