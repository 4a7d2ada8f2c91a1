"""Which of kameleon_nb's own recipe parts need root, checked before anything runs.

The chroot backend mounts ``/proc``, ``/sys`` and ``/dev`` in the tree and chroots into
it; the overlay and btrfs mechanisms mount file systems. Without root such a recipe
used to get through its first steps and fail later with ``unshare failed: Operation
not permitted``; now it is refused at once, with the way out (the rootless variant).
"""

from __future__ import annotations

import os
from pathlib import Path

from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.errors import BuildError

__all__ = ["check_privileges", "root_only_parts"]

_DATA = Path(__file__).resolve().parent.parent / "data"

#: kameleon_nb's parts that need root, and why
_ROOT_ONLY = {
    _DATA / "recipes" / "backends" / "chroot.yaml": "its in context is a chroot (backends/chroot)",
    _DATA / "steps" / "checkpoints" / "overlay.yaml": "its checkpoint mechanism overlay.yaml "
    "mounts an overlay file system",
    _DATA / "steps" / "checkpoints" / "btrfs.yaml": "its checkpoint mechanism btrfs.yaml mounts "
    "a btrfs image",
}


def root_only_parts(recipe: ResolvedRecipe) -> list[str]:
    """Why the recipe needs root (empty: it does not, as far as kameleon_nb's parts go)."""
    used = {Path(p).resolve() for p in (*recipe.files.parents, *recipe.files.steps)}
    return [why for path, why in _ROOT_ONLY.items() if path in used]


def check_privileges(recipe: ResolvedRecipe, *, checkpointing: bool) -> None:
    """Refuse, without root, a recipe whose kameleon_nb parts need root.

    The mechanism counts only when checkpoints are on (``-c``, a notebook session
    with checkpointing): without them its hooks never run.

    Raises:
        BuildError: not root, and the recipe needs it.
    """
    if os.geteuid() == 0:
        return
    reasons = [
        why for why in root_only_parts(recipe) if checkpointing or "checkpoint mechanism" not in why
    ]
    if reasons:
        raise BuildError(
            f"The recipe {recipe.path} needs root: {'; '.join(reasons)}. Run it as root, or "
            "build a rootless one: examples/busybox-rootless/busybox-rootless.yaml (proot and "
            "rsync checkpoints) is the same appliance without root"
        )
