"""Context names and the settings of a context shell, as a recipe defines them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ContextName", "ContextSpec"]


class ContextName(enum.Enum):
    """The three Kameleon contexts."""

    LOCAL = "local"
    OUT = "out"
    IN = "in"


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """How to start one context shell.

    Attributes:
        name: which context this is.
        cmd: the shell command from the recipe (``bash``, ``chroot $ROOT bash``,
            ``ssh host -t /bin/bash``...). It always ends in a bash invocation, to
            which options can be appended, as upstream appends ``--rcfile``.
        start_dir: absolute directory the context process is started in on the host
            (the build directory, ``kameleon_cwd``).
        workdir: directory the context ``cd``s into before each command, if any.
        exec_prefix: text put in front of every command, if any.
        interactive_cmd: the command for an interactive shell (breakpoint menu).
        proxy: ``host:port`` of an HTTP proxy to export, or empty.
        env_script: shell text appended to the context's start-up (recipe ``env``
            files), or empty.
        launcher: argv the context process is started through, e.g. ``nsenter`` into
            the build's private mount namespace; empty to start it directly.
        ca_file: a PEM file of the certificate authority the context's TLS clients
            trust (the persistent cache's, which re-signs HTTPS), or empty.
    """

    name: ContextName
    cmd: str
    start_dir: str
    workdir: str = ""
    exec_prefix: str = ""
    interactive_cmd: str = ""
    proxy: str = ""
    env_script: str = ""
    launcher: tuple[str, ...] = ()
    ca_file: str = ""
