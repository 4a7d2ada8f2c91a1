"""The rootless path of issue 7 (Binder): examples/busybox-rootless built by a non-root user.

The example uses ``backends/proot`` (the in context is proot inside the rootfs) and the
``rsync`` checkpoint mechanism. Run as root (CI), every command of these tests runs as
an unprivileged user (``KNB_TEST_USER``, default ``nobody``; the script creates a
missing user with ``useradd -m``) through ``scripts/as-user.sh``, in a work dir under
/tmp that the user owns; run as any other user, the commands run directly. Either way
the builds happen without root, and nothing may stay behind: no process using the work
dir, no proot temporary file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .buildcheck import BUSYBOX_SLUGS, assert_nothing_left, decisions, extract, members, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "busybox-rootless"
AS_USER = ROOT / "scripts" / "as-user.sh"
USER = os.environ.get("KNB_TEST_USER", "nobody")
AS_ROOT = os.geteuid() == 0

pytestmark = [
    pytest.mark.shell,
    pytest.mark.skipif(shutil.which("proot") is None, reason="needs proot"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static"),
    pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync"),
    pytest.mark.skipif(shutil.which("zstd") is None, reason="needs zstd"),
    pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3 on PATH"),
]

RECIPE = "busybox-rootless.yaml"
SLUGS = BUSYBOX_SLUGS
LAST_KEPT = "setup/configure_system/motd"
KEPT = SLUGS[: SLUGS.index(LAST_KEPT) + 1]
REDONE = SLUGS[len(KEPT) :]
RUNNING = "--> Running the step..."
AHEAD = "--> Checkpoint ahead, do nothing"


def created(output: str) -> list[tuple[str, str]]:
    """(slug, id) of every ``--> Creating checkpoint`` line."""
    return re.findall(r"^--> Creating checkpoint: '(\S+)' \(([0-9a-f]{12})\)$", output, re.M)


def listed(output: str) -> list[tuple[str, str]]:
    """(slug, id) of the rows of ``kameleon build --checkpoints``."""
    return [(s, i) for i, s in re.findall(r"^([0-9a-f]{12}) \| (\S+)\s*$", output, re.M)]


def proot_leftovers() -> set[str]:
    """proot's temporary files and glue dirs in /tmp, but those of a proot still running.

    ``prooted-<pid>-XXXXXX`` belongs to the proot of that pid: while it runs (another
    test suite's build, on a shared machine) it is not a leftover. Once a test's own
    processes are gone (checked first), anything of theirs that remains is one.
    """
    left = set()
    for path in Path("/tmp").glob("proot*"):
        owner = re.match(r"prooted-(\d+)-", path.name)
        if owner is None or not Path(f"/proc/{owner.group(1)}").exists():
            left.add(path.name)
    return left


class Rootless:
    """Runs commands as a non-root user in a work dir ``work``; ``work/example`` is a copy
    of examples/busybox-rootless owned by that user."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.example = work / "example"

    def run(self, *command: str, cwd: Path | None = None, timeout: float = 120) -> tuple[int, str]:
        """Run ``command`` as the user (in ``cwd``); (exit status, stdout+stderr)."""
        if AS_ROOT:
            where = ["-C", str(cwd)] if cwd else []
            argv = ["bash", str(AS_USER), *where, USER, "--", *command]
            env = {**os.environ, "KNB_AS_USER_DIR": str(self.work), "KNB_VENV": sys.prefix}
        else:
            argv, env = list(command), None
        return run(argv, cwd=cwd or self.work, env=env, timeout=timeout)

    def kameleon(self, *args: str) -> tuple[int, str]:
        python = "python" if AS_ROOT else sys.executable
        return self.run(python, "-m", "kameleon_nb", *args, cwd=self.example)

    def write(self, name: str, text: str) -> None:
        """Write a file of the example dir, owned by the user."""
        path = self.example / name
        path.write_text(text)
        stat = self.example.stat()
        os.chown(path, stat.st_uid, stat.st_gid)


@pytest.fixture
def rootless(tmp_path: Path) -> Iterator[Rootless]:
    """A work dir (under /tmp, where the user can reach it, when we are root)."""
    before = proot_leftovers()
    if AS_ROOT:
        work = Path(tempfile.mkdtemp(prefix="kameleon_nb-rootless-", dir="/tmp"))
    else:
        work = tmp_path / "work"
        work.mkdir()
    runner = Rootless(work)
    try:
        if AS_ROOT:
            status, output = runner.run(
                "bash", "-c", 'cp -r examples/busybox-rootless "$KNB_AS_USER_DIR/example"'
            )
            assert status == 0, output
        else:
            shutil.copytree(EXAMPLE, runner.example)
        yield runner
        assert_nothing_left(work)
        assert proot_leftovers() <= before
    finally:
        if AS_ROOT:
            shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_build_then_rebuild_from_the_last_valid_checkpoint(rootless: Rootless) -> None:
    build_dir = rootless.example / "build" / "busybox-rootless"
    rootfs = build_dir / "rootfs"

    # 1. A first build creates one checkpoint per microstep, as a non-root user.
    status, output = rootless.kameleon("build", "--script", "--enable-checkpoint", RECIPE)
    assert status == 0, output
    first = created(output)
    assert [slug for slug, _ in first] == SLUGS, output
    assert len({step_id for _, step_id in first}) == len(SLUGS)
    owner = (rootfs / "etc" / "passwd").stat().st_uid
    assert owner != 0
    assert owner == (os.getuid() if not AS_ROOT else rootless.example.stat().st_uid)

    # 2. They are listed, and stored by the rsync mechanism.
    status, output = rootless.kameleon("build", "--checkpoints", RECIPE)
    assert status == 0, output
    assert listed(output) == first
    store = build_dir / "checkpoints" / "rsync"
    assert {p.name for p in store.iterdir() if not p.name.startswith(".")} == {
        step_id for _, step_id in first
    }

    # 3. Changing user_name invalidates add_group and after: the rebuild restores the
    #    checkpoint of the last microstep before it and runs the rest.
    bob = ("-g", "user_name:bob")
    status, output = rootless.kameleon("build", "--script", "--enable-checkpoint", *bob, RECIPE)
    assert status == 0, output
    kept_id = dict(first)[LAST_KEPT]
    assert f"Restoring last build from step: {LAST_KEPT}\n" in output
    assert f"restored {rootfs} to checkpoint {kept_id}\n" in output
    steps = decisions(output)
    assert {slug: steps[slug] for slug in KEPT} == dict.fromkeys(KEPT, AHEAD), output
    assert {slug: steps[slug] for slug in REDONE} == dict.fromkeys(REDONE, RUNNING), output
    second = created(output)
    assert [slug for slug, _ in second] == REDONE
    assert not {step_id for _, step_id in second} & {step_id for _, step_id in first}

    status, output = rootless.kameleon("build", "--checkpoints", *bob, RECIPE)
    assert status == 0, output
    assert listed(output) == first[: len(KEPT)] + second

    # 4. The exported appliance has bob, not alice, and every file is root's.
    archive = build_dir / "busybox-rootless.tar.zst"
    unpacked = rootless.work / "unpacked"
    passwd = extract(archive, "./etc/passwd", unpacked)
    assert passwd == "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n"
    assert extract(archive, "./etc/group", unpacked) == "root:x:0:\nbob:x:1000:\n"
    names = members(archive)
    assert "./home/bob" in names
    assert "./home/alice" not in names
    assert not any(name.startswith("./root/kameleon_workdir/") for name in names)
    listing = subprocess.run(
        ["tar", "-I", "zstd", "--numeric-owner", "-tvf", str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {line.split()[1] for line in listing.splitlines()} == {"0/0"}


def test_a_hostile_build_path_touches_nothing_outside_it(rootless: Rootless) -> None:
    """Issue 12: a build path with blanks, quotes, $ and backquotes, as a user."""
    hostile = "victim it's $HOME `touch PWNED` é"
    status, output = rootless.run(
        "bash", "-c", "mkdir victim && echo mine > victim/keep", cwd=rootless.example
    )
    assert status == 0, output
    build_path = str(rootless.example / hostile / "build")
    for args in (["-c"], ["-c"], ["--clean"]):
        status, output = rootless.kameleon(
            "build", "--script", *args, "--build-path", build_path, RECIPE
        )
        assert status == 0, output
    assert (rootless.example / "victim" / "keep").read_text() == "mine\n"
    assert [p.name for p in (rootless.example / "victim").iterdir()] == ["keep"]
    assert not list(rootless.work.rglob("PWNED"))


def test_in_context_sees_the_rootfs_not_the_host(rootless: Rootless) -> None:
    """proot -0 inside the rootfs: fake root, the rootfs's files, the host's /proc and /dev.

    Debian 12's proot does not translate faccessat2 or statx: without the backend's
    seccomp launcher, bash's ``[[ -x /usr/bin/proot ]]`` would see the host's proot.
    """
    rootless.write(
        "isolation.yaml",
        """\
extend: backends/proot
bootstrap:
  - busybox_rootfs
setup:
  - look:
    - around:
      - exec_in: |
          echo "uid=$(id -u) pwd=$PWD"
          [[ -e /usr/bin/proot ]] && echo "host -e" || echo "no host -e"
          [[ -x /usr/bin/proot || -r /usr/bin/proot ]] && echo "host -x" || echo "no host -x"
          [[ -w /etc/passwd && -x /bin/busybox ]] && echo "rootfs -w -x"
          stat -c %u /etc/passwd
          test -r /proc/self/status && test -c /dev/null && echo "proc dev"
""",
    )
    status, output = rootless.kameleon("build", "--script", "isolation.yaml")
    assert status == 0, output
    said = [
        line.removeprefix("[in] ")
        for line in output.splitlines()
        if line.startswith("[in] ") and "has been initialized" not in line
    ]
    assert said == [
        "uid=0 pwd=/root/kameleon_workdir",
        "no host -e",
        "no host -x",
        "rootfs -w -x",
        "0",
        "proc dev",
    ], output


def test_missing_proot_is_a_clear_error(tmp_path: Path) -> None:
    """Without proot on PATH the in context does not start, and says what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "python3"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    (tmp_path / "noproot.yaml").write_text(
        "extend: backends/proot\nsetup:\n  - s:\n    - m:\n      - exec_in: echo hi\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "kameleon_nb", "build", "--script", "noproot.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PATH": str(bin_dir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "proot not found: install the Debian package proot" in output
    assert_nothing_left(tmp_path)


def test_a_root_only_recipe_is_refused_up_front_without_root(rootless: Rootless) -> None:
    # the root variant, copied beside the rootless one: chroot backend, overlay mechanism
    source = (EXAMPLE.parent / "busybox" / "busybox.yaml").read_text()
    rootless.write("busybox.yaml", source)
    status, output = rootless.kameleon("build", "--script", "-c", "busybox.yaml")
    assert status == 7, output
    assert "Step 1" not in output  # nothing ran
    error = output.strip().splitlines()[-1]
    assert error.startswith("Error: The recipe busybox.yaml needs root: its in context is a ")
    assert "checkpoint mechanism overlay.yaml" in error
    assert "examples/busybox-rootless/busybox-rootless.yaml" in error
    # without checkpoints the mechanism does not matter, the chroot still does
    status, output = rootless.kameleon("build", "--script", "busybox.yaml")
    assert status == 7, output
    assert "overlay" not in output.strip().splitlines()[-1]
