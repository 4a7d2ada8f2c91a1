"""kameleon_nb: the Kameleon appliance builder in Python.

The ``kameleon`` command is :func:`kameleon_nb.frontends.cli.main`; the engine's
façade is :class:`kameleon_nb.engine.builder.Builder`. In IPython or Jupyter,
``%load_ext kameleon_nb`` adds the ``%kameleon`` and ``%%microstep`` magics.
"""

from __future__ import annotations

from typing import Any

from kameleon_nb._version import VERSION as __version__

__all__ = ["__version__", "current_session", "load_ipython_extension", "unload_ipython_extension"]


def current_session() -> Any:
    """The recipe session of the running IPython (``%kameleon load``...), or None."""
    from kameleon_nb.frontends.magics import current_session as find  # noqa: PLC0415

    return find()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kameleon_nb``: register the magics (IPython is imported only now)."""
    from kameleon_nb.frontends.magics import KameleonMagics  # noqa: PLC0415

    magics = KameleonMagics(ipython)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kameleon_nb``: close every context shell, remove the magics."""
    from kameleon_nb.frontends.magics import KameleonMagics  # noqa: PLC0415

    manager = ipython.magics_manager
    for instance in list(manager.registry.values()):
        if isinstance(instance, KameleonMagics):
            instance.close()
            ipython.events.unregister("pre_run_cell", instance.pre_run_cell)
    manager.registry.pop("KameleonMagics", None)
    for kind in ("line", "cell"):
        for name in ("kameleon", "microstep"):
            manager.magics[kind].pop(name, None)
