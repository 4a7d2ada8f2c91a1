r"""One persistent bash per Kameleon context, driven over pipes.

The package holds:

* :mod:`.context_shell`: :class:`ContextShell`, the process and the commands run in it
  (it starts and ends processes through :mod:`kameleon_nb.engine.processes`);
* :mod:`.protocol`: the pure Python side of the protocol (quoting, marker scanning,
  :func:`needs_subshell`);
* ``protocol.sh`` and ``helpers.sh``: the bash side, as data files that ``shellcheck``
  reads (``tests/engine/test_shell_files.py``);
* :mod:`.output`: output batching and the tail kept for error messages.

It implements the protocol of ``notebook-design.md`` §1.2 with Kameleon's execution
semantics (``kameleon-semantics.md`` §4.3-4.4):

* **Spawn.** ``bash -c "<cmd> --noprofile --norc --noediting -i; exit $?"`` from the
  context's start directory, in a session of its own, with pipes and no terminal: its
  stdin carries the protocol, and stdout and stderr share one pipe that this module
  reads. Commands therefore see what upstream gives them: ``test -t 1`` and ``test -t
  2`` fail (apt and dpkg print no progress bars), and there is no controlling terminal
  (opening ``/dev/tty`` fails at once with ``ENXIO`` instead of waiting for a user).
  The outer ``bash -c`` stays the parent of the context shell, as in upstream, so that a
  command's ``$PPID`` is never this Python process. It runs under a supervisor
  (:mod:`kameleon_nb.engine.processes`), with every signal at its default disposition,
  that ends every process the context started (``setsid`` daemons too) when the
  context is closed or this process dies, as a
  terminal hang-up would. A bootstrap line then sets up the context environment
  (``USER``/``HOME`` defaults, ``PATH`` prefix, ``LC_ALL``, ``DEBIAN_FRONTEND``,
  ``KAMELEON_CONTEXT_NAME``, ``KAMELEON_WORKDIR``, ``fail``, ``__download``, proxy
  variables, the recipe's env script; the rest of the environment is inherited, as
  upstream's is) and the protocol: empty ``PS1``/``PS2``, history off, and a
  ``PROMPT_COMMAND`` that prints ``\n__KNB_<nonce>_<id>_<status>__\n``. Each command line
  also prints a start marker ``\n__KNB_<nonce>_<id>_S__\n``; an interrupt is only sent
  once it is seen. The shell is interactive (``-i``) without job control: an error such
  as ``${x:?}`` or a ``SIGINT`` ends the command, never the context.
* **Transport.** A command is sent as one logical line. Its text is the value of
  ``__knb_c``, written as ANSI-C quoted words (``$'...'``) of at most 256 characters joined
  by backslash-newline continuations. Every control character, quote, ``!`` and backslash
  is escaped, so the shell reads short lines of printable text whatever the command
  holds, and no process is started to decode it (no base64, no file).
* **Execution.** Kameleon runs each command in a child of the context shell. Forking
  costs 0.3-0.4 ms on the project's VMs, close to the whole latency budget, so commands
  that cannot change anything but variables (no ``cd``, function definition, ``set``,
  ``exit``, ``exec``, ``trap``, ``&``, ...; see :func:`needs_subshell`) are ``eval``-ed in
  the persistent shell itself, with ``set -o pipefail -o allexport`` and stdin
  ``/dev/null``. Every other command runs in a ``( ... )`` subshell whose ``EXIT`` trap
  writes its variables out, and the persistent shell then loads them. Both paths give
  Kameleon's observable behaviour: variables persist, ``cd``, functions and options do
  not, ``exit``/``set -e``/``exec`` end only the command.
* **Interrupts.** Ctrl-C or a timeout does what a terminal without job control does:
  ``SIGINT`` to the context shell and to the processes the command started (the shell's
  descendants started since the command began), then ``SIGTERM`` and ``SIGKILL`` to those
  processes, then the context is killed.
* **Variables** are saved after every command that may have changed them (a command
  run in place whose text cannot assign one, see :func:`.protocol.may_assign`, leaves
  the saved ones as they are) in ``<dir>/kameleon_scripts/<ctx>/``:
  ``bash_env`` holds the exported variables (``declare -px``; ``allexport`` exports every
  assignment) and ``bash_env.arrays`` the arrays (``declare -pa``/``-pA``), so that they
  survive a restart of the shell. Bash's read-only and dynamic variables and the
  protocol's own are never loaded back.
* **Output** is read in chunks and passed on unchanged, only the unread tail is scanned
  for markers, and it is published to the caller at most every 100 ms or 64 KiB.
"""

from kameleon_nb.engine.contexts import CommandResult
from kameleon_nb.engine.shell.context_shell import ContextShell
from kameleon_nb.engine.shell.output import OutputCallback
from kameleon_nb.engine.shell.protocol import needs_subshell

__all__ = ["CommandResult", "ContextShell", "OutputCallback", "needs_subshell"]
