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

import dataclasses
import os
import re
import uuid as uuid_module
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kameleon_nb.core import psych
from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.core.loader import (
    LoadedRecipe,
    SectionItem,
    StepsDirs,
    parse_yaml,
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
from kameleon_nb.core.variables import VARIABLE_RE, lookup_in, overload, ruby_str, substitute
from kameleon_nb.errors import MissingFileError, RecipeError, YamlError

__all__ = ["ResolveOptions", "builtin_globals", "resolve_recipe", "upstream_text"]

#: ``delete`` (one checkpoint) and ``size`` (print its bytes on disk) are kameleon_nb's
#: optional additions, used by the notebook's checkpoint table; upstream ignores them.
CHECKPOINT_HOOKS = ("enabled?", "create", "apply", "list", "clear", "delete", "size")
_REQUIRED_HOOKS = ("create", "apply", "list", "clear")
_CONTEXT_DEFAULTS: dict[str, object] = {"cmd": "/bin/bash", "proxy_cache": "127.0.0.1"}
_ALIAS_ARG_RE = re.compile(r"@\d+")
_DATA_DIR_RE = re.compile(
    r"\$\$(?:\{kameleon_data_dir\}|kameleon_data_dir(?![a-zA-Z0-9_-]))(.*)$", re.M
)
_HOOK_RE = re.compile(r"^on_(?:(\w+)_)?(clean|init)$")


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
    """

    cli_globals: Mapping[str, str] = field(default_factory=dict)
    build_path: str = ""
    checkpointing: bool = False
    persistent_cache: bool = False
    stored_uuid: tuple[str, str] | None = None
    builtin_steps_dirs: tuple[str, ...] = ()


# --------------------------------------------------------------------------- texts


class _Texts:
    """A command's text along both tracks: hashed (``---`` removed) and run."""

    __slots__ = ("hashed", "run")

    def __init__(self, hashed: str, run: str) -> None:
        self.hashed = hashed
        self.run = run

    @classmethod
    def of(cls, item: object) -> _Texts:
        dumped = psych.dump(item)
        hashed = dumped.replace("---", "").strip()
        run = dumped[3:].strip() if "---" in dumped[3:] else hashed
        return cls(hashed, run)

    def map(self, function: Callable[[str], str]) -> _Texts:
        hashed = function(self.hashed)
        return _Texts(hashed, hashed if self.run == self.hashed else function(self.run))


def _roundtrip(item: object, *, keep_dashes: bool) -> object:
    """What upstream's command object makes of an item: its stripped dump, parsed."""
    dumped = psych.dump(item)
    text = dumped[3:].strip() if keep_dashes else dumped.replace("---", "").strip()
    return parse_yaml(text, source="<command>")


def _normalize(item: object, *, keep_dashes: bool) -> object:
    """An item as upstream re-dumps it: parsed back, nested scalars made strings."""
    parsed = _roundtrip(item, keep_dashes=keep_dashes)
    if isinstance(parsed, dict) and len(parsed) == 1:
        ((key, value),) = parsed.items()
        if isinstance(value, list):
            return {key: [_normalize(v, keep_dashes=keep_dashes) for v in value]}
        return {key: ruby_str(value)}
    return parsed


def _command_texts(item: object, *, redumped: bool) -> _Texts:
    """The texts of a command before variables: its dump, or its re-dump.

    Upstream re-dumps alias expansions and list-valued commands from their parsed
    structure; other commands keep their first dump.
    """
    if not redumped:
        return _Texts.of(item)
    hashed = psych.dump(_normalize(item, keep_dashes=False)).replace("---", "").strip()
    if "---" not in psych.dump(item)[3:]:
        return _Texts(hashed, hashed)
    run = psych.dump(_normalize(item, keep_dashes=True))[3:].strip()
    return _Texts(hashed, run)


def upstream_text(item: object) -> str:
    r"""Upstream's ``string_cmd`` of a command item after the alias pass (before variables).

    List-valued commands are re-dumped from their parsed structure, as upstream does
    (nested scalars become strings, nested literal blocks lose their final newline).

    >>> upstream_text({"group": [{"exec_local": 12}]})
    "group:\n- exec_local: '12'"
    """
    value = next(iter(item.values())) if isinstance(item, dict) and len(item) == 1 else None
    return _command_texts(item, redumped=isinstance(value, list)).hashed


# ---------------------------------------------------------------------- raw model


@dataclass(slots=True)
class _RawCommand:
    item: object  # the YAML item: {key: value} or a bare string
    redumped: bool = False  # alias expansions and list-valued commands are re-dumped

    @property
    def key(self) -> str:
        if isinstance(self.item, dict):
            return str(next(iter(self.item)))
        return str(self.item)

    @property
    def value(self) -> object:
        return next(iter(self.item.values())) if isinstance(self.item, dict) else None

    @property
    def has_value(self) -> bool:
        return isinstance(self.item, dict)


@dataclass(slots=True)
class _RawMicrostep:
    name: str
    commands: list[object]
    policy: CheckpointPolicy
    source: str


@dataclass(slots=True)
class _RawMacrostep:
    name: str
    path: str
    microsteps: list[_RawMicrostep]
    variables: list[tuple[str, object]]  # definition order
    overrides: list[tuple[str, object]]


@dataclass(slots=True)
class _Built:
    name: str
    commands: list[Command]
    policy: CheckpointPolicy


@dataclass(slots=True)
class _BuiltMacrostep:
    name: str
    path: str | None
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


def _merge_cli(values: dict[str, object], cli: Mapping[str, str]) -> dict[str, object]:
    merged = dict(values)
    for key, value in cli.items():
        merged[key] = overload(value, key, merged[key]) if key in merged else value
    return merged


def _resolve_globals(raw: dict[str, object], source: str) -> dict[str, object]:
    text = psych.dump(raw)
    if VARIABLE_RE.search(text) is None:
        return raw

    def lookup(name: str) -> str:
        if name not in raw:
            raise RecipeError(f"{source}: variable $${{{name}}} not found in local or global")
        return ruby_str(raw[name])

    resolved = parse_yaml(substitute(text, lookup, source=source), source=source)
    if not isinstance(resolved, dict):
        raise RecipeError(f"{source}: the globals do not form a mapping after substitution")
    return {str(k): v for k, v in resolved.items()}


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
    with open(path, encoding="utf-8", errors="replace") as stream:
        return stream.read()


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
    cmd = settings.get("cmd")
    if cmd is None or cmd == "":
        raise RecipeError(f"Required paramater missing for {key}: cmd")
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
    """State of one resolution: globals, aliases, lookups, collected files."""

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
        self.globals: dict[str, object] = {}
        self.aliases: dict[str, list[object]] = {}

    # warnings ------------------------------------------------------------------
    def unbraced(self, name: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            self.warnings.append(
                f"Warning: variable $${name} is not enclosed with braces, which may cause "
                f"errors. Please prefer using $${{{name}}}."
            )

    # globals -------------------------------------------------------------------
    def resolve_globals(self) -> None:
        loaded, options = self.loaded, self.options
        build_path = options.build_path or os.path.join(os.getcwd(), "build")
        kameleon_cwd = os.path.join(build_path, loaded.name)
        values = builtin_globals(loaded.name, os.path.dirname(loaded.abspath), kameleon_cwd)
        values.update(loaded.global_vars)
        values = _merge_cli(values, options.cli_globals)
        values["checkpointing_enabled"] = "true" if options.checkpointing else "false"
        values["persistent_cache"] = "true" if options.persistent_cache else "false"
        if "kameleon_uuid" not in values:
            if options.stored_uuid is not None:
                values["kameleon_uuid"], values["kameleon_short_uuid"] = options.stored_uuid
            else:
                generated = str(uuid_module.uuid4())
                values["kameleon_uuid"] = generated
                values["kameleon_short_uuid"] = generated.rsplit("-", 1)[-1]
        self.globals = _resolve_globals(values, loaded.abspath)

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
        def lookup(name: str) -> str:
            return ruby_str(self.globals.get(name, ""))

        return substitute(text, lookup, source=self.loaded.abspath)

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
            return
        names = value if isinstance(value, list) else [value]
        for raw_name in names:
            name = ruby_str(raw_name)
            path = self.steps_dirs.find("aliases", name)
            if path is None:
                raise RecipeError(
                    f"Aliases file for recipe '{self.loaded.abspath}' does not exists "
                    f"('{name}' in no steps/aliases/ directory)"
                )
            data = read_yaml(path)
            if not isinstance(data, dict):
                raise RecipeError(f"{path}: an aliases file must map alias names to commands")
            for key, commands in data.items():
                self.aliases[str(key)] = _as_command_list(commands, str(key), path)
            self.step_files.append(path)

    # env -------------------------------------------------------------------------
    def load_env(self) -> None:
        value = self.loaded.env
        if value is None:
            return
        for raw_name in value if isinstance(value, list) else [value]:
            name = ruby_str(raw_name)
            path = self.steps_dirs.find("env", name)
            if path is None:
                raise MissingFileError(
                    f"Environment file '{name}' of recipe '{self.loaded.abspath}' "
                    "is in no steps/env/ directory"
                )
            self.env_files.append(path)

    # alias expansion -------------------------------------------------------------
    def expand(self, item: object, source: str, depth: int = 0) -> list[_RawCommand]:
        """Expand aliases in one command item (recursively), before substitution."""
        if depth > 50:
            raise RecipeError(f"{source}: aliases expand into each other without end")
        command = _RawCommand(_check_command(item, source))
        alias = self.aliases.get(command.key)
        if alias is not None:
            args = _alias_args(command)
            expected = _alias_arity(alias)
            if len(args) != expected:
                if expected == 0:
                    problem = f"{command.key} takes no arguments ({len(args)} given)"
                else:
                    problem = (
                        f"{command.key} takes exactly {expected} arguments ({len(args)} given)"
                    )
                raise RecipeError(f"{source}: {problem}")
            expanded: list[_RawCommand] = []
            for template in alias:
                instance = _replace_args(template, args)
                for sub in self.expand(instance, source, depth + 1):
                    sub.redumped = True
                    expanded.append(sub)
            return expanded
        value = command.value
        if isinstance(value, list):
            children: list[object] = []
            for child in value:
                children.extend(c.item for c in self.expand(child, source, depth + 1))
            return [_RawCommand({command.key: children}, redumped=True)]
        return [command]

    # data dir --------------------------------------------------------------------
    def data_dir(self, text: str, source: str, lookup: Callable[[str], str | None]) -> str:
        def replace(match: re.Match[str]) -> str:
            tail = substitute(
                match.group(1), _strict(lookup, source), source=source, on_unbraced=self.unbraced
            )
            quote = ""
            if tail.endswith('"'):
                tail, quote = tail[:-1], '"'
            found = self.steps_dirs.find_data(tail)
            if found is None:
                raise RecipeError(f"Cannot find data '{tail}' used in '{source}'")
            self._record_data(found)
            return found + quote

        return _DATA_DIR_RE.sub(replace, text)

    def _record_data(self, path: str) -> None:
        paths = [path]
        if os.path.isdir(path):
            paths = [
                os.path.join(root, f) for root, _, files in os.walk(path) for f in sorted(files)
            ]
        for found in paths:
            if found not in self.data_files:
                self.data_files.append(found)

    # commands --------------------------------------------------------------------
    def resolve_command(
        self, raw: _RawCommand, source: str, microstep: str, lookup: Callable[[str], str | None]
    ) -> Command:
        texts = _command_texts(raw.item, redumped=raw.redumped)
        strict = _strict(lookup, source)

        def resolve(text: str) -> str:
            if "kameleon_data_dir" in text:
                text = self.data_dir(text, source, lookup)
            return substitute(text, strict, source=source, on_unbraced=self.unbraced)

        texts = texts.map(resolve)
        try:
            hashed_obj = parse_yaml(texts.hashed, source=source)
            run_obj = (
                hashed_obj if texts.run == texts.hashed else parse_yaml(texts.run, source=source)
            )
        except YamlError as err:
            raise RecipeError(
                f"Syntax error after variable resolution for microstep {microstep} "
                f"in {source}: {err}"
            ) from err
        return _build_command(run_obj, texts.hashed, source, microstep)


def _strict(lookup: Callable[[str], str | None], source: str) -> Callable[[str], str]:
    def strict(name: str) -> str:
        value = lookup(name)
        if value is None:
            raise RecipeError(
                f"{source}: variable $${{{name}}} not found in local or global "
                f"(define it under 'global:' or pass -g {name}:VALUE)"
            )
        return value

    return strict


def _build_command(obj: object, text: str, source: str, microstep: str) -> Command:
    if isinstance(obj, str):
        return Command(key=obj, value=None, text=text)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise RecipeError(
            f"Syntax error after variable resolution for microstep {microstep} in {source}: "
            f"a command must be a one-key mapping, got {text!r}"
        )
    ((key, value),) = obj.items()
    key = str(key)
    if isinstance(value, list):
        children = tuple(
            _build_command(child, _Texts.of(child).hashed, source, microstep) for child in value
        )
        return Command(key=key, value=children, text=text)
    return Command(key=key, value=None if value is None else ruby_str(value), text=text)


def _check_command(item: object, source: str) -> object:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        key = next(iter(item))
        return {str(key): item[key]}
    raise RecipeError(
        f"{source}: invalid command {item!r}: a command is a one-key mapping such as "
        "'- exec_in: echo hi' or a bare name"
    )


def _as_command_list(value: object, name: str, source: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecipeError(f"{source}: '{name}' must be a list of commands")
    return list(value)


def _alias_args(command: _RawCommand) -> list[object]:
    if not command.has_value:
        return []
    value = command.value
    if isinstance(value, list):
        flat: list[object] = []

        def walk(items: list[object]) -> None:
            for v in items:
                if isinstance(v, list):
                    walk(v)
                else:
                    flat.append(v)

        walk(value)
        return flat
    return [value]


def _strings_in(item: object) -> Iterable[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, dict):
        for value in item.values():
            yield from _strings_in(value)
    elif isinstance(item, list):
        for value in item:
            yield from _strings_in(value)
    elif item is not None:
        yield ruby_str(item)


def _alias_arity(alias: list[object]) -> int:
    tokens: set[str] = set()
    for template in alias:
        for text in _strings_in(template):
            tokens.update(_ALIAS_ARG_RE.findall(text))
    return len(tokens)


def _replace_args(item: object, args: list[object]) -> object:
    if isinstance(item, str):
        for index, arg in enumerate(args, start=1):
            item = item.replace(f"@{index}", ruby_str(arg))
        return item
    if isinstance(item, dict):
        return {key: _replace_args(value, args) for key, value in item.items()}
    if isinstance(item, list):
        return [_replace_args(value, args) for value in item]
    return item


# --------------------------------------------------------------------- macrosteps


def _malformed(section: str, detail: str) -> RecipeError:
    return RecipeError(f"Malformed yaml recipe in section: {section} ({detail})")


def _parse_microstep(name: str, body: list[object], source: str) -> _RawMicrostep:
    policy = CheckpointPolicy.USE_CACHE
    commands: list[object] = []
    for item in body:
        if isinstance(item, dict) and len(item) == 1 and "on_checkpoint" in item:
            policy = CheckpointPolicy.parse(item["on_checkpoint"])
        else:
            commands.append(item)
    return _RawMicrostep(name=name, commands=commands, policy=policy, source=source)


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
    """Run the strict pipeline on a loaded recipe.

    Args:
        loaded: the recipe merged with its parents.
        options: command-line inputs (globals, build path, checkpointing...).
        cwd: the workspace root.

    Returns:
        The resolved recipe, every microstep with its id.

    Raises:
        RecipeError: unknown step, variable or microstep, alias arity, bad hooks...
        MissingFileError: a step, aliases or env file is missing.
        YamlError: a step file is not valid YAML.
    """
    resolver = _Resolver(loaded, options, cwd)
    resolver.resolve_globals()
    globals_ = resolver.globals
    kameleon_cwd = ruby_str(globals_.get("kameleon_cwd"))
    resolver.load_aliases()
    resolver.load_env()
    env_texts = [_read_text(path) for path in resolver.env_files]
    contexts = {
        name: dataclasses.replace(
            _context_spec(name, globals_, kameleon_cwd, loaded.abspath),
            env_script=render_env(env_texts, name),
        )
        for name in ContextName
    }
    checkpoint = _load_checkpoint(resolver)
    include_steps = resolver.include_steps()

    sections: dict[str, list[_RawMacrostep]] = {}
    for section in SECTIONS:
        sections[section] = [
            _load_macrostep(resolver, section, entry, include_steps)
            for entry in loaded.sections.get(section, [])
        ]
        _apply_edits(sections[section], section, loaded)

    built = _build_sections(resolver, sections)
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
            data=tuple(resolver.data_files),
        ),
        cli_globals=dict(options.cli_globals),
        warnings=tuple(resolver.warnings),
    )


def _load_checkpoint(resolver: _Resolver) -> dict[str, tuple[Command, ...]]:
    value = resolver.loaded.checkpoint
    if value is None:
        return {}
    source = resolver.loaded.abspath
    if isinstance(value, dict):
        data: object = value
    else:
        name = ruby_str(value)
        path = resolver.steps_dirs.find("checkpoints", name)
        if path is None:
            raise MissingFileError(
                f"Checkpoint file '{name}' of recipe '{source}' is in no steps/checkpoints/ "
                "directory"
            )
        resolver.step_files.append(path)
        source = path
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError(
            f"{source}: a checkpoint mechanism maps hooks (create, apply...) to commands"
        )
    missing = [hook for hook in _REQUIRED_HOOKS if hook not in data]
    if missing:
        raise RecipeError(
            f"{source}: the checkpoint mechanism lacks the hook(s) {', '.join(missing)}; "
            f"it needs {', '.join(_REQUIRED_HOOKS)} (and optionally enabled?)"
        )
    lookup = lookup_in(resolver.globals)
    hooks: dict[str, tuple[Command, ...]] = {}
    for hook in CHECKPOINT_HOOKS:
        if hook not in data:
            continue
        items = _as_command_list(data[hook], hook, source)
        commands: list[Command] = []
        for item in items:
            for raw in resolver.expand(item, source):
                commands.append(resolver.resolve_command(raw, source, hook, lookup))
        hooks[hook] = tuple(commands)
    return hooks


def _load_macrostep(
    resolver: _Resolver, section: str, entry: SectionItem, include_steps: list[str]
) -> _RawMacrostep:
    item = entry.item
    if isinstance(item, str):
        name, args = item, None
    elif isinstance(item, dict) and len(item) == 1:
        ((raw_name, args),) = item.items()
        name = ruby_str(raw_name)
    else:
        raise _malformed(section, f"entry {item!r} in {entry.origin}")
    name = resolver.nonstrict(name)
    if _is_embedded(args):
        assert isinstance(args, list)
        body: list[object] = []
        for arg in args:
            if not isinstance(arg, dict):
                raise _malformed(section, f"item {arg!r} of embedded step '{name}'")
            body.extend({k: v} for k, v in arg.items())
        microsteps, variables = _parse_step_body(body, entry.origin)
        return _RawMacrostep(name, entry.origin, microsteps, variables, [])
    if args is not None and not isinstance(args, list):
        raise _malformed(section, f"arguments of step '{name}' must be a list")
    path = resolver.steps_dirs.find_step(section, name, include_steps)
    if path is None:
        raise RecipeError(
            f"Step {name} not found (searched {section}/{name}.yaml in the steps "
            f"directories of {resolver.loaded.abspath})"
        )
    resolver.step_files.append(path)
    data = read_yaml(path)
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
            raise _malformed(section, f"argument {arg!r} of step '{name}'")
    if selection:
        by_name = {m.name: m for m in microsteps}
        chosen = []
        for wanted in selection:
            if wanted not in by_name:
                raise RecipeError(f"Can't find microstep '{wanted}' in macrostep file '{path}'")
            chosen.append(by_name[wanted])
        microsteps = chosen
    return _RawMacrostep(name, path, microsteps, variables, overrides)


def _apply_edits(macrosteps: list[_RawMacrostep], section: str, loaded: LoadedRecipe) -> None:
    """Put the microsteps defined outside the files (notebook cells) in place."""
    for (edit_section, macrostep_name), bodies in loaded.edits.items():
        if edit_section != section:
            continue
        target = next((m for m in macrosteps if m.name == macrostep_name), None)
        if target is None:
            target = _RawMacrostep(macrostep_name, loaded.abspath, [], [], [])
            macrosteps.append(target)
        for name, body in bodies.items():
            microstep = _parse_microstep(name, body, loaded.abspath)
            index = next((i for i, m in enumerate(target.microsteps) if m.name == name), None)
            if index is None:
                target.microsteps.append(microstep)
            else:
                target.microsteps[index] = microstep


def _step_lookup(resolver: _Resolver, macrostep: _RawMacrostep) -> Callable[[str], str | None]:
    globals_ = resolver.globals
    values: dict[str, object] = {}
    order: list[str] = []
    for key, default in macrostep.variables:
        values[key] = globals_.get(key, default) if key in globals_ else default
        order.append(key)
    for key, value in macrostep.overrides:
        values[key] = value
        if key not in order:
            order.append(key)
    resolved: dict[str, object] = {}
    for key in order:
        value = values[key]
        text = psych.dump(value)
        if VARIABLE_RE.search(text) is not None:
            lookup = lookup_in(globals_, resolved)
            text = substitute(
                text,
                _strict(lookup, macrostep.path),
                source=macrostep.path,
                on_unbraced=resolver.unbraced,
            )
            value = parse_yaml(text, source=macrostep.path)
        resolved[key] = value
    return lookup_in(resolved, globals_)


def _build_sections(
    resolver: _Resolver, sections: Mapping[str, list[_RawMacrostep]]
) -> list[tuple[str, list[_BuiltMacrostep]]]:
    section_init = {s: _BuiltMacrostep(f"_init_{s}", None) for s in SECTIONS}
    section_clean = {s: _BuiltMacrostep(f"_clean_{s}", None) for s in SECTIONS}
    result: list[tuple[str, list[_BuiltMacrostep]]] = []
    for section in SECTIONS:
        built_steps: list[_BuiltMacrostep] = []
        for macrostep in sections[section]:
            lookup = _step_lookup(resolver, macrostep)
            target = _BuiltMacrostep(macrostep.name, macrostep.path)
            for microstep in macrostep.microsteps:
                commands: list[Command] = []
                for item in microstep.commands:
                    for raw in resolver.expand(item, microstep.source):
                        command = resolver.resolve_command(
                            raw, microstep.source, microstep.name, lookup
                        )
                        hook = _HOOK_RE.match(command.key)
                        if hook is None:
                            commands.append(command)
                            continue
                        _attach_hook(
                            command,
                            hook,
                            microstep,
                            target,
                            section_init,
                            section_clean,
                            microstep.source,
                        )
                target.microsteps.append(_Built(microstep.name, commands, microstep.policy))
            built_steps.append(target)
        result.append((section, built_steps))
    return [
        (section, [section_init[section], *steps, section_clean[section]])
        for section, steps in result
    ]


def _attach_hook(
    command: Command,
    hook: re.Match[str],
    microstep: _RawMicrostep,
    macrostep: _BuiltMacrostep,
    section_init: Mapping[str, _BuiltMacrostep],
    section_clean: Mapping[str, _BuiltMacrostep],
    source: str,
) -> None:
    target_section, kind = hook.group(1), hook.group(2)
    if target_section is not None and target_section not in SECTIONS:
        raise RecipeError(
            f"Invalid command: '{command.key}' in microstep "
            f"'{microstep.name}' of {source} (sections are {', '.join(SECTIONS)})"
        )
    if not isinstance(command.value, tuple):
        raise RecipeError(
            f"Invalid {command.key} arguments in microstep '{microstep.name}' "
            f"of {source}: expected a list of commands"
        )
    if target_section is None:
        holder = macrostep
    else:
        holder = (section_init if kind == "init" else section_clean)[target_section]
    existing = holder.init if kind == "init" else holder.clean
    new = _Built(f"_{kind}_{len(existing)}_{microstep.name}", list(command.value), microstep.policy)
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
    finished: dict[int, Microstep] = {}
    for order, ((section, macrostep, micro), step_id, slug) in enumerate(
        zip(flat, ids, slugs, strict=True), start=1
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
                        init=tuple(finished[id(x)] for x in m.init),
                        microsteps=tuple(finished[id(x)] for x in m.microsteps),
                        clean=tuple(finished[id(x)] for x in m.clean),
                    )
                    for m in macrosteps
                ),
            )
        )
    return tuple(sections)
