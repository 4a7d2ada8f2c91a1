"""The strict resolution pipeline (semantics §8.3): from a loaded recipe to what runs.

Order matters for errors and for ids: globals, contexts, the checkpoint mechanism,
then per macrostep alias expansion, step variables and command texts, hook
extraction, removal of empty microsteps, a syntax check, and the id chain.

Every command keeps two texts. ``text`` is upstream's ``string_cmd``, which drops
every ``---`` (an upstream bug) and is what ids hash. The command that *runs* is
built from the same pipeline without that deletion, so ``echo a---b`` runs as
written while its id stays upstream's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kameleon_nb.core import command_texts, messages, psych
from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.core.gcpause import full_collections_paused
from kameleon_nb.core.limits import Budget, shell_safe_path, utf8_path
from kameleon_nb.core.loader import (
    LoadedRecipe,
    SectionItem,
    StepsDirs,
    parse_yaml,
    read_bytes,
    read_yaml,
)
from kameleon_nb.core.model import (
    SECTIONS,
    CheckpointPolicy,
    Command,
    Macrostep,
    Microstep,
    RecipeFiles,
    ResolvedRecipe,
    Section,
    StepId,
)
from kameleon_nb.core.stepid import chain_step_ids, unique_slugs
from kameleon_nb.core.variables import lookup_in, overload, ruby_inspect, ruby_str, substitute
from kameleon_nb.errors import (
    BuildError,
    ExpansionLimitError,
    KameleonError,
    RecipeError,
    YamlError,
)

__all__ = [
    "RecipeLookups",
    "ResolveOptions",
    "builtin_globals",
    "check_loadable",
    "recipe_lookups",
    "resolve_recipe",
    "upstream_text",
]

#: ``delete`` (one checkpoint), ``size`` (print its bytes on disk), ``tree`` (print a
#: directory showing its tree) and ``changes`` (what its step changed) are kameleon_nb's
#: optional additions, used by the notebook's checkpoint table and ``kameleon diff``;
#: upstream ignores them.
_OPTIONAL_HOOKS = ("delete", "size", "tree", "changes")
CHECKPOINT_HOOKS = ("enabled?", "create", "apply", "list", "clear", *_OPTIONAL_HOOKS)
_REQUIRED_HOOKS = ("create", "apply", "list", "clear")
_CONTEXT_DEFAULTS: dict[str, object] = {"cmd": "/bin/bash", "proxy_cache": "127.0.0.1"}
# Upstream's data-dir pattern: the reference and the rest of its line (no word boundary).
_DATA_DIR_RE = re.compile(r"\$\$(?:\{kameleon_data_dir\}|kameleon_data_dir)(.*)")
_DATA_DIR_BARE_RE = re.compile(r"\$\$kameleon_data_dir/(.*)")
_HOOK_RE = re.compile(r"on_(.*)(?:clean|init)")


@dataclass(frozen=True, slots=True)
class ResolveOptions:
    """Inputs of resolution that come from the command line and the build dir.

    Attributes:
        cli_globals: ``-g key:value`` overrides.
        build_path: the build root; the recipe's build dir is ``<build_path>/<name>``.
        checkpointing: value of ``checkpointing_enabled``.
        persistent_cache: value of ``persistent_cache``.
        stored_uuid: ``(kameleon_uuid, kameleon_short_uuid)`` from ``.build_recipe``.
        builtin_steps_dirs: kameleon_nb's own steps dirs, searched after the recipe's.
        require_checkpoint: a recipe without a checkpoint mechanism is a build error
            (``build -c``, checked where upstream checks it: after loading).
        parent_proxy: ``--proxy`` (with ``user:pass@`` from ``--proxy-credentials``):
            the contexts' ``proxy_*`` when there is no cache.
        cache_port: the port of the build's cache proxy (``-C``/``--from-cache``):
            ``proxy_local`` is ``127.0.0.1:PORT``, ``proxy_out``/``proxy_in`` are
            ``<proxy_cache of that context>:PORT``.
        strict_globals: an undefined variable in the globals is an error (upstream's
            ``resolve!``); off for templates and ``export`` (``resolve! :strict => false``).
    """

    cli_globals: Mapping[str, str] = field(default_factory=dict)
    build_path: str = ""
    checkpointing: bool = False
    persistent_cache: bool = False
    stored_uuid: tuple[str, str] | None = None
    builtin_steps_dirs: tuple[str, ...] = ()
    require_checkpoint: bool = False
    parent_proxy: str = ""
    cache_port: int | None = None
    strict_globals: bool = True


# --------------------------------------------------------------------------- texts


@dataclass(slots=True)
class _Texts:
    """A command's text along both tracks: hashed (``---`` removed) and run.

    ``key`` is the command's key as the alias pass read it: upstream keeps it from
    then on, so a variable that breaks the text later breaks only its value.
    """

    hashed: str
    run: str
    key: object = None

    def map(self, function: Callable[[str], str]) -> _Texts:
        hashed = function(self.hashed)
        run = hashed if self.run == self.hashed else function(self.run)
        return _Texts(hashed, run, self.key)


def _plain_command(text: str, aliases: Mapping[str, object]) -> _Texts | None:
    """The alias pass's result for a command it leaves as it is, without running it.

    That is a ``key: value`` text whose key is no alias and whose value is a string:
    the pass would parse it, find no alias, and keep it. Most commands are such (a
    recipe of 100,000 microsteps has 100,000 of them). Anything else: ``None``.
    """
    try:
        parsed = command_texts.parse(text)
    except YamlError:
        return None
    if type(parsed) is not dict or len(parsed) != 1:
        return None
    ((key, value),) = parsed.items()
    if type(key) is not str or type(value) is not str or key in aliases:
        return None
    return _Texts(text, text, key)


def _both_tracks(texts: Callable[[bool], list[str]], needs_run: bool) -> list[_Texts]:
    """Pair upstream's texts with the ones that run (they differ only around ``---``)."""
    hashed = texts(False)
    run = texts(True) if needs_run else hashed
    if len(run) != len(hashed):  # deleting ``---`` changed the structure: run upstream's
        run = hashed
    return [_Texts(h, r, command_texts.key_of(h)) for h, r in zip(hashed, run, strict=True)]


def upstream_text(item: object) -> str:
    r"""Upstream's ``string_cmd`` of a command item after the alias pass (before variables).

    List-valued commands are re-dumped from their parsed structure, as upstream does
    (nested scalars become strings, nested literal blocks lose their final newline).

    >>> upstream_text({"group": [{"exec_local": 12}]})
    "group:\n- exec_local: '12'"
    """
    text = command_texts.initial_text(item, keep=False)
    (expanded,) = command_texts.expand_aliases(text, {}, keep=False, source="<command>")
    return expanded


# ---------------------------------------------------------------------- raw model


@dataclass(slots=True)
class _RawMicrostep:
    name: str
    commands: list[object]
    policy: CheckpointPolicy
    source: str
    body: list[object]  # as written, ``on_checkpoint`` included


@dataclass(slots=True)
class _RawMacrostep:
    name: str
    path: str
    microsteps: list[_RawMicrostep]
    variables: list[tuple[str, object]]  # definition order
    overrides: list[tuple[str, object]]
    origin: str = ""  # the file that writes it
    embedded: bool = False


@dataclass(slots=True)
class _Built:
    name: str
    commands: list[Command]
    policy: CheckpointPolicy
    selected: int = 0  # a microstep selected twice (``s: [m, n, m]``) is one object upstream


@dataclass(slots=True)
class _Expanded:
    """A microstep after the alias pass, then after the variable pass."""

    raw: _RawMicrostep
    texts: list[_Texts]


@dataclass(slots=True)
class _BuiltMacrostep:
    name: str
    path: str | None
    origin: str | None = None
    init: list[_Built] = field(default_factory=list)
    microsteps: list[_Built] = field(default_factory=list)
    clean: list[_Built] = field(default_factory=list)


# ------------------------------------------------------------------------ globals


def builtin_globals(name: str, recipe_dir: str, kameleon_cwd: str) -> dict[str, object]:
    """The globals every recipe starts with (the recipe and ``-g`` override them)."""
    return {
        "kameleon_recipe_name": name,
        "kameleon_recipe_dir": recipe_dir,
        "kameleon_cwd": kameleon_cwd,
        "in_context": dict(_CONTEXT_DEFAULTS),
        "out_context": dict(_CONTEXT_DEFAULTS),
        "proxy_local": "",
        "proxy_out": "",
        "proxy_in": "",
        "checkpointing_enabled": "false",
        "persistent_cache": "false",
    }


def _merge_cli(
    values: dict[str, object], cli: Mapping[str, str], on_unbraced: Callable[[str], None]
) -> dict[str, object]:
    merged = dict(values)
    for key, value in cli.items():
        merged[key] = overload(value, key, merged[key], on_unbraced) if key in merged else value
    return merged


def _complete_contexts(values: dict[str, object], source: str) -> None:
    """Fill the context mappings as upstream does at load: defaults, ``interactive_cmd``."""
    for key in ("out_context", "in_context"):
        given = values.get(key)
        if isinstance(given, dict):
            merged = {**_CONTEXT_DEFAULTS, **{str(k): v for k, v in given.items()}}
            merged.setdefault("interactive_cmd", merged.get("cmd"))
            values[key] = merged
        elif given is not None and not isinstance(given, list):
            raise RecipeError(f"{source}: global '{key}' must be a mapping (cmd, workdir...)")


def _proxy_globals(values: Mapping[str, object], options: ResolveOptions) -> dict[str, object]:
    """``proxy_local``/``proxy_out``/``proxy_in`` for ``--proxy`` or the cache (or none)."""
    port = options.cache_port
    if port is None:
        if not options.parent_proxy:
            return {}
        return dict.fromkeys(("proxy_local", "proxy_out", "proxy_in"), options.parent_proxy)
    hosts: dict[str, object] = {}
    for name in ("in", "out"):  # upstream checks the in context first
        settings = values.get(f"{name}_context")
        if isinstance(settings, list):
            settings = {k: v for e in settings if isinstance(e, dict) for k, v in e.items()}
        host = settings.get("proxy_cache") if isinstance(settings, dict) else None
        if host is None:
            raise BuildError(
                f"Missing variable for {name} context 'proxy_cache' when using the option --cache"
            )
        hosts[name] = host
    return {
        "proxy_local": f"127.0.0.1:{port}",
        "proxy_out": f"{ruby_str(hosts['out'])}:{port}",
        "proxy_in": f"{ruby_str(hosts['in'])}:{port}",
    }


_ERB_RE = re.compile(r"<%(=|#)?\s*(.*?)\s*-?%>", re.S)


def render_env(texts: Iterable[str], context: ContextName) -> str:
    r"""Render recipe ``env`` files (ERB templates) for one context.

    Only what env files use is supported: ``<%= @context_name %>`` (``local``,
    ``out`` or ``in``) and comments; other Ruby code is left out.

    >>> render_env(["export WHERE=<%= @context_name %>"], ContextName.OUT)
    'export WHERE=out\n'
    """

    def replace(match: re.Match[str]) -> str:
        kind, code = match.group(1), match.group(2)
        if kind == "=" and code in ("@context_name", "@name"):
            return context.value
        return ""

    rendered = [_ERB_RE.sub(replace, text) for text in texts]
    return "".join(text if text.endswith("\n") else text + "\n" for text in rendered)


def _read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", errors="replace")


def _context_spec(
    name: ContextName, globals_: dict[str, object], kameleon_cwd: str, source: str
) -> ContextSpec:
    """The settings of one context.

    As upstream does, the completed mapping (defaults, ``interactive_cmd``) replaces
    the global, so ``info`` and commands see it.
    """
    proxy = ruby_str(globals_.get(f"proxy_{name.value}", ""))
    if name is ContextName.LOCAL:
        return ContextSpec(name=name, cmd="bash", start_dir=kameleon_cwd, proxy=proxy)
    key = f"{name.value}_context"
    value = globals_.get(key)
    if isinstance(value, list):
        flat: dict[str, object] = {}
        for entry in value:
            if isinstance(entry, dict):
                flat.update({str(k): v for k, v in entry.items()})
        value = flat
    if value is not None and not isinstance(value, dict):
        raise RecipeError(f"{source}: global '{key}' must be a mapping (cmd, workdir...)")
    settings = {**_CONTEXT_DEFAULTS, **(value or {})}
    if "cmd" not in settings:
        raise RecipeError(f"Required paramater missing for {key}: cmd (in the globals of {source})")
    cmd = settings["cmd"]
    settings.setdefault("interactive_cmd", cmd)
    globals_[key] = settings
    return ContextSpec(
        name=name,
        cmd=ruby_str(cmd),
        start_dir=kameleon_cwd,
        workdir=ruby_str(settings.get("workdir")),
        exec_prefix=ruby_str(settings.get("exec_prefix")),
        interactive_cmd=ruby_str(settings.get("interactive_cmd") or cmd),
        proxy=proxy,
    )


# ------------------------------------------------------------------------- lookups


class _Resolver:
    """State of one resolution: globals, aliases, lookups, collected files, warnings."""

    def __init__(self, loaded: LoadedRecipe, options: ResolveOptions, cwd: str) -> None:
        self.loaded = loaded
        self.options = options
        self.steps_dirs = StepsDirs.for_chain(loaded.chain, cwd).with_fallback(
            options.builtin_steps_dirs
        )
        self.step_files: list[str] = list(loaded.include_files)
        self.env_files: list[str] = []
        self.data_files: list[str] = []
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        for name in loaded.unbraced:
            self.unbraced(name)
        self.raw_globals: dict[str, object] = {}
        self.globals: dict[str, object] = {}
        self.aliases: dict[str, list[object]] = {}
        self.aliases_have_dashes = False
        # what aliases and variables expanded so far, and the files' YAML nodes read
        self.budget = Budget(nodes_read=loaded.nodes_read)

    # warnings ------------------------------------------------------------------
    def unbraced(self, name: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            self.warnings.append(
                f"Warning: variable $${name} is not enclosed with braces, which may cause "
                f"errors. Please prefer using $${{{name}}}."
            )

    # globals -------------------------------------------------------------------
    def load_globals(self) -> None:
        """The globals as upstream's non-strict load sees them (steps are found with them)."""
        loaded, options = self.loaded, self.options
        build_path = options.build_path or os.path.join(os.getcwd(), "build")
        kameleon_cwd = os.path.join(build_path, loaded.name)
        utf8_path(  # it goes into commands, their ids and the shells
            kameleon_cwd,
            "the build directory",
            "pass -b/--build-path with a UTF-8 path, or run kameleon from a directory "
            "whose path is UTF-8",
        )
        shell_safe_path(kameleon_cwd, "build path")
        shell_safe_path(os.path.dirname(loaded.abspath), "kameleon_recipe_dir")
        for directory in options.builtin_steps_dirs:
            shell_safe_path(directory, "kameleon_nb's data directory")
        values = builtin_globals(loaded.name, os.path.dirname(loaded.abspath), kameleon_cwd)
        values.update(loaded.global_vars)
        _complete_contexts(values, loaded.abspath)
        self.raw_globals = _merge_cli(values, options.cli_globals, self.unbraced)
        self.globals = self.substitute_globals(self.raw_globals, strict=False)

    def resolve_globals(self) -> None:
        """Upstream's strict pass, after the build options and the uuid are set."""
        values = dict(self.raw_globals)
        values["checkpointing_enabled"] = "true" if self.options.checkpointing else "false"
        values["persistent_cache"] = "true" if self.options.persistent_cache else "false"
        values.update(_proxy_globals(values, self.options))
        if "kameleon_uuid" not in values:
            stored = self.options.stored_uuid
            if stored is not None:
                values["kameleon_uuid"], values["kameleon_short_uuid"] = stored
            else:
                import uuid  # noqa: PLC0415 - only when no uuid is given or stored

                generated = str(uuid.uuid4())
                values["kameleon_uuid"] = generated
                values["kameleon_short_uuid"] = generated.rsplit("-", 1)[-1]
        self.globals = self.substitute_globals(values, strict=self.options.strict_globals)

    def substitute_globals(self, values: dict[str, object], *, strict: bool) -> dict[str, object]:
        """Resolve the globals through their Psych dump, as upstream does."""
        source = self.loaded.abspath
        text = psych.dump(values)
        if "$$" not in text:
            return values
        lookup = lookup_in(values)
        resolved = _reparse(
            self.resolve_text(text, source, lookup, strict=strict),
            f"in the globals of {source}, after variable substitution",
        )
        if not isinstance(resolved, dict):
            raise RecipeError(f"{source}: the globals do not form a mapping after substitution")
        return {**values, **{str(k): v for k, v in resolved.items()}}

    def include_steps(self) -> list[str]:
        raw = self.globals.get("include_steps")
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise RecipeError(
                f"{self.loaded.abspath}: 'include_steps' must be a list of directories"
            )
        flat: list[str] = []

        def walk(items: Iterable[object]) -> None:
            for item in items:
                if isinstance(item, list):
                    walk(item)
                elif item is not None:
                    flat.append(ruby_str(item))

        walk(raw)
        return flat

    def nonstrict(self, text: str) -> str:
        """A step name, resolved as at load (unknown variables become empty)."""
        return self.resolve_text(text, self.loaded.abspath, lookup_in(self.globals), strict=False)

    # aliases -------------------------------------------------------------------
    def load_aliases(self) -> None:
        value = self.loaded.aliases
        if value is None:
            return
        if isinstance(value, dict):
            self.aliases = {
                str(k): _as_command_list(v, str(k), self.loaded.aliases_origin)
                for k, v in value.items()
            }
        else:
            names = value if isinstance(value, list) else [value]
            for raw_name in names:
                name = ruby_str(raw_name)
                path = self.steps_dirs.find("aliases", name)
                if path is None:
                    raise RecipeError(
                        f"Aliases file for recipe '{self.loaded.abspath}' does not exists "
                        f"('{name}' in no steps/aliases/ directory)"
                    )
                data = read_yaml(path, self.budget)
                if not isinstance(data, dict):
                    raise RecipeError(f"{path}: an aliases file must map alias names to commands")
                for key, commands in data.items():
                    self.aliases[str(key)] = _as_command_list(commands, str(key), path)
                self.step_files.append(path)
        self.aliases_have_dashes = any("---" in psych.dump(v)[3:] for v in self.aliases.values())

    # env -------------------------------------------------------------------------
    def load_env(self) -> None:
        value = self.loaded.env
        if value is None:
            return
        for raw_name in value if isinstance(value, list) else [value]:
            name = ruby_str(raw_name)
            path = self.steps_dirs.find("env", name)
            if path is None:
                searched = [
                    os.path.join(d, "env")
                    for d in self.steps_dirs.dirs
                    if d not in self.options.builtin_steps_dirs
                ]
                raise RecipeError(
                    f"The env file script '{name}' does not exists in any of these "
                    f"directories: {ruby_inspect(searched)} (env of {self.loaded.abspath})"
                )
            self.env_files.append(path)

    # alias pass ------------------------------------------------------------------
    def expand(self, item: object, source: str, microstep: str) -> list[_Texts]:
        """Upstream's alias pass over one command item: its texts, aliases expanded."""
        try:
            return self._expand(item, source)
        except command_texts.NotACommandError as err:  # upstream cannot tell its key
            lines = "\n".join(f"> {line}" for line in err.text.splitlines())
            raise RecipeError(
                f"Syntax error for microstep {microstep}: (in {source}: a command is a "
                f"one-key mapping such as '- exec_in: echo hi', or a bare name)\n{lines}"
            ) from err

    def _expand(self, item: object, source: str) -> list[_Texts]:
        keep_text = command_texts.initial_text(item, keep=True)
        needs_run = "---" in keep_text or self.aliases_have_dashes
        if not needs_run:  # then both tracks have the same text
            plain = _plain_command(keep_text, self.aliases)
            if plain is not None:
                return [plain]

        def texts(keep: bool) -> list[str]:
            text = keep_text if keep else command_texts.initial_text(item, keep=False)
            with _naming(source):
                return command_texts.expand_aliases(
                    text, self.aliases, keep=keep, source=source, budget=self.budget
                )

        return _both_tracks(texts, needs_run)

    # variable pass ---------------------------------------------------------------
    def resolve_text(
        self, text: str, source: str, lookup: Callable[[str], str | None], *, strict: bool = True
    ) -> str:
        """Data-dir references, then variables, in one text (upstream's resolve_vars)."""
        if "kameleon_data_dir" in text:
            text = self.data_dir(text, source, lookup, strict=strict)
        return substitute(
            text,
            lookup,
            source=source,
            on_unbraced=self.unbraced,
            strict=strict,
            budget=self.budget,
        )

    def resolving(self, source: str, lookup: Callable[[str], str | None]) -> Callable[[str], str]:
        """:meth:`resolve_text` for the texts of one file, with one lookup."""
        return lambda text: self.resolve_text(text, source, lookup)

    def data_dir(
        self, text: str, source: str, lookup: Callable[[str], str | None], *, strict: bool
    ) -> str:
        for bare in _DATA_DIR_BARE_RE.finditer(text):
            self.unbraced(bare.group(1))
        replacements: list[tuple[str, str]] = []
        for match in _DATA_DIR_RE.finditer(text):
            tail = substitute(
                match.group(1),
                lookup,
                source=source,
                on_unbraced=self.unbraced,
                strict=strict,
                budget=self.budget,
            )
            tail = tail.removesuffix('"')
            found = self.steps_dirs.find_data(tail)
            if found is None:
                raise RecipeError(f"Cannot find data '{tail}' used in '{source}'")
            self._record_data(found)
            replacements.append((match.group(0).removesuffix('"'), found))
        for reference, found in replacements:  # every occurrence, as upstream's gsub!
            text = text.replace(reference, found)
        return text

    def _record_data(self, path: str) -> None:
        if path not in self.data_files:
            self.data_files.append(path)

    def data_files_flat(self) -> list[str]:
        """The data files found, directories expanded (Ruby's sorted ``Find``)."""
        flat: list[str] = []
        for path in self.data_files:
            for found in _find_files(path):
                if found not in flat:
                    flat.append(found)
        return flat


def _find_files(path: str) -> Iterable[str]:
    if not os.path.isdir(path):
        yield path
        return
    for entry in sorted(os.listdir(path)):
        yield from _find_files(os.path.join(path, entry))


@contextlib.contextmanager
def _naming(source: str) -> Iterator[None]:
    """Name ``source`` in the errors of the alias pass that do not name a file.

    Upstream's texts (``NAME takes exactly N arguments``) stay at the start of the line.
    """
    try:
        yield
    except (ExpansionLimitError, command_texts.NotACommandError):
        raise  # the first names its file; the second is reported by the caller
    except YamlError as err:
        raise YamlError(f"{err} (in {source})", where=source, problem=str(err)) from err
    except RecipeError as err:
        raise RecipeError(f"{err} (in {source})") from err


def _reparse(text: str, where: str) -> object:
    """Parse a text that substitution produced; its errors say where it came from.

    Psych names such a text ``<unknown>``, and so does upstream's message, which stays
    at the start of the line.
    """
    try:
        return parse_yaml(text, source="<unknown>")
    except YamlError as err:
        raise YamlError(f"{err} ({where})", where=err.where, problem=err.problem) from err


def _build_command(obj: object, text: str, source: str, microstep: str) -> Command:
    if isinstance(obj, str):
        return Command(key=obj, value=None, text=text)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise RecipeError(
            f"Syntax error after variable resolution for microstep {microstep} in {source}: "
            f"a command must be a one-key mapping, got {text!r}"
        )
    ((key, value),) = obj.items()
    key = ruby_str(key)
    if isinstance(value, list):
        children = tuple(
            _build_command(child, command_texts.initial_text(child, keep=False), source, microstep)
            for child in value
        )
        return Command(key=key, value=children, text=text)
    return Command(key=key, value=None if value is None else ruby_str(value), text=text)


def _as_command_list(value: object, name: str, source: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecipeError(f"{source}: '{name}' must be a list of commands")
    return list(value)


# --------------------------------------------------------------------- macrosteps


def _malformed(section: str, detail: str, origin: str) -> RecipeError:
    return RecipeError(f"Malformed yaml recipe in section: {section} ({detail} in {origin})")


def _parse_microstep(name: str, body: list[object], source: str) -> _RawMicrostep:
    policy = CheckpointPolicy.USE_CACHE
    commands: list[object] = []
    for item in body:
        if isinstance(item, dict) and len(item) == 1 and "on_checkpoint" in item:
            policy = CheckpointPolicy.parse(item["on_checkpoint"])
        else:
            commands.append(item)
    return _RawMicrostep(name=name, commands=commands, policy=policy, source=source, body=body)


def _parse_step_body(
    items: list[object], source: str
) -> tuple[list[_RawMicrostep], list[tuple[str, object]]]:
    microsteps: list[_RawMicrostep] = []
    variables: list[tuple[str, object]] = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise RecipeError(
                f"The macrostep {source} is not valid (each item must be '- microstep: "
                f"[commands]' or '- variable: value', got {item!r})"
            )
        ((key, value),) = item.items()
        if isinstance(value, list):
            microsteps.append(_parse_microstep(str(key), value, source))
        else:
            variables.append((str(key), value))
    return microsteps, variables


def _is_embedded(args: object) -> bool:
    return isinstance(args, list) and any(
        isinstance(a, dict) and any(isinstance(v, list) for v in a.values()) for a in args
    )


# ------------------------------------------------------------------------ pipeline


def resolve_recipe(loaded: LoadedRecipe, options: ResolveOptions, *, cwd: str) -> ResolvedRecipe:
    """Load a merged recipe's parts, then run the strict pipeline, in upstream's order.

    Upstream's non-strict load (globals, aliases, env files, the checkpoint file and
    every step file) comes first, then the strict resolution (globals, contexts, the
    checkpoint hooks, aliases everywhere, variables everywhere, hooks): so when a
    recipe has two problems, the one upstream reports is reported.

    Args:
        loaded: the recipe merged with its parents.
        options: command-line inputs (globals, build path, checkpointing...).
        cwd: the workspace root.

    Returns:
        The resolved recipe, every microstep with its id.

    Raises:
        RecipeError: unknown step, variable or microstep, alias arity, bad hooks...
            (with the warnings printed so far in its ``warnings``).
        MissingFileError: a step file is missing.
        YamlError: a step file is not valid YAML.
    """
    resolver = _Resolver(loaded, options, cwd)
    try:
        try:
            with full_collections_paused():  # it builds and keeps many objects
                return _resolve(resolver)
        except RecursionError as err:  # a value nested hundreds of levels deep
            raise ExpansionLimitError(
                f"{loaded.abspath}: a value or a command is nested too deeply (hundreds of "
                "levels of lists or mappings); kameleon_nb stops there, and real recipes "
                "nest a few levels"
            ) from err
    except KameleonError as err:
        err.warnings = tuple(resolver.warnings)
        raise


def check_loadable(loaded: LoadedRecipe, options: ResolveOptions, *, cwd: str) -> None:
    """Run upstream's non-strict load only (globals, aliases, env, checkpoint, step files).

    This is what ``kameleon list`` asks of each recipe it shows: a recipe whose load
    fails (a missing step file, invalid YAML) is left out of the listing.

    Raises:
        KameleonError: the load failed.
    """
    resolver = _Resolver(loaded, options, cwd)
    with full_collections_paused():
        _load_parts(resolver)


def _load_parts(
    resolver: _Resolver,
) -> tuple[dict[str, list[_RawMacrostep]], tuple[str, dict[object, object]] | None]:
    loaded = resolver.loaded
    resolver.load_globals()
    resolver.load_aliases()
    resolver.load_env()
    checkpoint_data = _read_checkpoint(resolver)
    include_steps = resolver.include_steps()
    sections: dict[str, list[_RawMacrostep]] = {}
    for section in SECTIONS:
        sections[section] = [
            _load_macrostep(resolver, section, entry, include_steps)
            for entry in loaded.sections.get(section, [])
        ]
        _apply_edits(sections[section], section, loaded)
    return sections, checkpoint_data


def _resolve(resolver: _Resolver) -> ResolvedRecipe:
    loaded, options = resolver.loaded, resolver.options
    # upstream's load (non-strict)
    sections, checkpoint_data = _load_parts(resolver)
    if options.require_checkpoint and checkpoint_data is None:
        raise BuildError(
            f"{messages.CHECKPOINT_UNAVAILABLE} ({loaded.abspath} has no 'checkpoint:' mechanism; "
            "add one, e.g. 'checkpoint: overlay.yaml', or build without -c)"
        )
    # upstream's resolve (strict)
    resolver.resolve_globals()
    globals_ = resolver.globals
    kameleon_cwd = ruby_str(globals_.get("kameleon_cwd"))
    env_texts = [_read_text(path) for path in resolver.env_files]
    contexts = {
        name: dataclasses.replace(
            _context_spec(name, globals_, kameleon_cwd, loaded.abspath),
            env_script=render_env(env_texts, name),
        )
        for name in ContextName
    }
    checkpoint = _resolve_checkpoint(resolver, checkpoint_data)
    seen: dict[int, _Expanded] = {}
    expanded = {
        section: [
            [_expand_microstep(resolver, m, seen) for m in ms.microsteps] for ms in macrosteps
        ]
        for section, macrosteps in sections.items()
    }
    for section, macrosteps in sections.items():
        for macrostep, microsteps in zip(macrosteps, expanded[section], strict=True):
            resolve = resolver.resolving(macrostep.path, _step_lookup(resolver, macrostep))
            for micro in microsteps:
                micro.texts = [t.map(resolve) for t in micro.texts]
    built = _build_sections(resolver, sections, expanded)
    resolved_sections = _number_and_hash(built)
    return ResolvedRecipe(
        name=loaded.name,
        path=loaded.path,
        abspath=loaded.abspath,
        description=loaded.description,
        sections=resolved_sections,
        global_vars=globals_,
        contexts=contexts,
        checkpoint=checkpoint,
        files=RecipeFiles(
            recipe=loaded.abspath,
            parents=tuple(loaded.chain[1:]),
            steps=tuple(resolver.step_files),
            env=tuple(resolver.env_files),
            data=tuple(resolver.data_files_flat()),
        ),
        cli_globals=dict(options.cli_globals),
        warnings=tuple(resolver.warnings),
    )


def _read_checkpoint(resolver: _Resolver) -> tuple[str, dict[object, object]] | None:
    """The checkpoint mechanism in force and the file that defines it (load time)."""
    value = resolver.loaded.checkpoint
    if value is None:
        return None
    if isinstance(value, dict):
        return resolver.loaded.abspath, value
    name = ruby_str(value)
    path = resolver.steps_dirs.find("checkpoints", name)
    if path is None:
        raise RecipeError(
            f"Checkpoint configuraiton file '{name}' does not exists (in no steps/checkpoints/ "
            f"directory of {resolver.loaded.abspath})"
        )
    resolver.step_files.append(path)
    data = read_yaml(path, resolver.budget)
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a checkpoint mechanism maps hooks (create, apply...) to commands"
        )
    return path, data


def _resolve_checkpoint(
    resolver: _Resolver, found: tuple[str, dict[object, object]] | None
) -> dict[str, tuple[Command, ...]]:
    if found is None:
        return {}
    source, data = found
    missing = [hook for hook in _REQUIRED_HOOKS if hook not in data]
    if missing:
        raise RecipeError(
            f"Required paramater missing for checkpoint: {' '.join(missing)} ({source} needs "
            f"{', '.join(_REQUIRED_HOOKS)}, and optionally enabled?)"
        )
    lookup = lookup_in(resolver.globals)
    hooks: dict[str, tuple[Command, ...]] = {}
    for hook in CHECKPOINT_HOOKS:
        if hook not in data:
            continue
        expanded = [  # upstream expands a hook's aliases before its variables
            texts
            for item in _as_command_list(data[hook], hook, source)
            for texts in resolver.expand(item, source, "checkpoint")
        ]
        resolve = resolver.resolving(source, lookup)
        hooks[hook] = tuple(_hook_command(texts.map(resolve), source) for texts in expanded)
    return hooks


def _expand_microstep(
    resolver: _Resolver, microstep: _RawMicrostep, seen: dict[int, _Expanded]
) -> _Expanded:
    """The alias pass over a microstep.

    A microstep selected twice (``s: [m, n, m]``) is one object upstream: every pass
    runs on it once per occurrence, and every occurrence shows the final result.
    """
    again = seen.get(id(microstep))
    if again is not None:
        again.texts = [
            t
            for texts in again.texts
            for t in _both_tracks(
                functools.partial(_expand_again, resolver, texts, microstep.source),
                texts.run != texts.hashed,
            )
        ]
        return again
    texts = [
        t
        for item in microstep.commands
        for t in resolver.expand(item, microstep.source, microstep.name)
    ]
    seen[id(microstep)] = _Expanded(microstep, texts)
    return seen[id(microstep)]


def _expand_again(resolver: _Resolver, texts: _Texts, source: str, keep: bool) -> list[str]:
    text = texts.run if keep else texts.hashed
    with _naming(source):
        return command_texts.expand_aliases(
            text, resolver.aliases, keep=keep, source=source, budget=resolver.budget
        )


def _hook_command(texts: _Texts, source: str) -> Command:
    """A command of the checkpoint mechanism: upstream never checks their syntax."""
    try:
        return _final_command(texts, source, "checkpoint")
    except RecipeError:  # it fails when it runs: an unknown command
        return Command(key=texts.hashed, value=None, text=texts.hashed)


def _final_command(texts: _Texts, source: str, microstep: str) -> Command:
    """The command a microstep runs, after upstream's last syntax check."""
    try:
        command_texts.value_of(texts.hashed, keep=False)
        run = command_texts.parse(texts.run)
    except YamlError as err:
        raise _syntax_error(texts, source, microstep, err) from err
    return _build_command(run, texts.hashed, source, microstep)


def _syntax_error(texts: _Texts, source: str, microstep: str, err: YamlError) -> RecipeError:
    return RecipeError(
        f"Syntax error after variable resolution for microstep {microstep}, parsed "
        f"string = (in {source}: {err})\n{texts.hashed}\n"
        "Maybe you should remove trailing newline from variable using '>-' or '|-'"
    )


def _load_macrostep(
    resolver: _Resolver, section: str, entry: SectionItem, include_steps: list[str]
) -> _RawMacrostep:
    item = entry.item
    if isinstance(item, str):
        name, args = item, None
    elif isinstance(item, dict) and len(item) >= 1:
        raw_name, args = next(iter(item.items()))
        name = ruby_str(raw_name)
    else:
        raise _malformed(section, f"entry {item!r}", entry.origin)
    name = resolver.nonstrict(name)
    if _is_embedded(args):
        assert isinstance(args, list)
        body: list[object] = []
        items: list[tuple[str, object]] = []
        for arg in args:
            if not isinstance(arg, dict):
                raise _malformed(section, f"item {arg!r} of embedded step '{name}'", entry.origin)
            body.extend({k: v} for k, v in arg.items())
            items.extend((str(k), v) for k, v in arg.items())
        # upstream gives an embedded macrostep the path of the recipe being built
        # and every item, microsteps included, as a local variable of that value
        microsteps, variables = _parse_step_body(body, resolver.loaded.abspath)
        return _RawMacrostep(
            name, resolver.loaded.abspath, microsteps, variables, items, entry.origin, True
        )
    if args is not None and not isinstance(args, list):
        raise _malformed(section, f"arguments of step '{name}' must be a list,", entry.origin)
    path = resolver.steps_dirs.find_step(section, name, include_steps)
    if path is None:
        raise RecipeError(
            f"Step {name} not found (searched {section}/{name}.yaml in the steps "
            f"directories of {resolver.loaded.abspath})"
        )
    data = read_yaml(path, resolver.budget)
    if not isinstance(data, list):
        raise RecipeError(f"The macrostep {path} is not valid (a step file is a YAML list)")
    microsteps, variables = _parse_step_body(data, path)
    overrides: list[tuple[str, object]] = []
    selection: list[str] = []
    for arg in args or []:
        if isinstance(arg, str):
            selection.append(arg)
        elif isinstance(arg, dict):
            overrides.extend((str(k), v) for k, v in arg.items())
        else:
            raise _malformed(section, f"argument {arg!r} of step '{name}'", entry.origin)
    if selection:
        by_name = {m.name: m for m in reversed(microsteps)}
        chosen = []
        for wanted in selection:
            if wanted not in by_name:
                raise RecipeError(f"Can't find microstep '{wanted}' in macrostep file '{path}'")
            chosen.append(by_name[wanted])
        microsteps = chosen
    resolver.step_files.append(path)
    return _RawMacrostep(name, path, microsteps, variables, overrides, path)


def _apply_edits(macrosteps: list[_RawMacrostep], section: str, loaded: LoadedRecipe) -> None:
    """Put the microsteps defined outside the files (notebook cells) in place."""
    for (edit_section, macrostep_name), bodies in loaded.edits.items():
        if edit_section != section:
            continue
        target = next((m for m in macrosteps if m.name == macrostep_name), None)
        if target is None:
            # exported, it becomes a step file: its microsteps are not step variables
            target = _RawMacrostep(macrostep_name, loaded.abspath, [], [], [], loaded.abspath)
            macrosteps.append(target)
        for name, body in bodies.items():
            microstep = _parse_microstep(name, body, loaded.abspath)
            index = next((i for i, m in enumerate(target.microsteps) if m.name == name), None)
            if index is None:
                target.microsteps.append(microstep)
            else:
                target.microsteps[index] = microstep


_PLAIN_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# plain keys that YAML 1.1 reads as something else than a string (a dump quotes them)
_WORD_KEYS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _without_dollars(value: object) -> bool:
    """Whether ``value`` is plain data (strings, numbers, lists, maps) with no ``$$``.

    Its dump then holds no ``$$`` either (a dump never joins two characters of
    different strings), so nothing in it is substituted.
    """
    if isinstance(value, str):
        return "$$" not in value
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, list):
        return all(_without_dollars(item) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and "$$" not in key and _without_dollars(item)
            for key, item in value.items()
        )
    return False


class _Deferred:
    """A step variable whose text needs no substitution: re-read only if it is used.

    Re-reading its dump cannot fail (the dump is YAML of our own), so deferring it
    changes no error, only the time: an embedded step's microsteps are variables of
    the step too, and commands hardly ever use them.
    """

    __slots__ = ("key", "path", "value")

    def __init__(self, key: str, value: object, path: str) -> None:
        self.key = key
        self.value = value
        self.path = path

    def read(self) -> object:
        """The value as the eager path gives it: its dump, final newline cut, re-read."""
        text = psych.dump({self.key: self.value}).removesuffix("\n")
        where = f"in variable '{self.key}' of {self.path}"
        parsed = _reparse(text, where)
        if isinstance(parsed, dict) and len(parsed) == 1 and str(next(iter(parsed))) == self.key:
            return next(iter(parsed.values()))
        raise RecipeError(f"Unexpected re-reading of variable '{self.key}' ({where})")


def _deferred_lookup(
    resolved: dict[str, object], globals_: Mapping[str, object], *, globals_first: bool
) -> Callable[[str], str | None]:
    """:func:`lookup_in` over ``resolved`` and ``globals_``, in the order given.

    ``resolved`` may hold :class:`_Deferred` values: they are read when first looked up.
    """

    def from_resolved(name: str) -> str | None:
        value = resolved[name]
        if isinstance(value, _Deferred):
            value = resolved[name] = value.read()
        return ruby_str(value)

    def lookup(name: str) -> str | None:
        if globals_first and name in globals_:
            return ruby_str(globals_[name])
        if name in resolved:
            return from_resolved(name)
        if not globals_first and name in globals_:
            return ruby_str(globals_[name])
        return None

    return lookup


def _step_lookup(resolver: _Resolver, macrostep: _RawMacrostep) -> Callable[[str], str | None]:
    """The variables a macrostep's commands see (semantics §3.3, upstream's precedence)."""
    globals_ = resolver.globals
    values: dict[str, object] = {}
    for key, default in macrostep.variables:
        values[key] = globals_.get(key, default) if key in globals_ else default
    for key, value in _overrides(macrostep):
        values[key] = value
    resolved: dict[str, object] = {}
    for key, value in values.items():
        if (
            _PLAIN_KEY_RE.fullmatch(key)
            and key.lower() not in _WORD_KEYS
            and _without_dollars(value)
        ):
            resolved[key] = _Deferred(key, value, macrostep.path)
            continue
        # upstream always goes through the dump with its final newline cut: a ``|``
        # block value loses its own final newline on the way
        text = psych.dump({key: value}).removesuffix("\n")
        if "$$" in text:
            text = resolver.resolve_text(
                text, macrostep.path, _deferred_lookup(resolved, globals_, globals_first=True)
            )
        parsed = _reparse(
            text.removesuffix("\n"),
            f"in variable '{key}' of {macrostep.path}, after variable substitution",
        )
        if isinstance(parsed, dict):
            resolved.update({str(k): v for k, v in parsed.items()})
        else:
            resolved[key] = value
    return _deferred_lookup(resolved, globals_, globals_first=False)


def _overrides(macrostep: _RawMacrostep) -> list[tuple[str, object]]:
    """The step's arguments; for an embedded step, its items, microsteps as they are now."""
    if not macrostep.embedded:
        return macrostep.overrides
    bodies = {m.name: m.body for m in macrostep.microsteps}
    items = [(key, bodies.get(key, value)) for key, value in macrostep.overrides]
    written = {key for key, _ in macrostep.overrides}
    items.extend((name, body) for name, body in bodies.items() if name not in written)
    return items


def _build_sections(
    resolver: _Resolver,
    sections: Mapping[str, list[_RawMacrostep]],
    expanded: Mapping[str, list[list[_Expanded]]],
) -> list[tuple[str, list[_BuiltMacrostep]]]:
    section_init = {s: _BuiltMacrostep(f"_init_{s}", None) for s in SECTIONS}
    section_clean = {s: _BuiltMacrostep(f"_clean_{s}", None) for s in SECTIONS}
    result: list[tuple[str, list[_BuiltMacrostep]]] = []
    for section in SECTIONS:
        built_steps: list[_BuiltMacrostep] = []
        for macrostep, microsteps in zip(sections[section], expanded[section], strict=True):
            target = _BuiltMacrostep(macrostep.name, macrostep.path, macrostep.origin)
            kept: list[tuple[_RawMicrostep, list[_Texts]]] = []
            for micro in microsteps:
                raw = micro.raw
                plain: list[_Texts] = []
                for texts in micro.texts:
                    key = texts.key
                    if not isinstance(key, str) or _HOOK_RE.search(key) is None:
                        plain.append(texts)
                        continue
                    children = _hook_commands(resolver, texts, key, raw)
                    _attach_hook(key, children, raw, target, section_init, section_clean)
                kept.append((raw, plain))
            for raw, plain in kept:
                commands = [_final_command(t, raw.source, raw.name) for t in plain]
                target.microsteps.append(_Built(raw.name, commands, raw.policy, id(raw)))
            built_steps.append(target)
        result.append((section, built_steps))
    return [
        (section, [section_init[section], *steps, section_clean[section]])
        for section, steps in result
    ]


def _hook_commands(
    resolver: _Resolver, texts: _Texts, key: str, microstep: _RawMicrostep
) -> list[Command]:
    """The commands of a hook (``on_setup_clean: [...]``), aliases expanded once more."""
    try:
        hashed = command_texts.value_of(texts.hashed, keep=False)
        run = command_texts.value_of(texts.run, keep=True)
    except YamlError as err:
        raise _syntax_error(texts, microstep.source, microstep.name, err) from err
    if not isinstance(hashed, list) or not isinstance(run, list):
        raise RecipeError(
            f"Invalid {key} arguments (in microstep '{microstep.name}' of {microstep.source}: "
            "expected a list of commands)"
        )
    source = microstep.source
    aliases = resolver.aliases
    commands: list[Command] = []
    runs = run if len(run) == len(hashed) else hashed
    for hashed_child, run_child in zip(hashed, runs, strict=True):

        def expansions(
            keep: bool, upstream: str = hashed_child, kept: str = run_child
        ) -> list[str]:
            with _naming(source):
                return command_texts.expand_aliases(
                    kept if keep else upstream,
                    aliases,
                    keep=keep,
                    source=source,
                    budget=resolver.budget,
                )

        for pair in _both_tracks(expansions, run_child != hashed_child):
            commands.append(
                _build_command(command_texts.parse(pair.run), pair.hashed, source, microstep.name)
            )
    return commands


def _attach_hook(
    key: str,
    commands: list[Command],
    microstep: _RawMicrostep,
    macrostep: _BuiltMacrostep,
    section_init: Mapping[str, _BuiltMacrostep],
    section_clean: Mapping[str, _BuiltMacrostep],
) -> None:
    if key in ("on_clean", "on_init"):
        holder, kind = macrostep, key[3:]
    else:
        target = next(
            ((s, kind) for s in SECTIONS for kind in ("clean", "init") if key == f"on_{s}_{kind}"),
            None,
        )
        if target is None:
            raise RecipeError(
                f"Invalid command: '{key}' (in microstep '{microstep.name}' of "
                f"{microstep.source}; hooks are on_clean, on_init, on_<section>_clean and "
                f"on_<section>_init with sections {', '.join(SECTIONS)})"
            )
        section, kind = target
        holder = (section_init if kind == "init" else section_clean)[section]
    existing = holder.init if kind == "init" else holder.clean
    new = _Built(f"_{kind}_{len(existing)}_{microstep.name}", commands, microstep.policy)
    if kind == "init":
        existing.append(new)
    else:
        existing.insert(0, new)


def _number_and_hash(built: list[tuple[str, list[_BuiltMacrostep]]]) -> tuple[Section, ...]:
    flat: list[tuple[str, _BuiltMacrostep, _Built]] = []
    for section, macrosteps in built:
        for macrostep in macrosteps:
            for group in (macrostep.init, macrostep.microsteps, macrostep.clean):
                group[:] = [m for m in group if m.commands]
                flat.extend((section, macrostep, m) for m in group)
    ids = list(chain_step_ids(([c.text for c in m.commands], m.policy) for _, _, m in flat))
    slugs = list(unique_slugs(f"{s}/{ms.name}/{m.name}" for s, ms, m in flat))
    shown = list(range(1, len(flat) + 1))
    last: dict[int, int] = {}  # a microstep selected twice shows its last number and id
    for index, (_, _, micro) in enumerate(flat):
        if micro.selected:
            last[micro.selected] = index
    for index, (_, _, micro) in enumerate(flat):
        if micro.selected and last[micro.selected] != index:
            ids[index] = ids[last[micro.selected]]
            shown[index] = shown[last[micro.selected]]
    finished: dict[int, Microstep] = {}
    for order, ((section, macrostep, micro), step_id, slug, number) in enumerate(
        zip(flat, ids, slugs, shown, strict=True), start=1
    ):
        finished[id(micro)] = Microstep(
            name=micro.name,
            section=section,
            macrostep=macrostep.name,
            commands=tuple(micro.commands),
            on_checkpoint=micro.policy,
            step_id=StepId(step_id),
            slug=slug,
            order=order,
            number=number,
        )
    sections = []
    for section, macrosteps in built:
        sections.append(
            Section(
                name=section,
                macrosteps=tuple(
                    Macrostep(
                        name=m.name,
                        path=m.path,
                        origin=m.origin,
                        init=tuple(finished[id(x)] for x in m.init),
                        microsteps=tuple(finished[id(x)] for x in m.microsteps),
                        clean=tuple(finished[id(x)] for x in m.clean),
                    )
                    for m in macrosteps
                ),
            )
        )
    return tuple(sections)


@dataclass(frozen=True, slots=True)
class RecipeLookups:
    """What upstream's non-strict load finds for a recipe (``kameleon lint`` checks with it).

    Attributes:
        steps_dirs: the steps directories, in search order (kameleon_nb's last).
        include_steps: the resolved ``include_steps``.
        aliases: alias names to their commands.
        alias_files: the aliases files read.
        checkpoint_file: the checkpoint mechanism's file (None: inline or none).
    """

    steps_dirs: StepsDirs
    include_steps: tuple[str, ...]
    aliases: Mapping[str, list[object]]
    alias_files: tuple[str, ...]
    checkpoint_file: str | None


def recipe_lookups(loaded: LoadedRecipe, options: ResolveOptions, *, cwd: str) -> RecipeLookups:
    """Run upstream's non-strict load of globals, aliases and checkpoint, and say what it found.

    Raises:
        KameleonError: what :func:`resolve_recipe` raises for the same parts.
    """
    resolver = _Resolver(loaded, options, cwd)
    resolver.load_globals()
    resolver.load_aliases()
    alias_files = tuple(resolver.step_files[len(loaded.include_files) :])
    checkpoint = _read_checkpoint(resolver)
    return RecipeLookups(
        steps_dirs=resolver.steps_dirs,
        include_steps=tuple(resolver.include_steps()),
        aliases=dict(resolver.aliases),
        alias_files=alias_files,
        checkpoint_file=(
            checkpoint[0] if checkpoint is not None and checkpoint[0] != loaded.abspath else None
        ),
    )
