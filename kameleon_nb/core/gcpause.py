"""Full garbage collections paused while a recipe's data is built.

Reading and resolving a recipe create objects by the hundred thousand (YAML nodes,
command texts, microsteps) and keep most of them. CPython walks *every* tracked object
in a full collection, which it starts each time the objects that survived grow by a
quarter: a 100,000-microstep step file spent two thirds of its load time in the
collector, and the whole dry run half of its time. Nothing built there needs a full
collection: young collections still run, so short-lived reference cycles (a YAML
loader's) are still freed as they go, and the rest is collected once the pause ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["full_collections_paused"]

#: a third threshold that young collections never reach
_NEVER = 1 << 30

_lock = threading.Lock()
_holders = 0
_saved_threshold: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def full_collections_paused() -> Iterator[None]:
    """Run the block without full (oldest-generation) collections.

    Nested and concurrent uses are counted: the thresholds come back when the last
    one ends.
    """
    global _holders, _saved_threshold  # noqa: PLW0603 - the collector is process-wide
    with _lock:
        if _holders == 0:
            _saved_threshold = gc.get_threshold()
            gc.set_threshold(_saved_threshold[0], _saved_threshold[1], _NEVER)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.set_threshold(*_saved_threshold)
