"""kameleon_nb: the Kameleon appliance builder in Python.

The ``kameleon`` command is :func:`kameleon_nb.frontends.cli.main`; the engine's
façade is :class:`kameleon_nb.engine.builder.Builder`.
"""

from __future__ import annotations

from kameleon_nb._version import VERSION as __version__

__all__ = ["__version__"]
