"""Starting, watching and ending processes: the one place the engine does it.

Every process a build or a notebook session starts (context shells, both ends of a
``pipe``, the shell a breakpoint opens, the copy out of the build namespace) starts
here, through :func:`spawn` or :func:`run`, and with every signal at its default
disposition: a command must see what it would see from a login shell, not what the
Python process that started it happens to ignore (Python ignores ``SIGPIPE``; a build
started as a background job ignores ``SIGINT`` and ``SIGQUIT``).

A process started with ``supervised=True`` (the default) runs under a small supervisor
(``engine/supervisor.py``, a stdlib-only script run by a second Python interpreter in a
few milliseconds) that makes itself a child subreaper: whatever the process starts,
even a ``setsid`` or double-forked daemon, stays in its tree. The supervisor holds the
read end of a *lifeline* pipe whose write end only this process holds; when the build
ends the tree (:meth:`Supervised.end`) or dies in any way (the kernel closes the write
end, even after ``SIGKILL``), the supervisor kills every process of the tree, reaps them
and exits. This works the same as root and rootless (no cgroup needed).

The rest are helpers that read ``/proc`` (Linux): the processes of a session, the
processes a command started, whether a pid is alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Final, NamedTuple

__all__ = [
    "END_GRACE",
    "ProcessInfo",
    "Supervised",
    "boot_ticks",
    "command_processes",
    "find_in_session",
    "kill_session",
    "pid_alive",
    "run",
    "run_interactive",
    "session_processes",
    "spawn",
    "start_holder",
]

log = logging.getLogger(__name__)

_SUPERVISOR: Final = str(Path(__file__).with_name("supervisor.py"))
_PR_SET_PDEATHSIG: Final = 1
END_GRACE: Final = 1.0
"""Seconds between ``SIGTERM`` and ``SIGKILL`` when a tree is ended in good order."""

Stream = int | IO[bytes] | None


class ProcessInfo(NamedTuple):
    """What ``/proc/PID/stat`` says about a process."""

    pid: int
    ppid: int
    start_ticks: int


class Supervised:
    """A process started under a supervisor, and the lifeline that ends its tree.

    ``process`` is the supervisor's :class:`subprocess.Popen`: its pipes are the
    command's, its pid leads the command's session (if ``new_session``) and its exit
    status is the command's (``128+N`` for a signal N). The tree ends when :meth:`end`
    is called, or when this Python process dies.
    """

    def __init__(self, process: subprocess.Popen[bytes], lifeline: int) -> None:
        self.process = process
        self._lifeline = lifeline

    @property
    def pid(self) -> int:
        """The supervisor's pid (the command's session id, if it has one of its own)."""
        return self.process.pid

    def poll(self) -> int | None:
        """The exit status, or None while the tree is running."""
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end of the tree (see :meth:`subprocess.Popen.wait`)."""
        return self.process.wait(timeout)

    def end(self, *, graceful: bool = True, timeout: float = END_GRACE + 10.0) -> None:
        """End every process of the tree and wait until they are all gone.

        Args:
            graceful: ``SIGHUP``+``SIGTERM`` first, ``SIGKILL`` after
                :data:`END_GRACE` seconds; otherwise ``SIGKILL`` at once.
            timeout: seconds to wait for the supervisor; past them it is killed, and
                the processes of its session with it.
        """
        if self._lifeline >= 0:
            if graceful and self.process.poll() is None:
                with contextlib.suppress(OSError):
                    os.write(self._lifeline, b"end\n")
            with contextlib.suppress(OSError):
                os.close(self._lifeline)
            self._lifeline = -1
        try:
            _wait_exit(self.process, timeout)
        except subprocess.TimeoutExpired:
            log.warning("supervisor %d did not end its processes: killing them", self.pid)
            kill_session(self.pid)
            self.process.kill()
            self.process.wait()


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> None:
    """``process.wait(timeout)``, woken by the exit itself rather than by polling.

    Popen's timed wait sleeps between polls (up to 50 ms), which every context's
    close would pay; a pidfd (Linux 5.3) becomes readable the moment the process exits.
    """
    if process.poll() is not None:
        return
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        process.wait(timeout)
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    process.wait()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _missing(program: str, env: Mapping[str, str] | None) -> bool:
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    return shutil.which(program, path=path) is None


def spawn(
    argv: Sequence[str],
    *,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    new_session: bool = True,
    pass_fds: Sequence[int] = (),
) -> Supervised:
    """Start ``argv`` under a supervisor, with default signal dispositions.

    Args:
        argv: the command.
        stdin: as for :class:`subprocess.Popen`.
        stdout: as for :class:`subprocess.Popen`.
        stderr: as for :class:`subprocess.Popen`.
        cwd: the directory it starts in.
        env: its environment (default: this process's).
        new_session: run it in a session of its own (no controlling terminal), in a
            process group apart from the supervisor's; False keeps the terminal (an
            interactive shell for the user).
        pass_fds: further file descriptors the command inherits.

    Returns:
        The supervised process.

    Raises:
        OSError: ``argv[0]`` cannot be found, or the process cannot be started.
    """
    if not argv:
        raise ValueError("empty argv")
    if _missing(argv[0], env):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    lifeline_read, lifeline = os.pipe()
    group = ["-g"] if new_session else []
    command = [
        sys.executable or "python3",
        "-I",
        "-S",
        _SUPERVISOR,
        str(lifeline_read),
        str(END_GRACE),
        *group,
        "--",
        *argv,
    ]
    try:
        process = subprocess.Popen(
            command,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            bufsize=0,
            start_new_session=new_session,
            pass_fds=(lifeline_read, *pass_fds),
        )
    except BaseException:
        os.close(lifeline)
        raise
    finally:
        os.close(lifeline_read)
    return Supervised(process, lifeline)


def run(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` supervised, stdin ``/dev/null``, and capture its output as text.

    Raises:
        OSError: the command cannot be started.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` (its tree is ended).
    """
    child = spawn(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    )
    try:
        out, err = child.process.communicate(timeout=timeout)
    finally:
        child.end(graceful=False)
    status = child.process.returncode
    return subprocess.CompletedProcess(
        list(argv),
        status,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
    )


@contextlib.contextmanager
def _ignoring_terminal_signals() -> Iterator[None]:
    r"""Ignore Ctrl-C and Ctrl-\\ here while a child has the terminal (as ``system(3)``)."""
    try:
        previous = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGQUIT))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave the handlers alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGQUIT, previous[1])


def run_interactive(argv: Sequence[str], *, cwd: str | None = None) -> int:
    """Run an interactive command on this terminal; return its exit status.

    Ctrl-C reaches the command (default dispositions) and not this process, and what
    the command leaves behind ends with it.
    """
    child = spawn(argv, cwd=cwd, new_session=False)
    with _ignoring_terminal_signals():
        try:
            return child.wait()
        finally:
            child.end()


def start_holder(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a long-lived helper that dies with this process (``PR_SET_PDEATHSIG``).

    For a process whose own pid matters (the holder of the build's mount namespace),
    which a supervisor would hide; it must start nothing itself.
    """
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl must run in the child
        close_fds=True,
    )


# ---------------------------------------------------------------- /proc helpers


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def _all_processes() -> Iterator[tuple[int, list[str]]]:
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat_fields(entry.name)
                if fields is not None and len(fields) > 19:
                    yield int(entry.name), fields


def session_processes(sid: int) -> list[ProcessInfo]:
    """The live processes of session ``sid``."""
    # fields[0] is the state (field 3 of proc(5)), so field N is fields[N - 3]
    return [
        ProcessInfo(pid, int(fields[1]), int(fields[19]))
        for pid, fields in _all_processes()
        if fields[3] == str(sid) and fields[0] not in ("Z", "X")
    ]


def kill_session(sid: int) -> None:
    """``SIGKILL`` every process of session ``sid`` (a last resort)."""
    for info in session_processes(sid):
        with contextlib.suppress(OSError):
            os.kill(info.pid, signal.SIGKILL)


def _innermost_pid(pid: int) -> int | None:
    """The pid of ``pid`` as its own PID namespace numbers it (``NSpid``), if readable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def find_in_session(sid: int, own_pid: int) -> int | None:
    """The pid, in our PID namespace, of the process of session ``sid`` that is ``own_pid``.

    It may run in a PID namespace of its own (``unshare --pid``), where it has another
    number (``own_pid``, its ``$$``).
    """
    candidates = [
        info.pid for info in session_processes(sid) if _innermost_pid(info.pid) == own_pid
    ]
    return candidates[0] if len(candidates) == 1 else None


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that ``/proc/PID/stat`` start times use."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def command_processes(sid: int, shell_pid: int | None, since: int) -> list[int]:
    """The processes a command started: descendants of the shell started since ``since``.

    Background jobs of earlier commands are left alone, as a terminal with job control
    would leave them. Without a known shell pid, every process of the session started
    since then counts.
    """
    processes = session_processes(sid)
    recent = [p.pid for p in processes if p.start_ticks >= since - 1]
    if shell_pid is None:
        return recent
    children: dict[int, list[int]] = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info.pid)
    below: set[int] = set()
    todo = list(children.get(shell_pid, []))
    while todo:
        pid = todo.pop()
        if pid not in below:
            below.add(pid)
            todo.extend(children.get(pid, []))
    return [pid for pid in recent if pid in below]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    fields = _stat_fields(pid)
    return bool(fields and fields[0] not in ("Z", "X"))
