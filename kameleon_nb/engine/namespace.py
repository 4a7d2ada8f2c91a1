"""A private mount namespace for one build, so that nothing it mounts outlives it.

As root, a build starts a small holder process in a new mount namespace (private
propagation) and starts every context shell inside it with ``nsenter``. Overlay,
btrfs and loop mounts made by checkpoint mechanisms or steps are then invisible to
the host and vanish with the holder, even when the build is killed: the holder
dies with its parent (``PR_SET_PDEATHSIG``), and the shells' watchdogs kill them when
the build process goes. Without root, or without ``unshare``/``nsenter``, contexts run
in the host's namespace, as upstream's do.

A tree that only exists in the namespace (the rootfs of the ``overlay`` or ``btrfs``
mechanism) is copied to the directory under its mount point by :meth:`publish` when
a build ends, so that the user finds the appliance's tree on disk, as upstream's
chroot backend leaves it.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import time

from kameleon_nb.engine import processes
from kameleon_nb.errors import ContextError

__all__ = ["BuildNamespace", "PublishError"]

log = logging.getLogger(__name__)

# Runs in the namespace: copy the tree mounted at $1 into the directory it hides (seen
# through a non-recursive bind of its parent), with what is mounted inside it left out.
# Exit status 3: nothing is mounted there, the tree is already on disk.
_PUBLISH = r"""
set -euo pipefail
tree=$1 hold=$2
mountpoint -q "$tree" || exit 3
mkdir -p "$hold"
mount --bind "${tree%/*}" "$hold"
trap 'umount "$hold"; rmdir "$hold"' EXIT
target=$hold/${tree##*/}
mkdir -p "$target"
if command -v rsync >/dev/null; then
  rsync -aHAXx --numeric-ids --delete "$tree/" "$target/"
else
  find "$target" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  cp -ax "$tree/." "$target/"
fi
"""


class PublishError(Exception):
    """A tree of the namespace could not be copied to the host."""


class BuildNamespace:
    """The mount namespace shared by a build's context shells.

    ``offline=True`` (a build from a cache archive) also gives it a network namespace
    of its own with nothing but a loopback interface: the contexts, and the cache
    proxy started in it, reach no other host, so the build proves it needs nothing
    that is not in the archive.
    """

    def __init__(self, *, offline: bool = False) -> None:
        self._holder: subprocess.Popen[bytes] | None = None
        self.offline = offline

    @staticmethod
    def supported() -> bool:
        """Whether this process may create mount namespaces (root, util-linux present)."""
        return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("nsenter"))

    def start(self) -> None:
        """Create the namespace (idempotent; a no-op when not supported)."""
        if self._holder is not None and self._holder.poll() is None:
            return
        if not self.supported():
            return
        net = ["--net"] if self.offline else []
        self._holder = processes.start_holder(
            [
                shutil.which("unshare") or "unshare",
                "--mount",
                *net,
                "--propagation",
                "private",
                "sleep",
                "infinity",
            ]
        )
        self._wait_until_entered()
        if self.offline:
            self._loopback_up()
        log.debug("build mount namespace held by pid %d", self._holder.pid)

    def _loopback_up(self) -> None:
        """Bring up ``lo`` in the build's network namespace (it starts down)."""
        argv = [*self.launcher(), "ip", "link", "set", "lo", "up"]
        try:
            done = processes.run(argv, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as err:
            self.close()
            raise ContextError(f"Cannot set up the build's offline network: {err}") from err
        if done.returncode != 0:
            self.close()
            raise ContextError(
                "Cannot set up the build's offline network (ip link set lo up: "
                f"{(done.stderr or done.stdout).strip()}); install iproute2"
            )

    def _wait_until_entered(self, timeout: float = 10.0) -> None:
        """Wait until the holder is in its new namespace.

        Until ``unshare`` has switched, ``/proc/PID/ns/mnt`` still names the host's
        namespace, and a context entering it would mount things on the host.
        """
        assert self._holder is not None
        ours = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._holder.poll() is not None:
                break
            try:
                if os.readlink(f"/proc/{self._holder.pid}/ns/mnt") != ours:
                    return
            except OSError:
                break
            time.sleep(0.001)
        self.close()
        raise ContextError(
            "Cannot create the build's private mount namespace (unshare --mount did not "
            "start); run as root with util-linux installed"
        )

    @property
    def active(self) -> bool:
        """Whether a namespace is held."""
        return self._holder is not None and self._holder.poll() is None

    def launcher(self) -> tuple[str, ...]:
        """The argv prefix that runs a command inside the namespace (empty if none)."""
        if not self.active:
            return ()
        assert self._holder is not None
        nsenter = shutil.which("nsenter") or "nsenter"
        pid = self._holder.pid
        net = (f"--net=/proc/{pid}/ns/net",) if self.offline else ()
        return (nsenter, f"--mount=/proc/{pid}/ns/mnt", *net, "--")

    def mount_points(self) -> set[str]:
        """The mount points of the namespace (empty if there is none)."""
        if not self.active:
            return set()
        assert self._holder is not None
        try:
            with open(f"/proc/{self._holder.pid}/mountinfo", encoding="utf-8") as stream:
                lines = stream.read().splitlines()
        except OSError:
            return set()
        points = set()
        for line in lines:
            fields = line.split(" ", 5)
            if len(fields) > 4:  # field 5 is the mount point, with octal escapes
                points.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        return points

    def publish(self, tree: str, *, timeout: float | None = None) -> bool:
        """Copy the tree mounted at ``tree`` in the namespace to the host's ``tree``.

        After a build with the ``overlay`` mechanism, for example, ``build/.../rootfs``
        is an overlayfs mount that only the build's namespace sees: the directory under
        it, on the host, receives the same files (an ``rsync --delete``, so a later
        build only copies what changed). What is mounted inside the tree (``/proc``,
        ``/dev``...) is left out, as ``tar --one-file-system`` would.

        Args:
            tree: an absolute path.
            timeout: seconds the copy may take.

        Returns:
            True if a tree was copied; False if there is nothing to do (no namespace,
            ``tree`` is not a mount point in it, or it is one on the host as well).

        Raises:
            PublishError: the copy failed.
        """
        if not self.active or not os.path.isabs(tree) or os.path.ismount(tree):
            return False
        tree = os.path.normpath(tree)
        parent = os.path.dirname(tree)
        if not os.path.isdir(parent) or tree == parent or tree not in self.mount_points():
            return False
        hold = os.path.join(parent, f".{os.path.basename(tree)}.publish.{os.getpid()}")
        argv = [*self.launcher(), "/bin/bash", "-c", _PUBLISH, "publish", tree, hold]
        started = time.monotonic()
        try:
            done = processes.run(argv, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PublishError(f"cannot copy {tree} out of the build namespace: {err}") from err
        if done.returncode == 3:
            return False
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            raise PublishError(
                f"cannot copy {tree} out of the build namespace "
                f"({shlex.join(argv[-3:])}: status {done.returncode}): {detail}"
            )
        log.debug("published %s in %.2f s", tree, time.monotonic() - started)
        return True

    def close(self) -> None:
        """End the namespace: every mount made in it goes away."""
        if self._holder is None:
            return
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        self._holder = None
