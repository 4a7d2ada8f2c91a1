"""Render DOT text with GraphViz's ``dot`` (``kameleon dag``, ``%kameleon dag``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kameleon_nb.errors import KameleonError

__all__ = ["DOT_MISSING", "render", "write_graph"]

DOT_MISSING = (
    "GraphViz's 'dot' is not installed or not in PATH: install GraphViz "
    "(Debian: apt-get install graphviz)"
)
_TIMEOUT = 120


def render(text: str, output_format: str, *, hint: str = "") -> bytes:
    """``dot -T<format>`` of ``text``: the rendered bytes.

    ``hint`` ends the error when ``dot`` is missing (what else the user can do).
    """
    dot = shutil.which("dot")
    if dot is None:
        raise KameleonError(DOT_MISSING + hint)
    try:
        done = subprocess.run(
            [dot, "-q", f"-T{output_format}"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
            timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired as err:
        raise KameleonError(f"dot did not render the graph in {_TIMEOUT} s") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise KameleonError(
            f"dot -T{output_format} failed (status {done.returncode}): "
            f"{message[0] if message else 'no message'}"
        )
    return done.stdout


def write_graph(text: str, output_format: str, file: Path) -> None:
    """Write the graph to ``file``: the DOT text itself for ``none``, else dot's rendering."""
    data = (
        text.encode("utf-8")
        if output_format == "none"
        else render(text, output_format, hint=", or use --format none to write the DOT text")
    )
    try:
        file.write_bytes(data)
    except OSError as err:
        raise KameleonError(
            f"cannot write the graph to {file}: {err.strerror}; give --file a writable path"
        ) from err
