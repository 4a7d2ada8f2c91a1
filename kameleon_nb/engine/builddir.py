"""Files a build keeps in its build directory (``<build path>/<recipe name>/``)."""

from __future__ import annotations

import os
import tempfile

import yaml

from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.engine.recipes import BUILD_RECIPE

__all__ = ["write_build_recipe"]


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def write_build_recipe(recipe: ResolvedRecipe) -> str:
    """Write ``.build_recipe`` (atomically): files, globals with the uuid, steps and ids."""
    data = {
        "name": recipe.name,
        "path": recipe.abspath,
        "base_recipes_files": list(recipe.files.parents),
        "step_files": list(recipe.files.steps),
        "env_files": list(recipe.files.env),
        "data_files": list(recipe.files.data),
        "global": _plain(dict(recipe.global_vars)),
        "checkpoint": {hook: [c.text for c in cmds] for hook, cmds in recipe.checkpoint.items()},
        "steps": [
            {
                "slug": m.slug,
                "id": m.step_id,
                "on_checkpoint": m.on_checkpoint.value,
                "commands": [c.text for c in m.commands],
            }
            for m in recipe.microsteps()
        ],
    }
    os.makedirs(recipe.kameleon_cwd, exist_ok=True)
    target = os.path.join(recipe.kameleon_cwd, BUILD_RECIPE)
    fd, temporary = tempfile.mkstemp(dir=recipe.kameleon_cwd, prefix=".build_recipe.")
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        yaml.safe_dump(data, stream, sort_keys=False, allow_unicode=True)
    os.replace(temporary, target)
    return target
