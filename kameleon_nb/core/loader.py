"""The one place the core reads files: recipes, their extend chain and step lookups.

Paths are made absolute but never canonicalised: a symlinked recipe resolves its
``extend``, its steps directories and its name relative to the *link*, as upstream
does (recipe collections rely on it for architecture overlays).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from kameleon_nb.core.gcpause import full_collections_paused
from kameleon_nb.core.limits import (
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    Budget,
    check_yaml_nodes,
    shown_path,
    too_many_nodes,
    utf8_path,
)
from kameleon_nb.core.model import SECTIONS
from kameleon_nb.core.psych_load import PsychLoader, ScalarTooLargeError, TooManyNodesError
from kameleon_nb.core.variables import VARIABLE_RE, overload, ruby_str
from kameleon_nb.errors import (
    ExpansionLimitError,
    MissingFileError,
    RecipeError,
    UnreadableFileError,
    YamlError,
)

__all__ = [
    "LoadedRecipe",
    "SectionItem",
    "StepsDirs",
    "description_of",
    "load_recipe",
    "read_bytes",
    "read_text",
    "read_yaml",
]


_BASE = "@base"


def parse_yaml(text: str, *, source: str, budget: Budget | None = None) -> object:
    """Parse YAML text as upstream does; a syntax error is one line in Psych's words.

    The message reads ``(<file>): <problem> <context> at line L column C``, as
    upstream prints it (``<unknown>`` for text that is not a file).

    Its nodes are counted in ``budget`` (the recipe's), and refused past
    :data:`~kameleon_nb.core.limits.MAX_NODES_READ` as they are read.
    """
    spent = Budget() if budget is None else budget
    loader = PsychLoader(text, node_limit=spent.nodes_left())
    try:
        with full_collections_paused():
            data = loader.get_single_data()
    except TooManyNodesError as err:
        raise too_many_nodes(source) from err
    except ScalarTooLargeError as err:
        raise ExpansionLimitError(
            f"{source}: {err} is larger than {MAX_TEXT_CHARS // 2**20} MiB; kameleon_nb "
            "refuses it, and real recipes stay far below it (README, 'Limits')"
        ) from err
    except yaml.reader.ReaderError as err:  # libyaml reports these at the start
        where = f"{source}:1:1"
        raise YamlError(
            f"({source}): {err.reason} at line 1 column 1", where=where, problem=err.reason
        ) from err
    except yaml.MarkedYAMLError as err:
        mark = err.context_mark or err.problem_mark  # Psych reports the context's mark
        problem = " ".join(p for p in (err.problem, err.context) if p) or "invalid YAML"
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        spot = err.problem_mark or mark  # where an editor should go
        where = f"{source}:{spot.line + 1}:{spot.column + 1}" if spot else source
        raise YamlError(f"({source}): {problem}{at}", where=where, problem=problem) from err
    except yaml.YAMLError as err:
        raise YamlError(f"({source}): {err}", where=source, problem=str(err)) from err
    except RecursionError as err:
        raise YamlError(
            f"({source}): nested too deeply", where=source, problem="nested too deeply"
        ) from err
    finally:
        loader.dispose()
        spent.nodes_read += loader.nodes
    if "*" in text:  # an alias: shared nodes may hide an exponential document
        check_yaml_nodes(data, source)
    return data


_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: str, mode: int) -> UnreadableFileError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return UnreadableFileError(
        f"{shown_path(path)}: {kind}, not a regular file; a recipe, step, aliases, env or "
        "checkpoint file must be a regular file (check the link or the path)"
    )


def read_bytes(path: str) -> bytes:
    """Read one file of a recipe, refusing what cannot be one before opening it.

    Devices, pipes and sockets are refused from their type, so a named pipe never
    blocks and ``/dev/zero`` is never read; a file larger than
    :data:`~kameleon_nb.core.limits.MAX_FILE_BYTES` is refused from its size.

    Raises:
        MissingFileError: the file does not exist, or is a directory.
        UnreadableFileError: not a regular file, too large, unreadable, or a path
            that is not UTF-8.
    """
    utf8_path(path, "the file name")
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise MissingFileError(f"No such file or directory @ rb_sysopen - {path}") from err
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read it ({err.strerror})") from err
    if stat.S_ISDIR(info.st_mode):
        raise MissingFileError(f"{path}: is a directory, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    if info.st_size > MAX_FILE_BYTES:
        raise _too_large(path, info.st_size)
    try:  # non-blocking: a file replaced by a pipe since the stat cannot block us
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read it ({err.strerror})") from err
    with os.fdopen(descriptor, "rb") as stream:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        raw = stream.read(MAX_FILE_BYTES + 1)  # a file that grows is still bounded
    if len(raw) > MAX_FILE_BYTES:
        raise _too_large(path, len(raw))
    return raw


def _too_large(path: str, size: int) -> UnreadableFileError:
    return UnreadableFileError(
        f"{path}: too large ({size:,} bytes; kameleon_nb reads recipe files of up to "
        f"{MAX_FILE_BYTES // 2**20} MiB, and real ones are a few KB)"
    )


def read_text(path: str) -> str:
    """Read one file of a recipe as UTF-8 text.

    Raises:
        MissingFileError: the file does not exist (or cannot be read: see
            :func:`read_bytes`).
        YamlError: the file is not UTF-8 text or not valid YAML.
    """
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(
            f"{path}: not a text file (invalid UTF-8 at byte {err.start}); "
            "a recipe must be UTF-8 YAML"
        ) from err
    if "\x00" in text:
        raise YamlError(f"{path}: not a text file (NUL byte); a recipe must be UTF-8 YAML")
    return text


def read_yaml(path: str, budget: Budget | None = None) -> object:
    """Read and parse one YAML file of a recipe (errors as :func:`read_text`'s).

    Its nodes are counted in ``budget``, the recipe's (see :func:`parse_yaml`).
    """
    return parse_yaml(read_text(path), source=path, budget=budget)


def description_of(text: str) -> str:
    r"""The ``# DESCRIPTION:`` text of a recipe, or ``""``.

    >>> description_of("# DESCRIPTION: a  small\n# recipe\n#\n---\n")
    'a small recipe'
    """
    start = text.find("# DESCRIPTION: ")
    if start < 0:
        return ""
    start += len("# DESCRIPTION: ")
    end = text.find("\n#\n", start)
    body = text[start:] if end < 0 else text[start:end]
    body = body.replace("\n#", "")
    return re.sub(r"  +", " ", body)


def _with_yaml_ext(path: str) -> str:
    return path if path.endswith(".yaml") else path + ".yaml"


def _absolute(path: str, base_dir: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


@dataclass(frozen=True, slots=True)
class SectionItem:
    """A macrostep entry of a section, with the recipe file that wrote it."""

    item: object
    origin: str
    #: its position in its file's section list (``kameleon lint`` points at it)
    index: int = -1


@dataclass(slots=True)
class LoadedRecipe:
    """A recipe file merged with its ``extend`` chain, not yet resolved.

    Attributes:
        path: the path as given.
        abspath: absolute path (links kept).
        name: the file name without ``.yaml``.
        chain: the recipe then its parents, grandparents... (absolute paths).
        global_vars: the merged globals (child over parent, with overloads).
        aliases: the ``aliases`` value in force (mapping, file name or list).
        checkpoint: the ``checkpoint`` value in force.
        env: the ``env`` value in force.
        aliases_origin: the recipe file whose ``aliases`` is in force.
        sections: each section's macrostep entries, ``@base`` expanded.
        include_files: files merged through ``global.include``.
        description: the recipe file's ``# DESCRIPTION:`` text.
        unbraced: ``$$name`` references without braces met while merging (warned).
        nodes_read: the YAML nodes of the files read so far (the recipe, its parents,
            their includes), which count in the recipe's budget
            (:data:`~kameleon_nb.core.limits.MAX_NODES_READ`).
        edits: microsteps defined outside the files (notebook cells), by
            ``(section, macrostep)`` then microstep name: each body (commands, maybe
            an ``on_checkpoint`` item) replaces the microstep of that name, or is
            added at the end of the macrostep, which is created if the section has
            none of that name. The files themselves are never changed.
    """

    path: str
    abspath: str
    name: str
    chain: list[str]
    global_vars: dict[str, object]
    aliases: object = None
    checkpoint: object = None
    env: object = None
    aliases_origin: str = ""
    sections: dict[str, list[SectionItem]] = field(default_factory=dict)
    include_files: list[str] = field(default_factory=list)
    description: str = ""
    edits: dict[tuple[str, str], dict[str, list[object]]] = field(default_factory=dict)
    unbraced: list[str] = field(default_factory=list)
    nodes_read: int = 0

    @classmethod
    def empty(cls, path: str, name: str) -> LoadedRecipe:
        """A recipe with no file behind it yet (a notebook started from scratch)."""
        return cls(path=path, abspath=path, name=name, chain=[path], global_vars={})

    def set_microstep(self, section: str, macrostep: str, name: str, body: list[object]) -> None:
        """Define (or redefine) one microstep, as a ``%%microstep`` cell does."""
        if section not in SECTIONS:
            raise RecipeError(f"Unknown section '{section}': choose one of {', '.join(SECTIONS)}")
        self.edits.setdefault((section, macrostep), {})[name] = list(body)


def _as_mapping(data: object, path: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise RecipeError(f"Invalid yaml: {path} must be a mapping of keys (extend, global, ...)")
    return {str(k): v for k, v in data.items()}


def _global_of(data: Mapping[str, object], path: str) -> dict[str, object]:
    value = data.get("global")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecipeError(f"{path}: 'global' must be a mapping of variables")
    return {str(k): v for k, v in value.items()}


def _merge_globals(
    child: Mapping[str, object], parent: Mapping[str, object], unbraced: list[str]
) -> dict[str, object]:
    """Child globals over parent globals, with the overload rule."""
    merged = dict(parent)
    for key, value in child.items():
        if isinstance(value, str) and key in parent:
            merged[key] = overload(value, key, parent[key], unbraced.append)
        else:
            merged[key] = value
    return merged


def _extend_target(
    value: object,
    recipe: str,
    known: Mapping[str, object],
    fallback_dirs: Iterable[str],
    *,
    top: bool,
    shown_recipe: str,
) -> tuple[str, str]:
    """The parent recipe a recipe extends: its path, and the path upstream's errors show.

    The path errors show is joined, not normalised. The top recipe's value gets its
    ``.yaml`` before its variable is replaced, as upstream does (``extend: $${backend}``
    with ``backend: x.yaml`` means ``x.yaml.yaml``).
    """
    if not isinstance(value, str) or not value:
        raise RecipeError(f"{recipe}: 'extend' must be a path to a recipe")
    if top:
        value = _with_yaml_ext(value)
    match = VARIABLE_RE.search(value)
    if match is not None:  # upstream replaces only the first reference, non-strictly
        name = match.group(1) or match.group(2)
        value = value[: match.start()] + ruby_str(known.get(name, "")) + value[match.end() :]
    value = _with_yaml_ext(value)
    shown = os.path.join(os.path.dirname(shown_recipe), value)
    target = _absolute(value, os.path.dirname(recipe))
    if _missing(target) and not os.path.isabs(value):
        for directory in fallback_dirs:  # kameleon_nb's own backends, e.g. backends/chroot
            candidate = _absolute(value, directory)
            if os.path.exists(candidate):
                return candidate, candidate
    return target, shown


def _missing(path: str) -> bool:
    """Whether nothing is at ``path`` (a dangling link included); a link loop is there."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return True
    except OSError:  # ELOOP, EACCES...: read_bytes names the file and the reason
        return False
    return False


def _splice_base(child: list[SectionItem], parent: list[SectionItem] | None) -> list[SectionItem]:
    for index, entry in enumerate(child):
        if entry.item in (_BASE, [_BASE]):
            return child[:index] + list(parent or []) + child[index + 1 :]
    return child


def _section_items(data: Mapping[str, object], section: str, origin: str) -> list[SectionItem]:
    value = data.get(section)
    if not isinstance(value, list):
        return []
    items: list[SectionItem] = []
    for index, entry in enumerate(value):
        if isinstance(entry, list) and entry == [_BASE]:
            items.append(SectionItem(_BASE, origin, index))
        else:
            items.append(SectionItem(entry, origin, index))
    return items


def _include_globals(
    value: object, recipe: str, steps_dirs: StepsDirs, files: list[str], budget: Budget
) -> dict[str, object]:
    """The globals of ``include`` files (names prefixed with ``-`` are optional)."""
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, list):
        names = [v for v in value if isinstance(v, str)]
    else:
        return {}
    merged: dict[str, object] = {}
    for raw in names:
        optional = raw.startswith("-")
        name = _with_yaml_ext(raw[1:] if optional else raw)
        candidates = (
            [name]
            if os.path.isabs(name)
            else [
                os.path.join(os.path.dirname(recipe), name),
                *(os.path.join(d, "global", name) for d in steps_dirs.dirs),
            ]
        )
        found = _first_regular(candidates, normalise=False)
        if found is None:
            if optional:
                continue
            raise RecipeError(
                f"File '{name}' not found here {[os.path.dirname(c) for c in candidates]} "
                f"(global include of {recipe})"
            )
        data = read_yaml(found, budget)
        if not isinstance(data, dict):
            if optional:
                continue
            raise RecipeError(f"Global should be a Hash. (check {found})")
        merged.update({str(k): v for k, v in data.items()})
        files.append(os.path.normpath(found))
    return merged


def _expanded_globals(
    value: object, recipe: str, steps_dirs: StepsDirs, files: list[str], budget: Budget
) -> dict[str, object]:
    """A recipe's globals with its ``include`` files merged in place of the key.

    Upstream does this only while it merges an ``extend`` chain, once for each
    time it reads the recipe's globals (files found are listed each time).
    """
    if not isinstance(value, dict):
        return {}
    expanded: dict[str, object] = {}
    for key, item in value.items():
        if key == "include":
            expanded.update(_include_globals(item, recipe, steps_dirs, files, budget))
        else:
            expanded[str(key)] = item
    return expanded


def load_recipe(
    path: str,
    *,
    cli_globals: Mapping[str, str] | None = None,
    cwd: str,
    fallback_dirs: Iterable[str] = (),
    text: str | None = None,
) -> LoadedRecipe:
    """Read a recipe and merge its ``extend`` chain (upstream's non-strict load).

    Args:
        path: the recipe path as given; ``.yaml`` is appended when the file does
            not exist without it.
        cli_globals: ``-g`` globals, used to pick ``extend`` targets.
        cwd: the workspace root (steps directories are searched up to it).
        fallback_dirs: where a relative ``extend`` that does not exist next to the
            recipe is looked for next (kameleon_nb's shipped backend recipes).
        text: the recipe's text, when it does not come from ``path`` (a notebook's
            ``%%kameleon recipe`` cell); ``path`` is then where the recipe would
            live, and what its relative paths and steps directories are taken from.

    Returns:
        The merged recipe.

    Raises:
        RecipeError: the recipe is invalid or its ``extend`` chain is cyclic.
        MissingFileError: the recipe or a parent does not exist.
        YamlError: a file is not valid YAML.
    """
    given = path
    abspath = _absolute(path, cwd)
    if (text is not None or not os.path.exists(abspath)) and not abspath.endswith(".yaml"):
        abspath += ".yaml"
    name = os.path.basename(abspath)
    name = name[: -len(".yaml")] if name.endswith(".yaml") else name
    budget = Budget()  # the nodes of the files read
    if text is None:
        text = read_text(abspath)
        data = _as_mapping(parse_yaml(text, source=abspath, budget=budget), abspath)
    else:  # a notebook's recipe cell: empty means no keys yet
        data = _as_mapping(parse_yaml(text, source=abspath, budget=budget) or {}, abspath)
    cli = dict(cli_globals or {})

    own_globals = _global_of(data, abspath)
    loaded = LoadedRecipe(
        path=given,
        abspath=abspath,
        name=name,
        chain=[abspath],
        global_vars=own_globals,
        aliases=data.get("aliases"),
        checkpoint=data.get("checkpoint"),
        env=data.get("env"),
        aliases_origin=abspath,
        sections={s: _section_items(data, s, abspath) for s in SECTIONS if s in data},
        description=description_of(text),
    )
    current, current_data = abspath, data
    current_shown = abspath  # upstream joins each parent's path to the last, unnormalised
    current_global = data.get("global")  # raw: an ``include`` key is still there
    dirs = StepsDirs.for_chain(loaded.chain, cwd)  # grows with the chain
    while "extend" in current_data:
        own = _expanded_globals(current_global, current, dirs, loaded.include_files, budget)
        known = {**own, **cli}
        parent, shown = _extend_target(
            current_data["extend"],
            current,
            known,
            fallback_dirs,
            top=current == abspath,
            shown_recipe=current_shown,
        )
        if parent in loaded.chain:
            cycle = " -> ".join([*loaded.chain[loaded.chain.index(parent) :], parent])
            raise RecipeError(f"Cyclic 'extend' in {current}: {cycle}; remove one of the links")
        utf8_path(parent, f"the parent recipe (extended by {current})")
        if _missing(parent):  # a link loop or a device is read_text's to refuse
            raise MissingFileError(
                f"No such file or directory @ rb_sysopen - {shown} (extended by {current})"
            )
        # upstream reads (and names in its errors) the parent's path as joined
        parent_data = _as_mapping(
            parse_yaml(read_text(parent), source=shown, budget=budget), parent
        )
        loaded.chain.append(parent)
        dirs = dirs.and_recipe(parent, cwd)
        if "global" in current_data:
            parent_globals = _expanded_globals(
                parent_data.get("global"), parent, dirs, loaded.include_files, budget
            )
            child_globals = _expanded_globals(
                current_global, current, dirs, loaded.include_files, budget
            )
            current_global = _merge_globals(child_globals, parent_globals, loaded.unbraced)
        else:
            current_global = parent_data.get("global")
        for key in ("aliases", "checkpoint", "env"):
            if getattr(loaded, key) is None and parent_data.get(key) is not None:
                setattr(loaded, key, parent_data.get(key))
                if key == "aliases":
                    loaded.aliases_origin = parent
        for section, items in loaded.sections.items():
            parent_items = (
                _section_items(parent_data, section, parent) if section in parent_data else None
            )
            loaded.sections[section] = _splice_base(items, parent_items)
        current, current_data, current_shown = parent, dict(parent_data), shown
        if current_global is not None:
            current_data["global"] = current_global
    loaded.global_vars = _global_of({"global": current_global}, abspath)
    loaded.nodes_read = budget.nodes_read
    for section, items in loaded.sections.items():
        loaded.sections[section] = [i for i in items if i.item != _BASE]
    return loaded


class StepsDirs:
    """The ordered steps directories of a recipe chain, and the lookups over them."""

    def __init__(self, dirs: Iterable[str]) -> None:
        self.dirs: tuple[str, ...] = tuple(dirs)

    @classmethod
    def for_chain(cls, chain: Iterable[str], cwd: str) -> StepsDirs:
        """Steps dirs of each recipe file, child first (semantics §2.5)."""
        dirs = cls(())
        for recipe in chain:
            dirs = dirs.and_recipe(recipe, cwd)
        return dirs

    def and_recipe(self, recipe: str, cwd: str) -> StepsDirs:
        """These dirs, then those of one more recipe file of the chain (its parent).

        The loader adds each parent as it reads it: computing the dirs of the whole
        chain again at each ``extend`` made a chain of 400 files take seconds.
        """
        root = os.path.normpath(cwd)
        found = list(self.dirs)
        directory = os.path.dirname(recipe)
        bases = [directory]
        if directory == root or directory.startswith(root.rstrip("/") + "/"):
            bases = []
            current = directory
            while True:
                bases.append(current)
                if current == root or current == os.path.dirname(current):
                    break
                current = os.path.dirname(current)
        for base in bases:
            for sub in ("steps", ".steps"):
                candidate = os.path.join(base, sub)
                if candidate not in found and os.path.isdir(candidate):
                    found.append(candidate)
        return StepsDirs(found)

    def with_fallback(self, extra: Iterable[str]) -> StepsDirs:
        """These dirs, then ``extra`` (kameleon_nb's built-in steps) last."""
        return StepsDirs([*self.dirs, *(d for d in extra if d not in self.dirs)])

    def find_step(self, section: str, name: str, include_steps: list[str]) -> str | None:
        """The step file of macrostep ``name`` in ``section`` (first match wins).

        Raises:
            UnreadableFileError: no candidate is a regular file, but one exists (a
                link to a device, a pipe, a directory named ``<name>.yaml``).
        """
        filename = name + ".yaml"
        candidates = (
            os.path.join(candidate_dir, filename)
            for directory in self.dirs
            for include in [*include_steps, ""]
            for candidate_dir in (
                os.path.join(directory, section, include),
                os.path.join(directory, include),
            )
        )
        return _first_regular(candidates)

    def find(self, kind: str, filename: str) -> str | None:
        """A file under ``<steps dir>/<kind>/``, first steps dir first.

        Raises:
            UnreadableFileError: as :meth:`find_step`.
        """
        return _first_regular(os.path.join(d, kind, filename) for d in self.dirs)

    def find_data(self, tail: str) -> str | None:
        """A data file or directory under ``<steps dir>/data/``, child first."""
        relative = tail.lstrip("/")
        for directory in self.dirs:
            candidate = os.path.normpath(os.path.join(directory, "data", relative))
            if os.path.exists(candidate):
                return candidate
        return None


def _first_regular(candidates: Iterable[str], *, normalise: bool = True) -> str | None:
    """The first candidate that is a regular file (links followed), normalised or not.

    A candidate that exists but is something else is skipped as upstream skips it;
    when no regular file follows, it is reported rather than called missing.
    """
    odd: tuple[str, int] | None = None
    for candidate in candidates:
        try:
            mode = os.stat(candidate).st_mode
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(mode):
            return os.path.normpath(candidate) if normalise else candidate
        if odd is None:
            odd = (os.path.normpath(candidate), mode)
    if odd is None:
        return None
    path, mode = odd
    if stat.S_ISDIR(mode):
        raise UnreadableFileError(
            f"{shown_path(path)}: a directory, not a regular file; a step, aliases, env or "
            "checkpoint file must be a regular YAML file"
        )
    raise _not_regular(path, mode)
