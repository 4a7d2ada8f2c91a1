"""Files a build keeps in its build directory (``<build path>/<recipe name>/``)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import ResolvedRecipe, StepId
from kameleon_nb.errors import BuildError

__all__ = [
    "BUILD_RECIPE",
    "CheckpointRecord",
    "CheckpointRecords",
    "restore_state_files",
    "state_files",
    "stored_uuid",
    "write_build_recipe",
]

#: The file every build leaves in its build dir (uuid, resolved steps and ids).
BUILD_RECIPE = ".build_recipe"

#: kameleon_nb's own files inside a build directory.
STATE_DIR = ".kameleon_nb"

#: Which build last used each checkpoint (beside the records).
USAGE_FILE = "usage.json"

#: The largest marker file a checkpoint records (see :func:`state_files`).
STATE_FILE_LIMIT = 65536


def _is_state_file(entry: os.DirEntry[str]) -> bool:
    if not entry.name.startswith(".") or entry.name.startswith(BUILD_RECIPE):
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size <= STATE_FILE_LIMIT


def state_files(kameleon_cwd: str) -> dict[str, bytes]:
    """The marker files steps left in the build directory, by name.

    Steps of the local and out contexts keep state beside the tree they build, in
    their ``$KAMELEON_WORKDIR`` (the build directory): the collection's chroot steps,
    for instance, create ``.KAMELEON_SETUP_ROOTFS_SYSTEM`` when they mount ``/proc``
    and the like in the tree, and unmount only if it exists. These are hidden regular
    files of at most 64 KiB directly in the build directory (kameleon_nb's own
    excepted); a checkpoint records them with the contexts' variables.
    """
    found: dict[str, bytes] = {}
    with contextlib.suppress(OSError), os.scandir(kameleon_cwd) as entries:
        for entry in entries:
            if _is_state_file(entry):
                with contextlib.suppress(OSError), open(entry.path, "rb") as stream:
                    found[entry.name] = stream.read(STATE_FILE_LIMIT + 1)
    return found


def restore_state_files(kameleon_cwd: str, files: Mapping[str, bytes]) -> None:
    """Make the build directory's marker files those of ``files`` (see :func:`state_files`)."""
    with contextlib.suppress(OSError), os.scandir(kameleon_cwd) as entries:
        stale = [e.path for e in entries if _is_state_file(e) and e.name not in files]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    for name, content in files.items():
        if "/" in name or not name.startswith(".") or name.startswith(BUILD_RECIPE):
            continue
        path = os.path.join(kameleon_cwd, name)
        with contextlib.suppress(OSError):
            current = None
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as stream:
                current = stream.read(STATE_FILE_LIMIT + 1)
            if current != content:
                with open(path, "wb") as stream:
                    stream.write(content)


def stored_uuid(kameleon_cwd: str) -> tuple[str, str] | None:
    """The ``(kameleon_uuid, kameleon_short_uuid)`` of a previous build, if any."""
    path = os.path.join(kameleon_cwd, BUILD_RECIPE)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError):
        return None
    data: object = None
    # The globals come before the steps, the bulk of the file: read the head alone
    # when it stands on its own, the whole file otherwise.
    head, steps, _ = text.partition("\nsteps:\n")
    if steps:
        with contextlib.suppress(yaml.YAMLError):
            data = yaml.load(head + "\n", Loader=loader)
    if not (isinstance(data, dict) and isinstance(data.get("global"), dict)):
        try:
            data = yaml.load(text, Loader=loader)
        except yaml.YAMLError:
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
    text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)
    with contextlib.suppress(OSError, UnicodeDecodeError), open(target, encoding="utf-8") as old:
        if old.read(len(text) + 1) == text:
            return target  # a rebuild of the same recipe: nothing to write
    _write_atomically(target, text)
    return target


def _write_atomically(path: str, text: str) -> None:
    """Write a state file whole or not at all (it is private: 0600, as mkstemp makes it)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    import tempfile  # noqa: PLC0415 - not on the path of a dry run

    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException as err:  # a full disk, an interrupt: no half-written file stays
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(err, OSError):
            raise BuildError(
                f"cannot write {path}: {err.strerror or err}; free some space (or fix the "
                "permissions) and run the build again"
            ) from err
        raise


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """What kameleon_nb wrote beside one checkpoint when it was created."""

    slug: str
    created: float  # seconds since the epoch
    variables: dict[ContextName, str]
    files: dict[str, bytes] | None = None  # the build dir's marker files (None: not recorded)


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

    def save(
        self,
        step_id: StepId,
        variables: Mapping[ContextName, str],
        slug: str = "",
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Record the variables of the started contexts (and marker files) at ``step_id``."""
        data: dict[str, object] = {
            "slug": slug,
            "created": time.time(),
            "contexts": {name.value: dump for name, dump in variables.items()},
        }
        if files is not None:
            data["files"] = {
                name: base64.b64encode(content).decode("ascii") for name, content in files.items()
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
        raw_files = data.get("files")
        files: dict[str, bytes] | None = None
        if isinstance(raw_files, dict):
            files = {}
            for name, text in raw_files.items():
                with contextlib.suppress(ValueError, TypeError):
                    files[str(name)] = base64.b64decode(text, validate=True)
        return CheckpointRecord(
            slug=slug if isinstance(slug, str) else "",
            created=float(created) if isinstance(created, int | float) else 0.0,
            variables=variables,
            files=files,
        )

    def usage(self) -> tuple[int, dict[StepId, int], StepId | None]:
        """The last recipe version's number, which version used each id, its last id.

        See :mod:`kameleon_nb.core.retention`; ``(0, {}, None)`` when nothing is recorded.
        """
        try:
            with open(os.path.join(self.directory, USAGE_FILE), encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return 0, {}, None
        if not isinstance(data, dict):
            return 0, {}, None
        generation, used, head = data.get("generation"), data.get("used"), data.get("head")
        if not isinstance(generation, int) or not isinstance(used, dict):
            return 0, {}, None
        table = {StepId(k): v for k, v in used.items() if isinstance(k, str) and isinstance(v, int)}
        return generation, table, StepId(head) if isinstance(head, str) else None

    def save_usage(self, generation: int, used: Mapping[StepId, int], head: StepId | None) -> None:
        """Write what :meth:`usage` reads back (``head``: the version's last id)."""
        data = {"generation": generation, "head": head, "used": dict(sorted(used.items()))}
        _write_atomically(os.path.join(self.directory, USAGE_FILE), json.dumps(data))

    def remove(self, step_id: StepId) -> None:
        """Forget the record of one checkpoint."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(step_id))

    def clear(self) -> None:
        """Forget every record."""
        shutil.rmtree(self.directory, ignore_errors=True)
