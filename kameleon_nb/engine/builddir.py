"""Files a build keeps in its build directory (``<build path>/<recipe name>/``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import ResolvedRecipe, StepId

__all__ = [
    "BUILD_RECIPE",
    "CheckpointRecord",
    "CheckpointRecords",
    "stored_uuid",
    "write_build_recipe",
]

#: The file every build leaves in its build dir (uuid, resolved steps and ids).
BUILD_RECIPE = ".build_recipe"

#: kameleon_nb's own files inside a build directory.
STATE_DIR = ".kameleon_nb"


def stored_uuid(kameleon_cwd: str) -> tuple[str, str] | None:
    """The ``(kameleon_uuid, kameleon_short_uuid)`` of a previous build, if any."""
    path = os.path.join(kameleon_cwd, BUILD_RECIPE)
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return None
    globals_ = data.get("global") if isinstance(data, dict) else None
    if not isinstance(globals_, dict):
        return None
    full, short = globals_.get("kameleon_uuid"), globals_.get("kameleon_short_uuid")
    if isinstance(full, str) and isinstance(short, str):
        return full, short
    return None


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
    target = os.path.join(recipe.kameleon_cwd, BUILD_RECIPE)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    _write_atomically(target, yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True))
    return target


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """What kameleon_nb wrote beside one checkpoint when it was created."""

    slug: str
    created: float  # seconds since the epoch
    variables: dict[ContextName, str]


class CheckpointRecords:
    """What kameleon_nb keeps beside each checkpoint: its step, its time, the variables.

    A record is written (atomically) just before the mechanism's ``create`` runs, so
    restoring a checkpoint can restart the contexts with the variables they had, and
    the checkpoint table can name the step of a checkpoint the recipe no longer has.
    """

    def __init__(self, kameleon_cwd: str) -> None:
        self.directory = os.path.join(kameleon_cwd, STATE_DIR, "checkpoints")

    def _path(self, step_id: str) -> str:
        return os.path.join(self.directory, f"{step_id}.vars.json")

    def save(self, step_id: StepId, variables: Mapping[ContextName, str], slug: str = "") -> None:
        """Record the variables of the started contexts at checkpoint ``step_id``."""
        data = {
            "slug": slug,
            "created": time.time(),
            "contexts": {name.value: dump for name, dump in variables.items()},
        }
        _write_atomically(self._path(step_id), json.dumps(data))

    def get(self, step_id: StepId) -> CheckpointRecord | None:
        """The record of ``step_id``, if it has a readable one."""
        try:
            with open(self._path(step_id), encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        contexts = data.get("contexts")
        names = {c.value: c for c in ContextName}
        variables = {
            names[k]: v
            for k, v in (contexts.items() if isinstance(contexts, dict) else ())
            if k in names and isinstance(v, str)
        }
        slug = data.get("slug")
        created = data.get("created")
        return CheckpointRecord(
            slug=slug if isinstance(slug, str) else "",
            created=float(created) if isinstance(created, int | float) else 0.0,
            variables=variables,
        )

    def load(self, step_id: StepId) -> dict[ContextName, str]:
        """The recorded variables of ``step_id`` (none if it has no record)."""
        record = self.get(step_id)
        return record.variables if record is not None else {}

    def remove(self, step_id: StepId) -> None:
        """Forget the record of one checkpoint."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(step_id))

    def clear(self) -> None:
        """Forget every record."""
        shutil.rmtree(self.directory, ignore_errors=True)
