"""Copy a file and say what happened, as Kameleon 2.11.0's file actions do.

Each copy reports one status line, the status right-aligned in 12 columns then the
destination (relative to the workspace when it is inside it):

* ``create``: the file did not exist;
* ``identical``: it already had these bytes (left alone);
* ``conflict``, then an empty line and ``force``: it had other bytes and is overwritten,
  which is what upstream does when nobody is there to answer its prompt.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["Report", "copy_file", "status_line"]

#: receives each status line (the CLI prints it)
Report = Callable[[str], None]


def status_line(status: str, destination: Path, workspace: Path) -> str:
    """``      create  path`` (the path relative to the workspace when inside it).

    >>> status_line("create", Path("/w/a/b.yaml"), Path("/w"))
    '      create  a/b.yaml'
    """
    text = str(destination)
    root = str(workspace)
    if text.startswith(root) and text[len(root) : len(root) + 1] in ("/", ""):
        text = text[len(root) + 1 :]
    return f"{status.rjust(12)}  {text}"


def copy_file(
    source: Path, destination: Path, *, workspace: Path, keep_mode: bool, report: Report
) -> None:
    """Copy ``source`` to ``destination`` (parents created) and report its status.

    ``keep_mode`` gives the copy the source's permission bits (``new`` and ``template
    import`` do; ``export`` does not).
    """
    destination = Path(os.path.join(workspace, destination))
    data = source.read_bytes()
    if destination.exists():
        if destination.read_bytes() == data:
            report(status_line("identical", destination, workspace))
        else:
            report(status_line("conflict", destination, workspace))
            report("")
            report(status_line("force", destination, workspace))
            destination.write_bytes(data)
    else:
        report(status_line("create", destination, workspace))
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
    if keep_mode:
        destination.chmod(source.stat().st_mode & 0o7777)
