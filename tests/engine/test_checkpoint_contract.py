"""One contract, every built-in checkpoint mechanism, real shells.

Each mechanism is a recipe file (``kameleon_nb/data/steps/checkpoints/*.yaml``) run
through the builder, as a build would run it. The contract: ``create`` then ``list``
shows the id; ``apply`` brings back the exact tree (paths, types, modes, owners,
sizes, link targets, contents); ``create`` of an existing id and ``apply`` twice are
harmless; ``clear`` removes everything; a ``create`` killed at any moment never
leaves a listed checkpoint that ``apply`` cannot restore.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import StepId
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.recipes import open_recipe

from .buildcheck import FILE_MECHANISMS, IS_ROOT, needs

pytestmark = pytest.mark.shell


FINGERPRINT = (
    "cd \"$1\" && find . -mindepth 1 -printf '%p %y %m %U %G %s %l\\n' | LC_ALL=C sort"
    " && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum"
)


class Harness:
    """A builder over an empty recipe using one mechanism on ``<build>/rootfs``."""

    def __init__(self, workspace: Path, mechanism: str) -> None:
        self.workspace = workspace
        (workspace / "r.yaml").write_text(
            f"checkpoint: {mechanism}.yaml\n"
            "global:\n  rootfs: $${kameleon_cwd}/rootfs\n"
            "setup:\n  - noop:\n    - noop:\n      - exec_local: 'true'\n"
        )
        self.recipe = open_recipe("r.yaml", cwd=str(workspace), checkpointing=True)
        self.rootfs = Path(self.recipe.kameleon_cwd) / "rootfs"
        self.events: list[object] = []
        self.builder = Builder(self.recipe, on_event=self.events.append)
        os.makedirs(self.recipe.kameleon_cwd, exist_ok=True)

    def sh(self, script: str) -> str:
        out: list[str] = []
        result = self.builder.contexts.run(ContextName.LOCAL, script, on_output=out.append)
        assert result.exit_status == 0, "".join(out)
        return "".join(out)

    def fingerprint(self) -> str:
        return self.sh(f"set -- {self.rootfs}; {FINGERPRINT}")

    def ids(self) -> set[str]:
        return set(self.builder.existing_checkpoints(refresh=True))

    def close(self) -> None:
        self.builder.close()


@pytest.fixture(params=FILE_MECHANISMS)
def harness(request, tmp_path):
    h = Harness(tmp_path, request.param)
    h.ids()  # first list: lets a mechanism prepare (e.g. mount the overlay)
    h.sh(f"mkdir -p {h.rootfs}")
    yield h
    h.close()


def chown(owner: str, path: str) -> str:
    """A chown as root (ownership is part of the contract); nothing for another user."""
    return f"chown {owner} {path}" if IS_ROOT else "true"


def populate(h: Harness) -> None:
    h.sh(
        f"cd {h.rootfs} && mkdir -p etc opt/app usr/share/doc/apt && echo hello > etc/motd"
        " && echo host > etc/hostname && printf 'x%.0s' $(seq 1000) > usr/share/doc/apt/README"
        " && ln -s ../etc/motd opt/motd-link && chmod 640 etc/hostname && "
        f"{chown('1:2', 'etc/motd')}"
        " && mkfifo opt/fifo && : > opt/empty && head -c 100000 /dev/urandom > opt/app/blob"
    )


def mutate(h: Harness) -> None:
    h.sh(
        f"cd {h.rootfs} && echo more >> etc/motd && echo other > etc/hostname"
        " && rm -rf usr/share/doc/apt && chmod 600 etc/motd && mkdir -p root"
        " && head -c 1000000 /dev/zero > root/newfile && ln -sfn /nowhere opt/motd-link"
        " && printf 'same-size!' > opt/empty2 && "
        f"{chown('3:4', 'opt/app/blob')}"
    )


def test_create_list_apply_restores_the_exact_tree(harness):
    h = harness
    populate(h)
    first = h.fingerprint()
    h.builder.checkpoints.create(StepId("aaaaaaaaaaa1"))
    assert h.ids() == {"aaaaaaaaaaa1"}
    mutate(h)
    second = h.fingerprint()
    assert second != first
    h.builder.checkpoints.create(StepId("aaaaaaaaaaa2"))
    assert h.ids() == {"aaaaaaaaaaa1", "aaaaaaaaaaa2"}
    h.builder.checkpoints.restore(StepId("aaaaaaaaaaa1"))
    assert h.fingerprint() == first
    h.builder.checkpoints.restore(StepId("aaaaaaaaaaa2"))
    assert h.fingerprint() == second
    h.builder.checkpoints.restore(StepId("aaaaaaaaaaa2"))  # idempotent
    assert h.fingerprint() == second


def test_same_size_rewrite_is_restored(harness):
    h = harness
    h.sh(f"printf 'AAAA' > {h.rootfs}/f && touch -d '2020-01-01 00:00:00' {h.rootfs}/f")
    h.builder.checkpoints.create(StepId("bbbbbbbbbbb1"))
    h.sh(f"printf 'BBBB' > {h.rootfs}/f && touch -d '2020-01-01 00:00:00' {h.rootfs}/f")
    h.builder.checkpoints.restore(StepId("bbbbbbbbbbb1"))
    assert h.sh(f"cat {h.rootfs}/f") == "AAAA"


def test_create_again_after_apply_and_clear(harness):
    h = harness
    populate(h)
    h.builder.checkpoints.create(StepId("ccccccccccc1"))
    mutate(h)
    h.builder.checkpoints.create(StepId("ccccccccccc2"))
    h.builder.checkpoints.restore(StepId("ccccccccccc1"))
    before = h.fingerprint()
    h.builder.checkpoints.create(StepId("ccccccccccc2"))  # same id, new content
    h.builder.checkpoints.restore(StepId("ccccccccccc2"))
    assert h.fingerprint() == before
    h.builder.checkpoints.clear()
    assert h.ids() == set()


def test_killed_create_is_never_listed_half_written(harness):
    """SIGKILL the create hook at many moments; every listed id must restore exactly."""
    h = harness
    populate(h)
    expected = {}
    create = h.recipe.checkpoint["create"][0].value
    assert isinstance(create, str)
    for attempt, delay in enumerate(["0.001", "0.005", "0.01", "0.02", "0.04", "0.08", "2"]):
        step_id = f"ddddddddd{attempt:03d}"
        h.sh(f"echo {attempt} > {h.rootfs}/attempt-{attempt}")
        fingerprint = h.fingerprint()
        script = create.replace("@microstep_id", step_id)
        # run the hook in a child bash of the local context and kill it after `delay`
        h.sh(f"timeout -s KILL {delay} bash -c {shlex_quote(script)} || true")
        listed = h.ids()
        if step_id in listed:
            expected[step_id] = fingerprint
        for known in list(expected):
            assert known in listed
    assert expected, "no create ever finished"
    for step_id, fingerprint in expected.items():
        h.builder.checkpoints.restore(StepId(step_id))
        assert h.fingerprint() == fingerprint, step_id


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.mark.parametrize(
    "mechanism",
    [
        "overlay",
        pytest.param("btrfs", marks=needs("mkfs.btrfs", "btrfs")),
    ],
)
def test_overlay_stays_within_the_build_namespace(tmp_path, mechanism):
    if not IS_ROOT:
        pytest.skip("needs root")
    h = Harness(tmp_path, mechanism)
    try:
        h.ids()
        assert mechanism in h.sh(f"findmnt -n -o FSTYPE {h.rootfs}")
        host = subprocess.run(
            ["findmnt", "-n", str(h.rootfs)], capture_output=True, text=True, check=False
        )
        assert host.stdout == ""  # invisible to the host
    finally:
        h.close()
    assert not any(
        str(tmp_path) in line for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )
    if mechanism == "btrfs":  # the loop device (mount -o loop: auto clear) went with the namespace
        image = Path(h.recipe.kameleon_cwd) / "checkpoints" / "btrfs" / "image"
        assert image.exists()
        deadline = time.monotonic() + 5
        while _loop_devices_of(image) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _loop_devices_of(image) == ""


def _loop_devices_of(image: Path) -> str:
    return subprocess.run(
        ["losetup", "-j", str(image)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
@pytest.mark.skipif(shutil.which("mkfs.btrfs") is None, reason="missing mkfs.btrfs")
def test_btrfs_on_a_btrfs_build_directory_needs_no_image(tmp_path):
    """A store on btrfs holds its subvolumes directly: no image, no loop device."""
    h = Harness(tmp_path, "btrfs")
    try:
        # a btrfs build directory: <build>/checkpoints on btrfs, in the build's namespace
        parent = Path(h.recipe.kameleon_cwd) / "checkpoints"
        h.sh(
            f"truncate -s 1G {tmp_path}/host.img && mkfs.btrfs -q -K {tmp_path}/host.img >/dev/null"
            f" && mkdir -p {parent} && mount -o loop {tmp_path}/host.img {parent}"
        )
        h.ids()
        h.sh(f"mkdir -p {h.rootfs}")
        # (these paths are checked inside the build's namespace, where the mount is)
        h.sh(
            f'test ! -e {parent}/btrfs/image && test "$(stat -f -c %T {parent}/btrfs/mnt)" = btrfs'
        )
        populate(h)
        first = h.fingerprint()
        h.builder.checkpoints.create(StepId("eeeeeeeeeee1"))
        mutate(h)
        h.builder.checkpoints.create(StepId("eeeeeeeeeee2"))
        assert h.ids() == {"eeeeeeeeeee1", "eeeeeeeeeee2"}
        h.builder.checkpoints.restore(StepId("eeeeeeeeeee1"))
        assert h.fingerprint() == first
        h.builder.checkpoints.clear()
        h.sh(f"test ! -e {parent}/btrfs && umount {parent}")
    finally:
        h.close()
