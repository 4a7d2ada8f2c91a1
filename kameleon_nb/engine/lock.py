"""One owner at a time for a build directory.

A build, a checkpoint listing or a notebook session runs shells and checkpoint hooks
that change ``<build path>/<recipe name>/``: two of them at once would interleave
their checkpoints. Each takes an exclusive ``flock`` on ``.kameleon_nb/lock`` in the
build directory before it starts a context, and keeps it until its shells are closed.
The kernel drops the lock when the holder exits, however it ends (SIGKILL included),
so a dead holder never blocks anyone; the file itself stays (removing it would let two
processes lock two different files) and tells the next comer who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time

from kameleon_nb.errors import BuildError

__all__ = ["BuildDirBusyError", "BuildDirLock"]

LOCK_FILE = os.path.join(".kameleon_nb", "lock")


class BuildDirBusyError(BuildError):
    """Another process owns the build directory."""


def _holder_text(raw: str) -> str:
    try:
        data = json.loads(raw)
        pid, command, since = int(data["pid"]), str(data["command"]), float(data["since"])
    except (ValueError, KeyError, TypeError):
        return "another process"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    return f"pid {pid} ({command}), since {when}"


def _command() -> str:
    """This process's command line, as ``ps`` shows it."""
    try:
        with open("/proc/self/cmdline", "rb") as stream:
            words = stream.read().rstrip(b"\0").split(b"\0")
        return " ".join(w.decode("utf-8", "replace") for w in words)
    except OSError:
        return " ".join(sys.argv)


class BuildDirLock:
    """The exclusive lock of one build directory, held from :meth:`acquire` to :meth:`release`.

    Args:
        kameleon_cwd: the build directory (created if missing).
    """

    def __init__(self, kameleon_cwd: str) -> None:
        self.directory = kameleon_cwd
        self.path = os.path.join(kameleon_cwd, LOCK_FILE)
        self._fd = -1

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd >= 0

    def acquire(self) -> None:
        """Take the lock at once, or fail.

        Raises:
            BuildDirBusyError: another process holds it; the message names that process.
            BuildError: the lock file cannot be created.
        """
        if self.held:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise BuildError(
                f"Cannot create the lock file {self.path}: {err.strerror}; "
                "check the build path and its permissions"
            ) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise BuildDirBusyError(
                f"The build directory {self.directory} is in use by {holder}. Wait for it to "
                "end (or close that notebook session), or build elsewhere with --build-path"
            ) from None
        except OSError as err:
            os.close(fd)
            raise BuildError(f"Cannot lock {self.path}: {err.strerror}") from err
        record = json.dumps({"pid": os.getpid(), "command": _command(), "since": time.time()})
        with contextlib.suppress(OSError):  # the lock holds even if the note cannot be written
            # Overwritten in place, padded with blanks (JSON ignores them) over a longer
            # earlier note: no truncation, which ext4 turns into a flush to disk on close.
            data = record.encode("utf-8", "replace")
            os.pwrite(fd, data.ljust(os.fstat(fd).st_size, b" "), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> str:
        # The holder writes its note just after it locks: give it a moment.
        for _ in range(20):
            with contextlib.suppress(OSError):
                raw = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                if raw:
                    return _holder_text(raw)
            time.sleep(0.01)
        return "another process"

    def release(self) -> None:
        """Let the next comer in (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
