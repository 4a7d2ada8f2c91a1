"""The supervisor of one process tree: nothing it starts outlives the build.

Run as a script (``python -I -S supervisor.py LIFELINE GRACE [-g] -- ARGV...``) by
:mod:`kameleon_nb.engine.processes`, never imported by the package: it uses the standard
library only, so that it starts in a few milliseconds.

It makes itself a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): every process of the
tree that loses its parent (a ``cmd &`` whose shell ended, a ``setsid`` or double-forked
daemon) becomes its child instead of init's, so the tree can always be found from here
by walking ``/proc``. It then starts ``ARGV`` with every signal at its default
disposition and none blocked (a launcher that ignores ``SIGPIPE``, as Python does, or
a build started from a background job, which ignores ``SIGINT``/``SIGQUIT``, would
otherwise pass that on to every command), and waits for one of:

* the *lifeline* (the read end of a pipe whose write end only the build holds) turns
  readable: a line on it asks for a graceful end (``SIGHUP``+``SIGTERM``, then
  ``SIGKILL`` after ``GRACE`` seconds); end of file means the build is gone (closed
  without a word, or killed), and the tree gets ``SIGKILL`` at once;
* ``SIGHUP`` or ``SIGTERM`` to the supervisor: a graceful end;
* the end of ``ARGV``'s process: what it left behind gets the graceful end.

With ``-g``, ``ARGV`` runs in a process group of its own, so that a command's ``kill
0`` does not reach the supervisor (for a process in a session of its own; not for one
that must stay in the terminal's foreground group).

It exits once it has no child left (every process of the tree has been reaped), with
the status of ``ARGV``'s process (``128+N`` for a signal N). It ignores ``SIGINT`` and
``SIGQUIT``: on a terminal, Ctrl-C is for the command.
"""

from __future__ import annotations

# Start-up time matters (one supervisor per context shell and per end of a pipe): no
# contextlib, and the C module _signal rather than signal (whose enum import costs more
# than the rest of the script).
import _signal as signal  # type: ignore[import-not-found]
import ctypes
import os
import select
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_SWEEP_INTERVAL = 0.01
_GIVE_UP_AFTER = 60.0  # a process stuck in the kernel (state D) for longer is left


class _State:
    """What the supervisor has learnt so far."""

    def __init__(self) -> None:
        self.main_status: int | None = None
        self.end_requested = False


def _set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(
            f"kameleon_nb supervisor: cannot become a subreaper: {os.strerror(ctypes.get_errno())}",
            file=sys.stderr,
        )


def _default_signals() -> None:
    """Give every signal its default disposition and unblock them all (in the child)."""
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _start(argv: list[str], lifeline: int, new_group: bool) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: ARGV's process
        os.close(lifeline)
        signal.set_wakeup_fd(-1)
        if new_group:
            # "kill 0" in a command must not reach the supervisor
            os.setpgid(0, 0)
        _default_signals()
        os.execvp(argv[0], argv)
    except OSError as err:
        try:
            os.write(2, f"{argv[0]}: {err.strerror}\n".encode(errors="replace"))
        except OSError:
            pass
        os._exit(126 if isinstance(err, PermissionError) else 127)
    os._exit(127)  # not reached: execvp returns only by raising


def _descendants(root: int) -> list[int]:
    """The live (not zombie) processes below ``root``, from ``/proc``."""
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) < 2:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        if fields[0] not in ("Z", "X"):
            live.add(pid)
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return [pid for pid in found if pid in live]


def _reap(state: _State, main: int) -> bool:
    """Collect ended children; return False once there is none left."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if pid == main:
            code = os.waitstatus_to_exitcode(status)
            state.main_status = 128 - code if code < 0 else code


def _kill(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except OSError:  # gone already, or not ours to signal
        pass


def _drain(fd: int) -> None:
    try:
        os.read(fd, 512)
    except OSError:  # nothing to read
        pass


def _end_tree(state: _State, main: int, wake: int, grace: float) -> None:
    """Signal every process of the tree until none is left (all reaped)."""
    me = os.getpid()
    kill_at = time.monotonic() + grace
    give_up = kill_at + _GIVE_UP_AFTER
    warned: set[int] = set()
    while _reap(state, main):
        now = time.monotonic()
        if now > give_up:
            return
        for pid in _descendants(me):
            if now >= kill_at:
                _kill(pid, signal.SIGKILL)
            elif pid not in warned:
                warned.add(pid)
                for number in (signal.SIGHUP, signal.SIGTERM, signal.SIGCONT):
                    _kill(pid, number)
        # wait for a SIGCHLD (the wakeup pipe), at most one sweep interval
        select.select([wake], [], [], _SWEEP_INTERVAL)
        _drain(wake)


def main(args: list[str]) -> int:
    """Supervise the command after ``--``; see the module docstring for the arguments."""
    new_group = len(args) > 2 and args[2] == "-g"
    rest = args[3:] if new_group else args[2:]
    if len(args) < 4 or not rest or rest[0] != "--" or len(rest) < 2:
        print("usage: supervisor.py LIFELINE_FD GRACE [-g] -- ARGV...", file=sys.stderr)
        return 125
    lifeline = int(args[0])
    grace = float(args[1])
    argv = rest[1:]
    state = _State()

    def on_end(signum: int, frame: object) -> None:
        state.end_requested = True

    _set_subreaper()
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGHUP, on_end)
    signal.signal(signal.SIGTERM, on_end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    main_pid = _start(argv, lifeline, new_group)
    # The supervisor keeps none of the child's streams: a pipe ends when the tree is done.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    poller = select.poll()
    poller.register(lifeline, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    grace_now = grace
    while True:
        if not _reap(state, main_pid) or state.main_status is not None:
            break
        if state.end_requested:
            break
        events = dict(poller.poll())
        if lifeline in events:
            try:
                word = os.read(lifeline, 64)
            except OSError:
                word = b""
            if not word:  # the build is gone: no grace
                grace_now = 0.0
            break
        if wake_read in events:
            _drain(wake_read)
    _end_tree(state, main_pid, wake_read, grace_now)
    return state.main_status if state.main_status is not None else 137


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
