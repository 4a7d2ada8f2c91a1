"""A private mount namespace for one build, so that nothing it mounts outlives it.

As root, a build starts a small holder process in a new mount namespace (private
propagation) and starts every context shell inside it with ``nsenter``. Overlay,
btrfs and loop mounts made by checkpoint mechanisms or steps are then invisible to
the host and vanish with the holder, even when the build is killed: the holder
dies with its parent (``PR_SET_PDEATHSIG``), and the shells die with their PTY.
Without root, or without ``unshare``/``nsenter``, contexts run in the host's
namespace, as upstream's do.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import time

from kameleon_nb.errors import ContextError

__all__ = ["BuildNamespace"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class BuildNamespace:
    """The mount namespace shared by a build's context shells."""

    def __init__(self) -> None:
        self._holder: subprocess.Popen[bytes] | None = None

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
        self._holder = subprocess.Popen(
            [
                shutil.which("unshare") or "unshare",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "infinity",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl must run in the child
            close_fds=True,
        )
        self._wait_until_entered()
        log.debug("build mount namespace held by pid %d", self._holder.pid)

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
        return (nsenter, f"--mount=/proc/{self._holder.pid}/ns/mnt", "--")

    def close(self) -> None:
        """End the namespace: every mount made in it goes away."""
        if self._holder is None:
            return
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        self._holder = None
