"""Overlay mechanism specifics: many layers are flattened, mount options stay short."""

from __future__ import annotations

import os

import pytest

from kameleon_nb.core.model import StepId

from .test_checkpoint_contract import Harness

pytestmark = [
    pytest.mark.shell,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def test_deep_stacks_are_flattened_and_every_checkpoint_restores(tmp_path, monkeypatch):
    monkeypatch.setenv("KAMELEON_OVERLAY_MAX_DEPTH", "3")
    h = Harness(tmp_path, "overlay")
    try:
        h.ids()
        fingerprints = {}
        for index in range(8):
            h.sh(
                f"mkdir -p {h.rootfs}/d && echo {index} > {h.rootfs}/d/f{index}"
                f" && rm -f {h.rootfs}/d/f{index - 2}"
            )
            step_id = f"eeeeeeeeee{index:02d}"
            h.builder.checkpoints.create(StepId(step_id))
            fingerprints[step_id] = h.fingerprint()
            options = h.sh(f"findmnt -n -o OPTIONS {h.rootfs}")
            assert options.count("l/") <= 4, options  # never more than MAX_DEPTH+1 layers
        assert h.ids() == set(fingerprints)
        for step_id, fingerprint in fingerprints.items():
            h.builder.checkpoints.restore(StepId(step_id))
            assert h.fingerprint() == fingerprint, step_id
    finally:
        h.close()


def _mounts(h: Harness) -> list[str]:
    """Mount points under the rootfs (relative), with their type, in the build's namespace.

    Sorted: what is mounted matters, not the order the mount table lists siblings in
    (it follows the order they were mounted again after a restore).
    """
    listing = h.sh(f"findmnt -rn -o TARGET,FSTYPE -R {h.rootfs} | tail -n +2")
    return sorted(line.replace(f"{h.rootfs}/", "", 1) for line in listing.splitlines())


CHROOT_MOUNTS = ["dev devtmpfs", "dev/pts devpts", "proc proc", "tmp tmpfs"]


def _mount_like_a_chroot_backend(h: Harness) -> None:
    r = h.rootfs
    h.sh(
        f"mkdir -p {r}/dev {r}/proc {r}/tmp && mount --bind /dev {r}/dev"
        f" && mount --bind /dev/pts {r}/dev/pts && mount --bind /proc {r}/proc"
        f" && mount -t tmpfs -o size=1m tmpfs {r}/tmp && echo kept > {r}/tmp/file"
    )


def test_create_keeps_the_mounts_made_in_the_tree(tmp_path):
    h = Harness(tmp_path, "overlay")
    try:
        h.ids()
        _mount_like_a_chroot_backend(h)
        assert _mounts(h) == CHROOT_MOUNTS
        h.builder.checkpoints.create(StepId("bbbbbbbbbbb1"))
        assert _mounts(h) == CHROOT_MOUNTS
        assert h.sh(f"cat {h.rootfs}/tmp/file; ls {h.rootfs}/proc/self/fd").startswith("kept\n")
        h.sh(f"umount {h.rootfs}/tmp {h.rootfs}/proc {h.rootfs}/dev/pts {h.rootfs}/dev")
        h.builder.checkpoints.create(StepId("bbbbbbbbbbb2"))
        assert _mounts(h) == []
        h.builder.checkpoints.restore(StepId("bbbbbbbbbbb1"))  # same build: mounted again
        assert _mounts(h) == CHROOT_MOUNTS
        h.builder.checkpoints.restore(StepId("bbbbbbbbbbb2"))
        assert _mounts(h) == []
    finally:
        h.close()


def test_apply_in_a_new_build_mounts_again_what_the_checkpoint_had(tmp_path):
    h = Harness(tmp_path, "overlay")
    try:
        h.ids()
        _mount_like_a_chroot_backend(h)
        h.builder.checkpoints.create(StepId("ccccccccccc1"))
    finally:
        h.close()
    h = Harness(tmp_path, "overlay")  # a new build: a new mount namespace, nothing mounted
    try:
        assert h.ids() == {"ccccccccccc1"}
        assert _mounts(h) == []
        h.builder.checkpoints.restore(StepId("ccccccccccc1"))
        assert _mounts(h) == CHROOT_MOUNTS  # binds from the same places; a new tmpfs
        assert h.sh(f"ls {h.rootfs}/dev/pts/ptmx {h.rootfs}/proc/self/status") != ""
    finally:
        h.close()


def test_the_rootfs_is_copied_to_the_host_when_a_build_ends(tmp_path):
    h = Harness(tmp_path, "overlay")
    try:
        assert not h.builder.publish_rootfs()  # nothing mounted there yet: nothing to do
        h.ids()
        h.sh(f"mkdir -p {h.rootfs}/etc && echo built > {h.rootfs}/etc/motd")
        _mount_like_a_chroot_backend(h)
        assert not (h.rootfs / "etc" / "motd").exists()  # the overlay is the build's own
        assert h.builder.publish_rootfs()
        assert (h.rootfs / "etc" / "motd").read_text() == "built\n"
        assert not os.path.ismount(h.rootfs)
        assert list((h.rootfs / "proc").iterdir()) == []  # what is mounted inside stays out
        assert list((h.rootfs / "tmp").iterdir()) == []
        h.sh(f"rm {h.rootfs}/etc/motd && echo new > {h.rootfs}/etc/issue")
        assert h.builder.publish_rootfs()
        assert sorted(p.name for p in (h.rootfs / "etc").iterdir()) == ["issue"]
        assert [p.name for p in h.rootfs.parent.iterdir() if ".publish." in p.name] == []
    finally:
        h.close()
    assert (h.rootfs / "etc" / "issue").read_text() == "new\n"  # after the build too


def _layers(h: Harness) -> list[str]:
    store = h.rootfs.parent / "checkpoints" / "overlay" / "l"
    return sorted(p.name for p in store.iterdir() if p.is_dir())


def _store_bytes(h: Harness) -> int:
    return int(h.sh(f"du -s -B1 {h.rootfs.parent}/checkpoints/overlay/l | cut -f1"))


def test_rebuilds_leave_no_orphan_layer(tmp_path):
    """Creating an id again (a rebuild after -F or a restore) drops the layer it replaces."""
    h = Harness(tmp_path, "overlay")
    ids = [StepId(f"cccccccccc{i:02d}") for i in range(4)]
    try:
        h.ids()
        for index, step_id in enumerate(ids):
            h.sh(f"head -c 1000000 /dev/urandom > {h.rootfs}/blob{index}")
            h.builder.checkpoints.create(step_id)
        live_bytes = _store_bytes(h)
        assert len(_layers(h)) == len(ids)
        for _ in range(10):
            h.builder.checkpoints.restore(ids[0])  # -F the first one, then build again
            for index, step_id in enumerate(ids[1:], 1):
                h.sh(f"head -c 1000000 /dev/urandom > {h.rootfs}/blob{index}")
                h.builder.checkpoints.create(step_id)
            assert len(_layers(h)) == len(ids)
        assert h.ids() == set(ids)
        assert _store_bytes(h) <= live_bytes * 1.1
        # a create killed after it sealed its layer, before it listed it: gone at the next list
        store = h.rootfs.parent / "checkpoints" / "overlay"
        (store / "l" / "999").mkdir()
        (store / "l" / "999.parent").write_text("1\n")
        assert h.ids() == set(ids)
        assert len(_layers(h)) == len(ids)
        # delete: the layer goes once no checkpoint stacks on it
        h.builder.checkpoints.delete(ids[1])
        assert len(_layers(h)) == len(ids)  # ids[2] and ids[3] stack on it
        h.builder.checkpoints.delete(ids[3])
        h.builder.checkpoints.delete(ids[2])
        h.builder.checkpoints.restore(ids[0])
        assert _layers(h) == [h.sh(f"cat {store}/ids/{ids[0]}").strip()]
    finally:
        h.close()
