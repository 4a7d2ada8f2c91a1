"""A real collection recipe builds as upstream does (root, the apt mirror, about 2 min).

The probe of ``tests/data/probe/`` (see its README) is the K collection's chroot
backend, its Debian steps and aliases, plus a setup step of ours; upstream 2.11.0's
answers for it are recorded there. One checkpointed build with kameleon_nb's
``overlay`` mechanism is compared with upstream's build (``Step N:`` lines, decisions,
ids, the appliance's files, what commands see); then a global used late changes and
``-F last`` rebuilds from the last valid checkpoint, reusing the debootstrap. In both
builds ``/proc`` and ``/dev/pts`` must be mounted in every setup step, and the rootfs
must be on disk afterwards.

The ids depend on the tree's absolute path, so the tree is extracted where upstream's
answers were recorded: ``/tmp/kameleon-probe/K`` (this test owns that directory).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .buildcheck import cli, decisions, leftovers
from .test_debian_build import apt_mirror, mirror_reachable

DATA = Path(__file__).resolve().parents[1] / "data"
PROBE = DATA / "probe"
UPSTREAM = PROBE / "upstream"
COLLECTION = DATA / "corpus" / "K.tar.gz"
TREE = Path("/tmp/kameleon-probe/K")
BUILD = TREE / "build" / "debian-bookworm-chroot"
ROOTFS = BUILD / "rootfs"
PROBE_RECIPE = "local/debian-bookworm-chroot.yaml"
OVERLAY_RECIPE = "local-nb/debian-bookworm-chroot.yaml"  # the same recipe, overlay checkpoints
RECORDED_MIRROR = "http://deb.debian.org/debian/"
PINNED = [
    "kameleon_uuid:00000000-0000-4000-8000-000000000000",
    "kameleon_short_uuid:000000000000",
]
# upstream's own bookkeeping files (kameleon_nb keeps other ones) in the in context's
# work dir, which the recipe's export means to exclude but does not
SCRIPTS = "root/kameleon_workdir/kameleon_scripts/in/"
SETUP_CHECKPOINTED = [
    "setup/minimal_install/set_root_password",
    "setup/minimal_install/upgrade_system",
    "setup/install_packages/install_packages",
    "setup/probe/write_files",
    "setup/probe/record_environment",
    "setup/_clean_setup/_clean_4_clean_network",
    "setup/_clean_setup/_clean_3_clean_apt",
    "setup/_clean_setup/_clean_2_clean_user",
]

pytestmark = [pytest.mark.shell, pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("debootstrap") is None and not os.path.exists("/usr/sbin/debootstrap"):
        return "needs debootstrap"
    if not COLLECTION.is_file():
        return f"needs the K collection ({COLLECTION})"
    if not mirror_reachable():
        return f"the apt mirror ({apt_mirror()}) is unreachable"
    return None


def _mirror() -> str:
    return (apt_mirror() or RECORDED_MIRROR).rstrip("/") + "/"


def _globals(*extra: str) -> list[str]:
    return ["-g", f"deb_mirror_uri:{_mirror()}", *PINNED, *extra]


def _kameleon(*args: str, timeout: float = 600) -> tuple[int, str]:
    env = dict(os.environ, TERM="xterm", HOME=str(TREE.parent / "home"))  # as recorded
    old = os.getcwd()
    os.chdir(TREE)
    try:
        return cli(*args, timeout=timeout, env=env)
    finally:
        os.chdir(old)


@dataclass
class Builds:
    first: str  # -c, from scratch
    rebuild: str  # -F last after a change of the package list
    first_files: list[str]  # the appliance of the first build
    store: Path


def _unmount_under(root: Path) -> None:
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        target = line.split()[4]
        if target.startswith(str(root) + "/"):
            subprocess.run(["umount", "-l", target], check=False)


def _fresh_tree() -> None:
    _unmount_under(TREE.parent)
    subprocess.run(["rm", "-rf", str(TREE)], check=True)  # faster than shutil.rmtree
    TREE.mkdir(parents=True)
    (TREE.parent / "home").mkdir(exist_ok=True)
    subprocess.run(["tar", "-xzf", str(COLLECTION), "-C", str(TREE)], check=True)
    shutil.copytree(PROBE / "tree", TREE, dirs_exist_ok=True)


def _appliance_files() -> list[str]:
    with tarfile.open(BUILD / "debian-bookworm-chroot.tar.gz") as archive:
        names = [m.name + ("/" if m.isdir() else "") for m in archive.getmembers()]
    return sorted(names, key=lambda n: n.encode())


@pytest.fixture(scope="module")
def builds() -> Iterator[Builds]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    TREE.parent.mkdir(parents=True, exist_ok=True)
    with open(TREE.parent.with_suffix(".lock"), "w") as lock:
        # the tree's path is fixed (ids depend on it): concurrent test runs take turns
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _builds()


def _builds() -> Iterator[Builds]:
    _fresh_tree()
    started = time.monotonic()
    code, first = _kameleon("build", "--script", "-c", OVERLAY_RECIPE, *_globals())
    assert code == 0, first
    first_files = _appliance_files()
    middle = time.monotonic()
    code, rebuild = _kameleon(
        "build", "--script", "-F", "last", OVERLAY_RECIPE, *_globals("probe_packages:less bzip2")
    )
    assert code == 0, rebuild
    print(
        f"\nprobe: build with checkpoints {middle - started:.1f} s, "
        f"rebuild from the last one {time.monotonic() - middle:.1f} s"
    )
    yield Builds(first, rebuild, first_files, BUILD / "checkpoints" / "overlay")
    if not os.environ.get("KAMELEON_PROBE_KEEP"):
        subprocess.run(["rm", "-rf", str(TREE)], check=False)


_MASKS = [
    (r"took: \d+ secs|Total duration: \d+ secs", "<time>"),
    (r"'local(-nb)?/debian-bookworm-chroot\.yaml'", "'<recipe>'"),
    (r"\w{3} [ \d]\d \d\d:\d\d (/tmp/)", r"<date> \1"),  # ls -l of a file made now
    (r"Fetched (.*) in \d+s \(.*\)", r"Fetched \1 in <time>"),
    (r"^\[in\] fd0=/dev/null$", "[in] fd0=pipe"),  # commands read /dev/null: semantics §0.3 #7
]


# apt's lines that name package versions and sizes (the mirror moves on)
_APT_NUMBERS = ("Get:", "Need to get", "After this", "Preparing", "Unpacking", "Setting up")


def _comparable(transcript: str) -> list[str]:
    """The lines upstream's plain build also prints, with timing and download noise masked."""
    kept = []
    for raw in transcript.splitlines():
        if raw.startswith(("[out] I: ", "--> Creating checkpoint", "--> Do not create")):
            continue  # debootstrap's download lines; checkpointing only in ours
        if raw.endswith("_context has been initialized") or raw.startswith("CLI Global"):
            continue  # -c starts the local context before step 1, to list checkpoints
        line = raw.replace(_mirror().rstrip("/"), RECORDED_MIRROR.rstrip("/"))
        for pattern, replacement in _MASKS:
            line = re.sub(pattern, replacement, line)
        if line.startswith(tuple(f"[in] {p}" for p in _APT_NUMBERS)) or "(Reading" in line:
            line = re.sub(r"\d[\w.~+:-]*", "<n>", line)
        kept.append(line)
    return kept


def _created(transcript: str) -> dict[str, str]:
    """slug -> id of the checkpoints a build created."""
    return dict(re.findall(r"--> Creating checkpoint: '(\S+)' \((\w{12})\)", transcript))


def _mounts_of(store: Path, step_id: str) -> list[str]:
    layer = (store / "ids" / step_id).read_text().strip()
    records = (store / "l" / f"{layer}.mounts").read_text().splitlines()
    return [record.split("\t")[0] for record in records]


def test_checkpoint_ids_equal_upstreams(builds):
    expected = (UPSTREAM / "checkpoints.txt").read_text()
    if _mirror() != RECORDED_MIRROR:  # the mirror is in debootstrap's command
        pytest.skip(f"ids were recorded with {RECORDED_MIRROR}, this machine uses {_mirror()}")
    for args in (["-d", "-l", PROBE_RECIPE], ["-d", "-l", "-c", OVERLAY_RECIPE]):
        code, out = _kameleon("build", *args, *_globals())
        assert code == 0, out
        assert out == expected, args
    rows = dict(re.findall(r"^(\w{12}) \| (\S+?) *$", expected, re.MULTILINE))
    for slug, step_id in _created(builds.first).items():  # the ids the build used
        assert rows.get(step_id) in (slug, slug[:57] + "..."), (slug, step_id)


def test_build_prints_upstreams_step_lines_and_decisions(builds):
    upstream = (UPSTREAM / "build.txt").read_text()
    assert decisions(builds.first) == decisions(upstream)
    assert all(d == "--> Running the step..." for d in decisions(builds.first).values())
    assert _comparable(builds.first) == _comparable(upstream)


def test_checkpoints_follow_each_microsteps_policy(builds):
    made = list(_created(builds.first))
    assert made == [
        "bootstrap/debootstrap/run_debootstrap",
        *SETUP_CHECKPOINTED,
        "export/save_appliance/check_bootloader",
        "export/save_appliance/install_bootloader_if_needed",
    ]
    assert (
        "--> Do not create a checkpoint for this microstep: always redo microstep" in builds.first
    )


def test_appliance_has_upstreams_files(builds):
    upstream = (UPSTREAM / "appliance-files.txt").read_text().splitlines()
    ours = [f for f in builds.first_files if not f.startswith(SCRIPTS)]
    theirs = [f for f in upstream if not f.startswith(SCRIPTS)]
    # (if bookworm's packages changed on the mirror since, record upstream's again:
    # tests/data/probe/README.md)
    assert ours == theirs, sorted(set(ours) ^ set(theirs))[:20]
    assert f"{SCRIPTS}bash_env" in builds.first_files


def test_commands_see_pipes_no_terminal_and_upstreams_environment(builds):
    probe = ROOTFS / "root" / "probe"
    assert (probe / "motd").read_text() == (UPSTREAM / "motd.txt").read_text()
    assert (probe / "terminal.txt").read_text() == (UPSTREAM / "terminal.txt").read_text().replace(
        "fd0=pipe", "fd0=/dev/null"
    )
    assert (probe / "environment.txt").read_text() == (UPSTREAM / "environment.txt").read_text()


def test_rebuild_from_the_last_checkpoint_after_a_late_change(builds):
    out = builds.rebuild
    assert "Restoring last build from step: setup/minimal_install/upgrade_system\n" in out
    steps = list(decisions(out).values())
    assert steps[0] == "--> Running the step..."  # _init_0_disable_checkpoint: redo
    assert steps[1:8] == ["--> Checkpoint ahead, do nothing"] * 7
    assert set(steps[8:]) == {"--> Running the step..."}
    assert "[in] Setting up bzip2" in out
    assert list(_created(out)) == [
        *SETUP_CHECKPOINTED[2:],
        "export/save_appliance/check_bootloader",
        "export/save_appliance/install_bootloader_if_needed",
    ]


def test_proc_and_dev_pts_are_mounted_in_every_setup_step(builds):
    for transcript in (builds.first, builds.rebuild):
        assert "Is /dev/pts mounted" not in transcript
        assert "Can not write log" not in transcript
        created = _created(transcript)
        for slug in SETUP_CHECKPOINTED:
            if slug in created:  # what was mounted in the tree when the step ended
                mounts = _mounts_of(builds.store, created[slug])
                assert {"proc", "dev/pts", "dev", "sys"} <= set(mounts), (slug, mounts)
        for line in ("devpts on /dev/pts type devpts", "proc on /proc type proc"):
            assert f"[in] {line}" in transcript
    records = (ROOTFS / "root" / "probe" / "mounts.txt").read_text()  # the rebuild's
    assert " on /proc type proc " in records
    assert " on /dev/pts type devpts " in records


def test_the_rootfs_is_on_disk_after_the_build(builds):
    assert not os.path.ismount(ROOTFS)
    assert (ROOTFS / "usr" / "bin" / "bzip2").is_file()  # the rebuild's package
    assert (ROOTFS / "etc" / "os-release").is_file()
    assert not any((ROOTFS / "proc").iterdir())  # the mounts stayed in the build
    assert leftovers(TREE) == []
