"""Checks shared by the end-to-end build tests: what a build printed, what it left."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0


def needs(*tools: str) -> pytest.MarkDecorator:
    """Skip unless every one of ``tools`` is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


#: kameleon_nb's mechanisms that keep the files of ``$${rootfs}``, each with what it needs
#: (rsync: nothing more; overlay and btrfs: root).
FILE_MECHANISMS = [
    pytest.param("rsync", marks=needs("rsync")),
    pytest.param(
        "overlay", marks=[pytest.mark.root, pytest.mark.skipif(not IS_ROOT, reason="needs root")]
    ),
    pytest.param(
        "btrfs",
        marks=[
            pytest.mark.root,
            pytest.mark.skipif(not IS_ROOT, reason="needs root"),
            needs("mkfs.btrfs", "btrfs"),
        ],
    ),
]

#: The microsteps of examples/busybox and examples/busybox-rootless, in build order.
BUSYBOX_SLUGS = [
    "bootstrap/busybox_rootfs/create_tree",
    "bootstrap/busybox_rootfs/install_busybox",
    "bootstrap/busybox_rootfs/install_bash",
    "bootstrap/busybox_rootfs/base_files",
    "setup/configure_system/set_hostname",
    "setup/configure_system/motd",
    "setup/create_user/add_group",
    "setup/create_user/add_user",
    "export/export_tar/pack",
]


def decisions(output: str) -> dict[str, str]:
    """slug -> the ``--> ...`` line printed right after ``Step N: slug``."""
    lines = output.splitlines()
    found = {}
    for i, line in enumerate(lines):
        match = re.fullmatch(r"Step \d+: (\S+)", line)
        if match:
            found[match.group(1)] = lines[i + 1]
    return found


def extract(archive: Path, member: str, into: Path) -> str:
    """The text of ``member`` (``./etc/passwd``) of a .tar.zst (a symlink is followed)."""
    into.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        subprocess.run(
            ["tar", "-I", "zstd", "-C", str(into), "-xf", str(archive), member], check=True
        )
        path = into / member
        if not path.is_symlink():
            return path.read_text()
        target = os.readlink(path)
        member = "./" + os.path.normpath(
            target.lstrip("/")
            if target.startswith("/")
            else os.path.join(os.path.dirname(member), target)
        )
    raise AssertionError(f"symlink loop at {member}")


def members(archive: Path) -> set[str]:
    done = subprocess.run(
        ["tar", "-I", "zstd", "-tf", str(archive)], check=True, capture_output=True, text=True
    )
    return {m.rstrip("/") for m in done.stdout.splitlines()}


def mount_points() -> list[str]:
    """The mount points of our mount namespace (field 5 of /proc/self/mountinfo)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].replace("\\040", " ") for line in lines]


def under(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root) + "/")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie holds no mount or cwd)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (pid -> command line)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _ppid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and alive(child):
                found[child] = _cmdline(child)
                todo.append(child)
    return found


def leftovers(root: Path) -> list[str]:
    """Mounts, loop devices and processes (other than us) that still use ``root``."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(root) in line:
            found.append(f"mount: {line}")
    losetup = subprocess.run(
        ["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in losetup.stdout.splitlines():
        if str(root) in line:
            found.append(f"loop: {line}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or not alive(int(entry)):
            continue
        for link in ("cwd", "root"):
            try:
                target = os.readlink(f"/proc/{entry}/{link}")
            except OSError:
                continue
            if under(target, root):
                found.append(f"process {entry} {link}={target}: {_cmdline(int(entry))}")
    return found


def assert_nothing_left(root: Path, pids: dict[int, str] | None = None, timeout: float = 10):
    """Poll (up to ``timeout``) until nothing uses ``root`` and ``pids`` are all gone."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = leftovers(root)
        remaining += [f"build process {p}: {c}" for p, c in (pids or {}).items() if alive(p)]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert remaining == [], "\n".join(remaining)


def cli(*args: str, timeout: float = 60, env: dict | None = None) -> tuple[int, str]:
    """``python -m kameleon_nb ARGS`` in a real subprocess; (exit status, stdout+stderr)."""
    return run([sys.executable, "-m", "kameleon_nb", *args], timeout=timeout, env=env)


def run(
    argv: list[str], *, timeout: float = 60, env: dict | None = None, cwd: Path | None = None
) -> tuple[int, str]:
    """Run ``argv`` with stdin closed; (exit status, stdout+stderr)."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout
