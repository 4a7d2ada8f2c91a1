"""kameleon_nb: the Kameleon appliance builder in Python, with Jupyter magics.

``%load_ext kameleon_nb`` registers the ``%kameleon`` and ``%%microstep`` magics.
"""

from __future__ import annotations

from typing import Any

from kameleon_nb._version import VERSION as __version__

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (called by ``%load_ext kameleon_nb``)."""
    from kameleon_nb.frontends.magics import load  # noqa: PLC0415 - Jupyter is optional

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Close every context shell and unregister (``%unload_ext kameleon_nb``)."""
    from kameleon_nb.frontends.magics import unload  # noqa: PLC0415

    unload(ipython)
