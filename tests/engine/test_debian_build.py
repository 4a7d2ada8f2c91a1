"""examples/debian end to end (root, debootstrap from the apt mirror, about two minutes).

The only network access is a TCP probe of the mirror apt is configured with (the same
one the debootstrap step uses), then debootstrap itself, through the persistent cache
(``-C``). The cache archive then rebuilds the same appliance offline (``--from-cache``,
in a network namespace with nothing but loopback).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .buildcheck import cli, decisions, extract, leftovers, members

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "debian"

SLUGS = [
    "bootstrap/debootstrap/run_debootstrap",
    "bootstrap/debootstrap/configure_base",
    "setup/configure_system/set_hostname",
    "setup/configure_system/locales",
    "setup/create_user/add_user",
    "setup/clean_apt/clean",
    "export/export_tar/pack",
]


def apt_mirror() -> str | None:
    """The first non-security deb URI apt uses (as the debootstrap step picks it)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for line in Path(path).read_text().splitlines():
            match = re.match(r"URIs:\s*(\S+)", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[0] == "deb" and "security" not in fields[1]:
                return fields[1] if not fields[1].startswith("[") else fields[2]
    return None


def mirror_reachable() -> bool:
    uri = apt_mirror()
    if uri is None:
        return False
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=10):
            return True
    except OSError:
        return False


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("debootstrap") is None and not os.path.exists("/usr/sbin/debootstrap"):
        return "needs debootstrap"
    if shutil.which("zstd") is None:
        return "needs zstd"
    if not mirror_reachable():
        return f"the apt mirror ({apt_mirror()}) is unreachable"
    return None


pytestmark = [pytest.mark.shell, pytest.mark.root, pytest.mark.slow]


@pytest.mark.timeout(1500)
def test_debian_build_then_no_change_rebuild(tmp_path, monkeypatch):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    target = tmp_path / "debian"
    shutil.copytree(EXAMPLE, target)
    monkeypatch.chdir(target)

    started = time.monotonic()
    code, out = cli("build", "--script", "-c", "-C", "debian.yaml", timeout=800)
    first = time.monotonic() - started
    print(f"\ndebian build with checkpoints and the cache: {first:.1f} s")
    assert code == 0, out
    assert re.search(r"^Cache: \d+ request\(s\), .* [1-9]\d* recorded \(\d+\.\d MB\)", out, re.M), (
        out
    )
    assert "Successfully built 'debian.yaml'" in out
    assert all(d == "--> Running the step..." for d in decisions(out).values())
    assert list(decisions(out)) == SLUGS
    assert "[in] uid=1000(debian) gid=1000(debian) groups=1000(debian)" in out

    archive = target / "build" / "debian" / "debian.tar.zst"
    assert archive.is_file()
    files = tmp_path / "export"
    os_release = extract(archive, "./etc/os-release", files)
    assert 'VERSION_ID="12"' in os_release, os_release
    assert "VERSION_CODENAME=bookworm" in os_release, os_release
    assert extract(archive, "./etc/hostname", files) == "kameleon-debian\n"
    passwd = extract(archive, "./etc/passwd", files)
    assert re.search(r"^debian:x:1000:1000::/home/debian:/bin/bash$", passwd, re.MULTILINE)
    assert extract(archive, "./etc/default/locale", files) == "LANG=C.UTF-8\n"
    assert leftovers(tmp_path) == []

    # nothing changed: restore the last checkpoint, run no step
    started = time.monotonic()
    code, out = cli("build", "--script", "-c", "debian.yaml", timeout=120)
    second = time.monotonic() - started
    print(f"debian no-change rebuild: {second:.1f} s")
    assert code == 0, out
    assert "Restoring last build from step: export/export_tar/pack\n" in out
    steps = decisions(out)
    assert list(steps) == SLUGS
    assert all(d == "--> Checkpoint ahead, do nothing" for d in steps.values()), steps
    assert "--> Running the step..." not in out
    assert "--> Creating checkpoint" not in out
    assert "Successfully built 'debian.yaml'" in out
    assert second < 15
    assert leftovers(tmp_path) == []

    # the cache archive alone, offline: the same packages, the same files
    cache = target / "build" / "debian" / "debian-cache.tar.gz"
    assert cache.is_file(), out
    started = time.monotonic()
    code, out = cli(
        "build", "--script", "--from-cache", str(cache), "-b", str(tmp_path / "offline"),
        timeout=800,
    )  # fmt: skip
    print(f"debian build from the cache archive, offline: {time.monotonic() - started:.1f} s")
    assert code == 0, out
    assert "Using the cached recipe" in out
    assert re.search(r"^Cache: \d+ request\(s\), \d+ answered from the cache", out, re.M), out
    replayed = next((tmp_path / "offline").rglob("debian/debian.tar.zst"))
    assert members(replayed) == members(archive)
    status = "./var/lib/dpkg/status"
    assert _packages(extract(replayed, status, tmp_path / "r")) == _packages(
        extract(archive, status, tmp_path / "o")
    )
    assert leftovers(tmp_path) == []


def _packages(status: str) -> set[str]:
    """``name version`` of each package a dpkg status file lists."""
    found, name = set(), ""
    for line in status.splitlines():
        if line.startswith("Package: "):
            name = line.split(": ", 1)[1]
        elif line.startswith("Version: "):
            found.add(f"{name} {line.split(': ', 1)[1]}")
    assert len(found) > 50, status[:500]
    return found
