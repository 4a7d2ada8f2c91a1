"""The Python side of the context shells' protocol: pure text functions, no process.

* :func:`needs_subshell` decides whether a command may run in the persistent shell.
* :func:`ansi_c_words` quotes a command as the short printable lines that are sent.
* :func:`protocol_functions` and :func:`helper_functions` are the bash side
  (``protocol.sh`` and ``helpers.sh``, package data, checked by ``shellcheck``).
* :class:`Scanner` splits the shell's output into command output and markers.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Final, NamedTuple

__all__ = [
    "CA_VARIABLES",
    "MAY_UNSET_RE",
    "NO_TERMINAL_NOTICES",
    "OWN_FUNCTIONS",
    "PROXY_VARIABLES",
    "Marker",
    "Scanner",
    "ansi_c_words",
    "helper_functions",
    "may_assign",
    "needs_subshell",
    "protocol_functions",
]

_WORD_CHARS: Final = 256
_COMMENT_RE: Final = re.compile(r"\s*#")
# Bash prints these when an interactive shell has no terminal; they are not errors.
NO_TERMINAL_NOTICES: Final = re.compile(
    r"^bash: (?:cannot set terminal process group \(-?\d+\): .*|no job control in this shell)\n",
    re.MULTILINE,
)
OWN_FUNCTIONS: Final = frozenset({"fail", "__download"})

# Variables that are never saved, restored or unset: bash's read-only and dynamic ones,
# and those whose value would break the protocol of the persistent shell.
_PROTECTED_VARS: Final = (  # noqa: SIM905
    "BASHOPTS BASHPID BASH_ALIASES BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_CMDS BASH_COMMAND "
    "BASH_COMPAT BASH_EXECUTION_STRING BASH_LINENO BASH_REMATCH BASH_SOURCE BASH_SUBSHELL "
    "BASH_VERSINFO BASH_XTRACEFD COMP_WORDBREAKS DIRSTACK EPOCHREALTIME EPOCHSECONDS EUID "
    "FUNCNAME FUNCNEST GROUPS HISTCMD HISTFILE IFS IGNOREEOF LINENO MAILCHECK PIPESTATUS "
    "POSIXLY_CORRECT PPID PROMPT_COMMAND PROMPT_DIRTRIM PS0 PS1 PS2 PS4 RANDOM SECONDS "
    "SHELLOPTS SRANDOM TMOUT UID _"
).split()

#: What the context's proxy setting exports (both cases, as upstream), and where its
#: TLS clients find the cache's CA: set from the context's settings each time it starts,
#: never saved, so a checkpoint or a restart brings back no proxy of another build.
PROXY_VARIABLES: Final = ("http_proxy", "https_proxy", "ftp_proxy", "rsync_proxy", "all_proxy")
CA_VARIABLES: Final = (
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
)
_ENVIRONMENT_VARS: Final = (
    *(v for n in (*PROXY_VARIABLES, "no_proxy") for v in (n, n.upper())),
    *CA_VARIABLES,
)

# Shell words whose use may change the shell itself (not only its variables): a command
# that contains one of them runs in a subshell. The match is deliberately loose; a false
# positive only costs a fork.
_SUBSHELL_WORDS: Final = (  # noqa: SIM905
    "alias bg bind builtin caller cd command complete compopt coproc declare dirs disown "
    "enable eval exec exit fc fg function hash history jobs local logout popd pushd "
    "readonly return set shopt source suspend trap typeset ulimit umask unalias unset wait"
).split()
_SPECIAL_VAR_RE: Final = (
    r"IFS|PS[0-4]|PROMPT_\w+|HIST\w*|TMOUT|POSIXLY_CORRECT|BASH\w*|SHELLOPTS|ENV|CDPATH|"
    r"GLOBIGNORE|IGNOREEOF|MAIL\w*|FUNCNEST|OPTERR|LINENO|SECONDS|S?RANDOM|EPOCH\w+|"
    r"COMP_\w+|histchars|auto_resume|EXECIGNORE|INPUTRC|GROUPS|DIRSTACK|PIPESTATUS"
)
_SUBSHELL_RE: Final = re.compile(
    r"(?<![\w-])(?:" + "|".join(_SUBSHELL_WORDS) + r")(?![\w-])"  # state-changing builtins
    r"|(?<!\w)(?:" + _SPECIAL_VAR_RE + r")(?!\w)"  # variables the shell itself uses
    r"|__knb"  # the protocol's own names
    r"|[\w.:@+-]\s*\(\s*\)"  # name () { ...: a function definition
    r"|(?:^|[\s;&|(){}!`])\.\s"  # ". file"
    r"|(?<![&|<>])&(?![&>])"  # "cmd &": a background job of the shell
    r"|\{\w+\}\s*[<>]"  # "{fd}>file": a file descriptor left open
)

# Only these can remove a variable (unset, or code that is not in the text).
MAY_UNSET_RE: Final = re.compile(
    r"(?<![\w-])(?:unset|source|eval)(?![\w-])|(?:^|[\s;&|(){}!`])\.\s"
)

# What can assign a variable of the shell that runs a command (the others only run
# programs, test or print): an "=" anywhere (assignments, ${x:=y}, arithmetic), "++" and
# "--" after something (arithmetic), arithmetic commands, and the builtins that assign.
# Only for commands that run in place (the rest already run in a subshell). Loose on
# purpose: a false positive costs one save of the variables.
_MAY_ASSIGN_RE: Final = re.compile(
    r"=|\+\+|(?<=\S)--|\(\(|\$\["
    r"|(?<![\w-])(?:read|readarray|mapfile|printf|getopts|let|for|select|export|compgen"
    r"|declare|typeset|readonly|local|wait)(?![\w-])"
)

_ESCAPES: Final[dict[int, str]] = {code: f"\\x{code:02x}" for code in [*range(1, 32), 127]}
# ' and ! as \xHH: history expansion, on until the bootstrap line has run, would read
# \' as the end of a quoted string and expand the ! that follows.
_ESCAPES.update({0: "", ord("\n"): "\\n", ord("\t"): "\\t", ord("\\"): "\\\\"})
_ESCAPES.update({ord("'"): "\\x27", ord("!"): "\\x21"})


def needs_subshell(text: str, functions: frozenset[str] = frozenset()) -> bool:
    """Tell whether a command must run in a subshell to keep Kameleon's semantics.

    A command runs in the persistent shell only if nothing in its text can change that
    shell beyond its variables. The test is conservative: any builtin that changes the
    directory, options, traps, functions, aliases, limits or file descriptors, any
    ``exit``/``exec``/``eval``/``source``, a function definition, a background job, a
    variable the shell itself uses, or a call to a function of the context shell sends the
    command to a subshell.

    Args:
        text: the command text.
        functions: names of the functions defined in the context shell.

    Returns:
        True if the command must run in a ``( ... )`` subshell.

    >>> needs_subshell("apt-get install -y curl > /dev/null 2>&1 && echo ok")
    False
    >>> needs_subshell("cd /tmp && make")
    True
    >>> needs_subshell("x=1; y=$((x + 1))")
    False
    >>> needs_subshell("sleep 10 &")
    True
    """
    if _SUBSHELL_RE.search(text):
        return True
    return any(name in text for name in functions)


def may_assign(text: str) -> bool:
    """Tell whether a command run in place may change the shell's variables.

    When it cannot, the variables saved after the previous command are still those of
    the shell, and saving them again is skipped (it costs more than running ``true``).

    >>> may_assign("apt-get install -y curl > /dev/null")
    False
    >>> may_assign("x=1")
    True
    >>> may_assign("read -r line < file")
    True
    """
    return _MAY_ASSIGN_RE.search(text) is not None


def ansi_c_words(text: str) -> str:
    """Quote ``text`` as ANSI-C words joined by line continuations.

    Every physical line stays below about 1 KiB and holds printable characters only, so
    the TTY's canonical mode neither truncates nor interprets it. NUL characters, which no
    bash string can hold, are dropped.
    """
    if not text:
        return "''"
    return "\\\n".join(
        "$'" + text[i : i + _WORD_CHARS].translate(_ESCAPES) + "'"
        for i in range(0, len(text), _WORD_CHARS)
    )


def _table_entries(names: list[str]) -> str:
    return " ".join(f"[{name}]=1" for name in names)


def _all_names() -> str:
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    letters += [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["_"]
    return " ".join("${!" + letter + "@}" for letter in letters)


def _shell_file(name: str) -> str:
    """A bash file of this package, without its comment lines (they are never sent)."""
    # next to this module, as the supervisor script is (importlib.resources would
    # cost more to import than the rest of the shell package)
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as stream:
        text = stream.read()
    return "".join(line for line in text.splitlines(keepends=True) if not _COMMENT_RE.match(line))


@functools.cache
def helper_functions() -> str:
    """Kameleon's ``fail`` and ``__download`` (``helpers.sh``), ready to evaluate."""
    return _shell_file("helpers.sh")


@functools.cache
def protocol_functions() -> str:
    """The protocol's bash functions and variables (``protocol.sh``), ready to evaluate.

    The file's placeholders are filled: ``@P@`` with the table of protected names,
    ``@U@`` with their list, ``@ALL@`` with words that expand to every variable name.
    """
    text = _shell_file("protocol.sh").replace("@ALL@", _all_names())
    protected = [*_PROTECTED_VARS, *_ENVIRONMENT_VARS]
    text = text.replace("@U@", " ".join(protected))
    return text.replace("@P@", _table_entries(protected))


class Marker(NamedTuple):
    """A protocol marker found in the output: start (status None) or end of a command."""

    cmd_id: int
    status: int | None


# An interactive bash with no terminal reports, each time a foreground pipeline ends on a
# signal (``yes | head`` ends ``yes`` with SIGPIPE), that it could not reset the terminal
# it does not have. That line is the shell's, never the command's: it is dropped.
_TTY_NOISE_RE: Final = re.compile(
    r"^[^\n:]*: \[\d+: \d+ \(\d+\)\] tcsetattr: Inappropriate ioctl for device(?:\n|\Z)",
    re.M,
)


class Scanner:
    """Turn the shell's output into command output text and protocol markers.

    The text passes unchanged (carriage returns are the command's own). Only the
    unread tail is kept and searched, so the cost is linear in the output.
    """

    def __init__(self, nonce: str) -> None:
        self._lead = f"\n__KNB_{nonce}_"
        self._marker_re = re.compile(re.escape(self._lead) + r"(\d+)_(\d+|S)__\n")
        self._partial_re = re.compile(r"(?:\d*|\d+_(?:\d*|S)_{0,2})\Z")
        self._buf = ""
        self._eat_newline = False  # a complaint ended a chunk: its newline comes next

    def feed(self, chunk: str) -> list[str | Marker]:
        """Add a chunk; return the output text and markers it completes, in order."""
        buf = self._buf + chunk
        items: list[str | Marker] = []
        start = search = 0
        hold = -1
        lead = self._lead
        while (i := buf.find(lead, search)) >= 0:
            match = self._marker_re.match(buf, i)
            if match is None:
                if self._partial_re.match(buf, i + len(lead)):
                    hold = i
                    break
                search = i + 1
                continue
            if i > start:
                items.append(buf[start:i])
            status = match.group(2)
            items.append(Marker(int(match.group(1)), None if status == "S" else int(status)))
            start = search = match.end()
        if hold < 0:
            hold = len(buf)
            newline = buf.rfind("\n", max(start, len(buf) - len(lead) + 1))
            if newline >= 0 and lead.startswith(buf[newline:]):
                hold = newline
        if hold > start:
            items.append(buf[start:hold])
        self._buf = buf[hold:]
        return [self._quiet(i) if isinstance(i, str) else i for i in items]

    def _quiet(self, text: str) -> str:
        """The text without the shell's own tty complaints (see ``_TTY_NOISE_RE``)."""
        if self._eat_newline and text.startswith("\n"):
            text = text[1:]
        self._eat_newline = False
        if "tcsetattr" not in text:
            return text
        matches = list(_TTY_NOISE_RE.finditer(text))
        last = matches[-1] if matches else None
        # a complaint cut at the end of this text: its newline starts the next one
        self._eat_newline = last is not None and last.end() == len(text) and text[-1] != "\n"
        return _TTY_NOISE_RE.sub("", text)

    def drain(self) -> str:
        """Return and forget the text held back (when no marker can follow any more)."""
        text = self._buf
        self._buf = ""
        return text
