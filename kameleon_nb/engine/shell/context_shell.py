"""ContextShell: the process of one context shell, and the commands run in it.

The package docstring describes the protocol; :mod:`.protocol` holds its pure text
side, ``protocol.sh`` its bash side and :mod:`.output` the output batching.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Final, NoReturn, Self

from kameleon_nb.core.contexts import ContextSpec
from kameleon_nb.engine import processes
from kameleon_nb.engine.contexts import CommandResult
from kameleon_nb.engine.shell.output import Collector, Output, OutputCallback, last_output
from kameleon_nb.engine.shell.protocol import (
    CA_VARIABLES,
    MAY_UNSET_RE,
    NO_TERMINAL_NOTICES,
    OWN_FUNCTIONS,
    PROXY_VARIABLES,
    Scanner,
    ansi_c_words,
    helper_functions,
    may_assign,
    needs_subshell,
    protocol_functions,
)
from kameleon_nb.errors import (
    CommandTimeoutError,
    ContextClosedError,
    ContextError,
    KameleonError,
    ShellError,
)

__all__ = ["ContextShell"]

log = logging.getLogger(__name__)

_BASH_OPTIONS: Final = "--noprofile --norc --noediting -i"
_READ_SIZE: Final = 65536
_POLL_INTERVAL: Final = 0.1
_SEND_TIMEOUT: Final = 60.0
_PIPE_CHUNK: Final = 65536
_LIVENESS_INTERVAL: Final = 0.1
_DRAIN_LIMIT: Final = 1 << 20


class _Dead(Exception):
    """The shell process ended while we waited for it."""


class _Deadline(Exception):
    """The command's timeout expired."""


class _GaveUp(Exception):
    """The command could not be stopped; the context was killed."""


class ContextShell:
    """A long-lived bash for one Kameleon context (``local``, ``out`` or ``in``).

    The shell is started lazily, by :meth:`start` or by the first :meth:`run`. If it dies,
    :meth:`run` raises :class:`ContextClosedError`; the next :meth:`run` starts a fresh
    process, which reloads the variables saved on disk. Use it as a context manager so
    that every process it started is always ended.

    Args:
        spec: how to start the context shell.
        scripts_dir_name: name of the directory, in the context's work directory (or
            start directory), that holds ``<context>/bash_env``.
        start_timeout: seconds the shell has to answer the bootstrap line.
        interrupt_grace: seconds between the escalation steps of an interrupt
            (``SIGINT``, then ``SIGTERM``, then ``SIGKILL`` of the command's process
            group, then the context is killed).
        fast_path: run commands that can only change variables inside the persistent
            shell, without forking (see :func:`needs_subshell`). ``False`` runs every
            command in a subshell.
    """

    def __init__(
        self,
        spec: ContextSpec,
        *,
        scripts_dir_name: str = "kameleon_scripts",
        start_timeout: float = 30.0,
        interrupt_grace: float = 2.0,
        fast_path: bool = True,
    ) -> None:
        self._spec = spec
        self._scripts_dir_name = scripts_dir_name
        self._start_timeout = start_timeout
        self._grace = interrupt_grace
        self._fast_path = fast_path
        self._name = spec.name.value
        self._child: processes.Supervised | None = None
        self._in_fd = -1
        self._out_fd = -1
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._out_poll = select.poll()
        self._checked_at = 0.0
        self._exited = False
        self._scanner = Scanner("0")
        self._nonce = ""
        self._next_id = 1
        self._pending_id: int | None = None
        self._started_id = 0
        self._shell_pid = 0
        self._shell_host_pid: int | None = None
        self._command_since = 0
        self._stash: list[str] = []
        self._functions: frozenset[str] = frozenset()
        self._started_once = False
        self._wipe_pending = False
        self._restore_pending: str | None = None
        self._interrupt_requested = False
        self._sigint_pending = False
        self._last_tail = ""
        # The last dump of variables(), while no command could have changed them.
        self._vars_dump: str | None = None

    # ----------------------------------------------------------------- public API

    @property
    def spec(self) -> ContextSpec:
        """The settings this shell was built from."""
        return self._spec

    @property
    def alive(self) -> bool:
        """Whether the shell process is running."""
        return self._child is not None and self._child.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the shell if it is not running, and set up the context environment.

        Raises:
            ContextError: the context command could not start, exited, or did not
                answer within ``start_timeout`` seconds.
        """
        if self.alive:
            return
        self._kill_process()
        self._vars_dump = None
        keep = self._started_once and not self._wipe_pending
        restore = self._restore_pending
        self._spawn()
        try:
            self._initialize(keep=keep, restore=restore)
        except BaseException:
            self._kill_process()
            raise
        self._started_once = True
        self._wipe_pending = False
        self._restore_pending = None

    def _initialize(self, *, keep: bool, restore: str | None) -> None:
        init_id = self._new_id()
        script = self._init_script(init_id, keep=keep, restore=restore)
        collector = Collector()
        sink = Output(collector)
        began = time.monotonic()
        try:
            self._send(f'__knb_c={ansi_c_words(script)}; builtin eval "$__knb_c"\n')
            status = self._await(
                init_id, sink, deadline=began + self._start_timeout, interruptible=False
            )
        except (_Dead, ShellError) as err:
            sink.add(self._leftover())
            sink.flush()
            output = NO_TERMINAL_NOTICES.sub("", collector.text).strip()
            reason = self._death_reason() if isinstance(err, _Dead) else str(err)
            self._kill_process()
            raise ContextError(
                f"Cannot start the {self._name}_context with {self._spec.cmd!r}: {reason}."
                + (f" Output:\n{output}" if output else "")
            ) from None
        output = collector.text
        if status != 0:
            self._kill_process()
            details = re.sub(
                rf"__KNB_{self._nonce}_FB_.*__KNB_{self._nonce}_FE__", "", output, flags=re.DOTALL
            )
            details = NO_TERMINAL_NOTICES.sub("", details)
            raise ContextError(
                f"Cannot initialize the {self._name}_context (status {status}): {details.strip()}"
            )
        self._parse_report(output)
        assert self._child is not None
        self._shell_host_pid = processes.find_in_session(self._child.pid, self._shell_pid)
        log.debug(
            "%s context started in %.3f s (shell pid %d)",
            self._name,
            time.monotonic() - began,
            self._shell_pid,
        )

    def run(
        self,
        script: str,
        *,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run one command text in the context, Kameleon-style.

        The text runs with ``set -o pipefail -o allexport``, stdin ``/dev/null``, in the
        context's work directory. Its variables are seen by later commands; ``cd``,
        functions and shell options are not kept.

        Args:
            script: the command text (any characters; NUL is dropped).
            on_output: called with output chunks as they arrive (at most every 100 ms or
                64 KiB).
            timeout: seconds after which the command is interrupted.

        Returns:
            The exit status, the tail of the output and the duration.

        Raises:
            CommandTimeoutError: the command ran longer than ``timeout``; it was
                interrupted and the context lives on.
            ContextClosedError: the shell process died (or had to be killed); the next
                call starts a new one.
            ContextError: the shell could not be (re)started.
            KeyboardInterrupt: Ctrl-C during the command, after the command was
                interrupted.
        """
        self._ensure_ready()
        text = f"{self._spec.exec_prefix} {script}" if self._spec.exec_prefix else script
        sub = not self._fast_path or needs_subshell(text, self._functions)
        mode = ""
        if sub:
            mode = " sub"
            if MAY_UNSET_RE.search(text) or any(name in text for name in self._functions):
                mode = " subu"
        elif not may_assign(text):
            mode = " same"
        if mode != " same":
            self._vars_dump = None
        cmd_id = self._new_id()
        if sub:
            run_part = '( builtin trap -- "$__knb_trap" EXIT; builtin eval "$__knb_c" )'
        else:
            run_part = 'builtin eval "$__knb_c"'
        line = f'__knb_c={ansi_c_words(text)}; __knb_go {cmd_id}{mode}; {run_part} <"$__knb_in"\n'
        log.debug("%s: command %d in %s", self._name, cmd_id, "a subshell" if sub else "place")
        output = Output(on_output)
        began = time.monotonic()
        deadline = began + timeout if timeout is not None else None
        timed_out = False
        with self._sigint_guard():
            self._interrupt_requested = False
            self._pending_id = cmd_id
            try:
                self._command_since = processes.boot_ticks()
                self._send(line)
                try:
                    status = self._await(cmd_id, output, deadline=deadline)
                except _Deadline:
                    timed_out = True
                    log.info("%s: command %d timed out, interrupting it", self._name, cmd_id)
                    status = self._stop_command(cmd_id, output)
                except KeyboardInterrupt:
                    # Only when Ctrl-C could not be caught by _sigint_guard.
                    self._stop_command(cmd_id, output)
                    self._pending_id = None
                    raise
            except _Dead:
                output.add(self._leftover())
                self._raise_closed(output)
            except _GaveUp as err:
                output.flush()
                if timed_out:
                    raise CommandTimeoutError(
                        f"The command in the {self._name}_context timed out after "
                        f"{timeout:g} s and could not be stopped: {err}"
                    ) from None
                raise ContextClosedError(
                    f"The ctx '{self._name}' was closed: {err}." + last_output(output.tail())
                ) from None
            self._pending_id = None
            output.flush()
            if not self.alive:
                # The command ended, but it took the context's process with it.
                self._raise_closed(output)
        duration = time.monotonic() - began
        self._last_tail = output.tail()
        if timed_out:
            raise CommandTimeoutError(
                f"The command in the {self._name}_context timed out after {timeout:g} s; "
                f"it was interrupted (status {status})." + last_output(self._last_tail)
            )
        if self._sigint_pending:
            self._sigint_pending = False
            raise KeyboardInterrupt
        return CommandResult(exit_status=status, tail=self._last_tail, duration=duration)

    def interrupt(self) -> None:
        """Ask the running command to stop, as Ctrl-C would.

        Safe to call from another thread or from a signal handler: it only sets a flag
        that :meth:`run` acts on within 100 ms. Does nothing if no command is running.
        """
        self._interrupt_requested = True

    def close(self) -> None:
        """End the shell and every process it started (``setsid`` ones too), and reap them.

        Idempotent. Variables saved on disk are kept for a later :meth:`start`. An idle
        shell first finishes saving them (the save runs just after the prompt's
        sentinel, so a kill right after a command could cut it short).
        """
        if self._child is not None and self._pending_id is None and self.alive:
            with contextlib.suppress(KameleonError, _Dead, OSError):
                self._internal(":", Collector())
        self._kill_process()

    def variables(self) -> str:
        """Return the context's variables as ``declare -p`` text, for a checkpoint record.

        Bash's own dynamic and read-only variables are left out. The dump is reused
        while only commands that cannot assign a variable (see :func:`may_assign`) ran
        in place since it was made.
        """
        self._ensure_ready()
        if self._vars_dump is None:
            collector = Collector(limit=1 << 30)
            self._internal("__knb_vars", collector)
            self._vars_dump = collector.text
        return self._vars_dump

    def restore_variables(self, dump: str) -> None:
        """Replace the context's variables by those of ``dump`` (text from :meth:`variables`).

        Later commands see the context's initial environment with the variables of
        ``dump`` on top: exactly the variables of a dump made by :meth:`variables`, and a
        fresh context for an empty dump. If the shell is not running, the dump is applied
        when it starts.
        """
        self._vars_dump = None
        if not self.alive:
            self._restore_pending = dump
            return
        self._ensure_ready()
        self._internal(
            "builtin printf 'return 0\\n' >| \"$__knb_dump\"; "
            'builtin printf \'%s\\nreturn 0\\n\' "$__knb_c" >| "$__knb_dump.arrays"; '
            "__knb_mode=restore",
            Collector(),
            payload=dump,
        )

    def reset_variables(self) -> None:
        """Forget the variables set by commands, as upstream's ``reload_context`` does.

        Later commands see the context's initial environment again.
        """
        self._restore_pending = None
        self._vars_dump = None
        if not self.alive:
            self._wipe_pending = True
            return
        self._ensure_ready()
        self._internal("__knb_mode=reset", Collector())

    def restart(self, *, keep_variables: bool) -> None:
        """Replace the shell process by a fresh one.

        Args:
            keep_variables: reload the variables saved on disk; if False, start from the
                initial context environment.
        """
        self._kill_process()
        if not keep_variables:
            self._wipe_pending = True
            self._restore_pending = None
        self.start()

    def pipe_argv(self, script: str) -> list[str]:
        """Return the argv of a one-shot process that runs ``script`` in this context.

        The process (started by the caller, e.g. ``subprocess.Popen`` from the context's
        start directory) runs the context command through its launcher, with the context
        environment, the variables this shell has saved, the work directory and ``set -o
        pipefail -o allexport``. Its stdin and stdout are the caller's, so that ``pipe``
        can join two contexts with an OS pipe; it saves no variables back.

        Args:
            script: the command text (``exec_prefix`` is prepended as for :meth:`run`).

        Returns:
            The argv, ready for :class:`subprocess.Popen`.
        """
        q = shlex.quote
        text = f"{self._spec.exec_prefix} {script}" if self._spec.exec_prefix else script
        lines = [
            "if [[ -c /dev/null ]]; then __knb_null=/dev/null; else __knb_null=; fi",
            *self._environment_lines(),
            '[[ -z $__knb_err ]] || { builtin echo "$__knb_err" >&2; exit 1; }',
            "builtin set -a",
            'for __knb_lf in "$__knb_dump"; do [[ -s $__knb_lf ]] || break',
            '  builtin source "$__knb_lf" 2>"$__knb_null"; __knb_arrays "$__knb_lf"',
            '  builtin eval "$__knb_s" 2>"$__knb_null"; done',
            "builtin unset -v __knb_z __knb_zA __knb_s",
            "builtin set -o pipefail -o allexport",
            f"builtin eval {q(text)}",
        ]
        command = (
            f"cd -- {q(self._spec.start_dir)} && "
            f"exec {self._spec.cmd} --noprofile --norc -c {q(chr(10).join(lines))}"
        )
        return [*self._spec.launcher, "/bin/bash", "-c", command]

    # ------------------------------------------------------------ start-up helpers

    def _spawn(self) -> None:
        if not os.path.isdir(self._spec.start_dir):
            raise ContextError(
                f"Cannot start the {self._name}_context: its start directory "
                f"{self._spec.start_dir} does not exist"
            )
        env = dict(os.environ)
        for name in ("PROMPT_COMMAND", "TMOUT", "HISTFILE", "PS0", "PS1", "PS2", "PS4"):
            env.pop(name, None)
        # "; exit $?" keeps this bash -c as the parent of the context shell (as upstream's
        # "source ...; cmd" does): a command's $PPID is then not the supervisor. The cd
        # is for launchers: entering a mount namespace moves a process to its root.
        command = (
            f"cd -- {shlex.quote(self._spec.start_dir)} && "
            f"{self._spec.cmd} {_BASH_OPTIONS}; exit $?"
        )
        argv = [*self._spec.launcher, "/bin/bash", "-c", command]
        log.debug("starting %s context: %s (in %s)", self._name, argv, self._spec.start_dir)
        try:
            supervised = processes.spawn(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._spec.start_dir,
                env=env,
            )
        except OSError as err:
            raise ContextError(
                f"Cannot start the {self._name}_context with {shlex.join(argv)!r}: {err}"
            ) from err
        child = supervised.process
        assert child.stdin is not None
        assert child.stdout is not None
        self._child = supervised
        self._in_fd = child.stdin.fileno()
        self._out_fd = child.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        self._out_poll = select.poll()
        self._out_poll.register(self._out_fd, select.POLLIN)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._checked_at = time.monotonic()
        self._exited = False
        self._nonce = os.urandom(8).hex()
        self._scanner = Scanner(self._nonce)
        self._stash = []
        self._pending_id = None
        self._shell_host_pid = None

    def _environment_lines(self) -> list[str]:
        """Shell lines that give a bash the context environment (semantics §4.3).

        They expect ``__knb_null`` to name /dev/null (or to be empty if there is none),
        set ``__knb_err`` on failure, and leave the shell in the work directory with
        ``__knb_wd``, ``__knb_dump``, ``__knb_null`` and ``__knb_in`` set, and the
        protocol functions defined.
        """
        spec = self._spec
        q = shlex.quote
        lines = [
            "__knb_err=",
            'builtin export USER="${USER:-root}" HOME="${HOME:-/root}"',
            'builtin export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"',
            'builtin export LC_ALL="${LC_ALL:-POSIX}"',
            "builtin export DEBIAN_FRONTEND=noninteractive",
            f"builtin export KAMELEON_CONTEXT_NAME={q(self._name + '_context')}",
            'builtin export KAMELEON_WORKDIR="$PWD"',
            helper_functions(),
        ]
        if spec.proxy:
            url = q(f"http://{spec.proxy}")
            host = spec.proxy.split(":", 1)[0]
            lines += [f"builtin export {n}={url} {n.upper()}={url}" for n in PROXY_VARIABLES]
            no_proxy = q(f"localhost,{host},127.0.0.1,localaddress,.localdomain")
            lines.append(f"builtin export no_proxy={no_proxy} NO_PROXY={no_proxy}")
        if spec.ca_file:
            # only where the file is seen (a chroot does not see the host's files)
            ca = q(spec.ca_file)
            exports = " ".join(f"{name}={ca}" for name in CA_VARIABLES)
            lines.append(f"[[ -r {ca} ]] && builtin export {exports}")
        if spec.workdir:
            lines += [
                f"__knb_wd={q(spec.workdir)}",
                '[[ -d $__knb_wd ]] || mkdir -p -- "$__knb_wd" '
                '|| __knb_err="cannot create the work directory $__knb_wd"',
            ]
        else:
            lines.append('__knb_wd="$PWD"')
        lines += [
            'builtin cd -- "$__knb_wd" || __knb_err="cannot enter the work directory $__knb_wd"',
            '__knb_wd="$PWD"',
            f'__knb_dump="$__knb_wd"/{q(self._scripts_dir_name)}/{q(self._name)}/bash_env',
            '[[ -d ${__knb_dump%/*} ]] || mkdir -p -- "${__knb_dump%/*}" '
            '|| __knb_err="cannot create the script directory ${__knb_dump%/*}"',
            # what commands export (passwords included) is for this user's eyes only
            'builtin command chmod 700 -- "${__knb_dump%/*}" 2>/dev/null',
            '(builtin umask 077; for __knb_f in "$__knb_dump"{,.arrays,.init,.init.arrays}; do '
            ': >> "$__knb_f"; command chmod 600 -- "$__knb_f"; done) 2>/dev/null',
            "if [[ -n $__knb_null ]]; then __knb_in=$__knb_null",
            "else __knb_null=${__knb_dump%/*}/null __knb_in=${__knb_dump%/*}/empty",
            '     : >| "$__knb_in"',
            "fi",
        ]
        if spec.env_script:
            lines.append(f"builtin set -a; builtin eval {q(spec.env_script)}; builtin set +a")
        lines.append(protocol_functions())
        return lines

    def _init_script(self, init_id: int, *, keep: bool, restore: str | None) -> str:
        q = shlex.quote
        lines = [
            "builtin set +o history +H",
            "[[ ! -o emacs && ! -o vi ]] || builtin bind 'set enable-bracketed-paste off'",
            "PS1='' PS2='' PS0='' PS4='+ ' HISTFILE=/dev/null",
            "builtin unset -v PROMPT_COMMAND TMOUT IGNOREEOF MAILCHECK",
            # A chroot may have no /dev yet: then the protocol uses files of its own.
            "if [[ -c /dev/null ]]; then __knb_null=/dev/null; else __knb_null=; fi",
            f"__knb_nonce={q(self._nonce)}",
            *self._environment_lines(),
            "__knb_snapshot",
        ]
        if restore is not None:
            lines += [
                "builtin printf 'return 0\\n' >| \"$__knb_dump\"",
                f"builtin printf '%s\\nreturn 0\\n' {q(restore)} >| \"$__knb_dump.arrays\"",
                "__knb_mode=restore",
            ]
        elif keep:
            lines.append(
                "[[ -s $__knb_dump || -s $__knb_dump.arrays ]] && __knb_mode=subu || __knb_mode="
            )
        else:
            lines += [': >| "$__knb_dump"; : >| "$__knb_dump.arrays"', "__knb_mode="]
        lines += [
            'builtin printf \'\\n__KNB_%s_FB_%s__\\n\' "$__knb_nonce" "$$"',
            "builtin declare -F",
            "builtin printf '__KNB_%s_FE__\\n' \"$__knb_nonce\"",
            f"PROMPT_COMMAND=$__knb_prompt_command __knb_id={init_id}",
            '[[ -z $__knb_err ]] || { builtin echo "$__knb_err" >&2; false; }',
        ]
        return "\n".join(lines) + "\n"

    def _parse_report(self, output: str) -> None:
        """Read the pid of the context shell and its function names from the bootstrap."""
        match = re.search(
            rf"__KNB_{self._nonce}_FB_(\d+)__\n(.*?)__KNB_{self._nonce}_FE__", output, re.DOTALL
        )
        if match is None:
            raise ShellError(f"The {self._name}_context did not report its functions")
        self._shell_pid = int(match.group(1))
        names = {line.rpartition(" ")[2] for line in match.group(2).splitlines() if line}
        self._functions = frozenset(n for n in names if n not in OWN_FUNCTIONS and "__knb" not in n)

    def _ensure_ready(self) -> None:
        """Start the shell if needed and finish a command a previous call left running.

        A shell that died since the last call is reported once (it is not silently
        replaced: its in-memory state is gone); the call after that starts a new one.
        """
        if self._child is not None and not self.alive:
            self._pending_id = None
            output = Output(None)
            output.add(self._leftover())
            self._raise_closed(output)
        if not self.alive:
            self.start()
        if self._pending_id is None:
            return
        cmd_id, self._pending_id = self._pending_id, None
        log.info("%s: stopping a command left running by an earlier call", self._name)
        output = Output(None)
        try:
            self._stop_command(cmd_id, output)
        except _Dead:
            self._raise_closed(output)
        except _GaveUp as err:
            raise ContextClosedError(f"The ctx '{self._name}' was closed: {err}") from None

    # ---------------------------------------------------------------- I/O helpers

    def _new_id(self) -> int:
        cmd_id = self._next_id
        self._next_id += 1
        return cmd_id

    def _internal(self, code: str, collector: Collector, *, payload: str | None = None) -> None:
        cmd_id = self._new_id()
        prefix = f"__knb_c={ansi_c_words(payload)}; " if payload is not None else ""
        self._pending_id = cmd_id
        try:
            self._send(f"{prefix}__knb_go {cmd_id} int; {code}\n")
            status = self._await(cmd_id, Output(collector), deadline=None)
        except _Dead:
            self._raise_closed(Output(None))
        self._pending_id = None
        if status != 0:
            raise ShellError(f"Internal command failed in the {self._name}_context: {code}")

    def _send(self, line: str) -> None:
        """Write a protocol line to the shell, reading its output meanwhile (no deadlock)."""
        if self._child is None:
            raise _Dead
        data = memoryview(line.encode("utf-8", "surrogateescape"))
        done = 0
        deadline: float | None = None
        poller: select.poll | None = None
        try:
            while done < len(data):
                try:
                    done += os.write(self._in_fd, data[done : done + _PIPE_CHUNK])
                    continue
                except BlockingIOError:
                    pass
                # The pipe is full: the shell is busy; keep its output flowing meanwhile.
                now = time.monotonic()
                if deadline is None:
                    deadline = now + _SEND_TIMEOUT
                    poller = select.poll()
                    poller.register(self._in_fd, select.POLLOUT)
                    poller.register(self._out_fd, select.POLLIN)
                elif now > deadline:
                    raise ShellError(f"The {self._name}_context does not read its input")
                if not self.alive:
                    raise _Dead
                assert poller is not None
                for fd, _ in poller.poll(_POLL_INTERVAL * 1000):
                    if fd == self._out_fd:
                        self._stash.append(self._read_available())
        except OSError as err:  # EPIPE: the shell is gone
            log.debug("%s: write failed: %s", self._name, err)
            raise _Dead from err

    def _leftover(self) -> str:
        """The output a dead (or dying) shell left: what is read already or still in the pipe.

        Protocol markers are dropped; text held back as a possible marker is returned.
        """
        text = "".join(self._stash)
        self._stash.clear()
        if self._child is not None and self._out_fd >= 0:
            text += self._read_available(_DRAIN_LIMIT)
        parts = [item for item in self._scanner.feed(text) if isinstance(item, str)]
        return "".join(parts) + self._scanner.drain()

    def _read_available(self, limit: int = _READ_SIZE) -> str:
        """Read what the output pipe holds now, up to ``limit`` bytes ("" if nothing)."""
        chunks = []
        size = 0
        while size < limit:
            try:
                chunk = os.read(self._out_fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                self._exited = True
                break
            if not chunk:
                self._exited = True  # every writer closed the pipe
                break
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < _READ_SIZE:
                break
        return self._decoder.decode(b"".join(chunks), final=False) if chunks else ""

    def _read(self, timeout: float) -> str:
        """Read a chunk ("" on timeout); raise :class:`_Dead` when the shell is gone.

        The end of the process is noticed even if a process it left behind keeps the
        output pipe open: what the pipe holds is read first, then :class:`_Dead`.
        """
        if self._stash:
            text = "".join(self._stash)
            self._stash.clear()
            return text
        if self._child is None or self._exited:
            raise _Dead
        text = ""
        if self._out_poll.poll(max(timeout, 0.0) * 1000):
            text = self._read_available()
        now = time.monotonic()
        if not text or now - self._checked_at >= _LIVENESS_INTERVAL:
            self._checked_at = now
            if not self.alive:
                self._exited = True
                text += self._read_available(_DRAIN_LIMIT)
        if self._exited and not text:
            raise _Dead
        return text

    def _await(
        self,
        cmd_id: int,
        output: Output,
        *,
        deadline: float | None,
        interruptible: bool = True,
    ) -> int:
        """Wait for the end marker of ``cmd_id``, forwarding output; return its status.

        An :meth:`interrupt` request or a pending Ctrl-C starts the stop sequence. Reaching
        ``deadline`` raises :class:`_Deadline` (or :class:`ShellError` if not
        ``interruptible``), and the caller decides.
        """
        stopper: _Stopper | None = None
        while True:
            now = time.monotonic()
            if (
                interruptible
                and stopper is None
                and (self._interrupt_requested or self._sigint_pending)
            ):
                stopper = _Stopper(self, now)
            if deadline is not None and now >= deadline and stopper is None:
                if not interruptible:
                    raise ShellError(
                        f"no answer from the {self._name}_context within {self._start_timeout:g} s"
                    )
                raise _Deadline
            wait = _POLL_INTERVAL
            if stopper is not None:
                wait = min(wait, stopper.step(now, self._started_id == cmd_id))
            if deadline is not None:
                wait = min(wait, deadline - now)
            for item in self._scanner.feed(self._read(wait)):
                if isinstance(item, str):
                    output.add(item)
                elif item.cmd_id != cmd_id:
                    log.debug("%s: stale marker %s skipped", self._name, item)
                elif item.status is None:
                    self._started_id = cmd_id
                else:
                    output.flush()
                    return item.status
            output.tick(time.monotonic())

    def _stop_command(self, cmd_id: int, output: Output) -> int:
        """Interrupt the running command ``cmd_id`` and wait for its end; return its status."""
        self._interrupt_requested = True
        try:
            return self._await(cmd_id, output, deadline=None)
        finally:
            self._interrupt_requested = False

    def _raise_closed(self, output: Output) -> NoReturn:
        output.flush()
        reason = self._death_reason()
        tail = output.tail()
        self._kill_process()
        log.warning("%s context closed: %s", self._name, reason)
        raise ContextClosedError(
            f"The ctx '{self._name}' was closed ({reason})." + last_output(tail)
        )

    def _death_reason(self) -> str:
        child = self._child
        if child is None:
            return "the shell is not running"
        status = child.poll()
        if status is None:
            # its pipes close just before its exit status can be collected (the
            # supervisor first ends what the shell left behind: up to END_GRACE)
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = child.wait(timeout=processes.END_GRACE + 5.0)
        if status is None:
            return "the shell closed its output"
        if status < 0:
            return f"the shell was killed by signal {-status}"
        if status > 128:
            return f"the shell was killed by signal {status - 128}"
        return f"the shell exited with status {status}"

    def _kill_process(self) -> None:
        """End the context's whole process tree and reap the shell.

        The supervisor does it: ``SIGHUP`` and ``SIGTERM`` to every process the
        context started (its background jobs and daemons too), ``SIGKILL`` to those
        left a second later; it exits when none is left.
        """
        child, self._child = self._child, None
        self._vars_dump = None
        if child is None:
            return
        child.end()
        for stream in (child.process.stdin, child.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._in_fd = self._out_fd = -1
        log.debug("%s context closed", self._name)

    # ---------------------------------------------------------------- signal helpers

    def _signal_command(self, stage: int) -> None:
        """Stop the running command, as a terminal without job control would.

        Stage 0 sends ``SIGINT`` to the context shell and to the processes the command
        started (the shell abandons the rest of the command); stages 1 and 2 send
        ``SIGTERM`` and then ``SIGKILL`` to those processes only.
        """
        child = self._child
        if child is None:
            return
        targets = processes.command_processes(child.pid, self._shell_host_pid, self._command_since)
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)[min(stage, 2)]
        if stage == 0 and self._shell_host_pid is not None:
            targets = [self._shell_host_pid, *targets]
        log.debug("%s: sending %s to %s", self._name, sig.name, targets)
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)

    @contextlib.contextmanager
    def _sigint_guard(self) -> Iterator[None]:
        """Turn Ctrl-C during a command into an interrupt of the command, then re-raise."""
        self._sigint_pending = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        try:
            previous = signal.getsignal(signal.SIGINT)
        except ValueError:
            previous = None
        if previous is not signal.default_int_handler:
            yield
            return

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            self._sigint_pending = True

        signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _Stopper:
    """The escalation of an interrupt: SIGINT, then SIGTERM, then SIGKILL, then give up."""

    def __init__(self, shell: ContextShell, now: float) -> None:
        self._shell = shell
        self._stage = -1
        self._next = now
        self._since = now

    def step(self, now: float, started: bool) -> float:
        """Act if it is time to; return how long to wait before the next step."""
        if now < self._next:
            return self._next - now
        if self._stage < 0 and not started and now - self._since < self._shell._grace:
            # The command line is still being read: a SIGINT now would only discard it.
            self._next = now + 0.01
            return 0.01
        self._stage += 1
        if self._stage > 2:
            self._shell._kill_process()
            raise _GaveUp(
                f"the command did not stop within {3 * self._shell._grace:g} s of being "
                "interrupted, so the context was killed"
            )
        self._shell._signal_command(self._stage)
        self._next = now + self._shell._grace
        return self._shell._grace
