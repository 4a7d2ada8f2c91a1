"""``kameleon lint``'s pure part: findings about recipe files, with their positions.

Kameleon accepts a lot silently: an unknown top-level key (``setpu:``) drops a whole
section, an unknown command (``exce_in:``) only warns when it runs, an unknown
``on_checkpoint`` value behaves like ``use_cache``. The linter reports each such
spot as a :class:`Finding`: the file, line and column, the key, what is wrong, and
the closest known name.

The structure of each file is checked against the JSON Schemas shipped in
``kameleon_nb/data/schema/`` (the ones ``kameleon schema`` prints for editors); the
checks that need the resolved recipe (unknown commands and aliases, unused globals,
step names, microstep selections, step files nothing uses) get what the loader and
the resolver found from :mod:`kameleon_nb.engine.lint`, which reads the files.

Positions come from the YAML nodes of the same parser the loader uses
(:class:`~kameleon_nb.core.psych_load.PsychLoader`): a file that parses for the
loader has nodes here, and one that does not is reported with the loader's error.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import yaml
from jsonschema import Draft202012Validator, ValidationError

from kameleon_nb.core.psych_load import PsychLoader, tokenize
from kameleon_nb.core.rubytypes import Symbol

__all__ = [
    "BUILTIN_COMMANDS",
    "MACHINERY_GLOBALS",
    "Document",
    "FileKind",
    "Finding",
    "command_findings",
    "compose",
    "did_you_mean",
    "embedded_microsteps",
    "format_findings",
    "key_text",
    "misplaced_policy_findings",
    "recipe_command_lists",
    "referenced_variables",
    "schema_findings",
    "section_entries",
    "step_file_microsteps",
    "step_name_matches",
    "step_variable_names",
    "summary",
    "unused_global_findings",
    "unused_step_file_findings",
]

#: The commands Kameleon runs itself (everything else is an alias or unknown).
BUILTIN_COMMANDS: tuple[str, ...] = (
    "exec_local",
    "exec_out",
    "exec_in",
    "pipe",
    "rescue",
    "test",
    "group",
    "breakpoint",
    "reload_context",
)
_LIST_COMMANDS = frozenset({"pipe", "rescue", "test", "group"})
_HOOKS: tuple[str, ...] = (
    "on_init",
    "on_clean",
    *(f"on_{s}_{k}" for s in ("bootstrap", "setup", "export") for k in ("init", "clean")),
)
#: Aliases that recipe collections conventionally define (Kameleon has none built in).
_CONVENTIONAL_ALIAS_RE = re.compile(
    r"(local|out|in)2(local|out|in)|(write|append|check_cmd|umount|download_file)_(local|out|in)"
)

#: Globals the machinery reads by name: never "unused" even if no text mentions them.
MACHINERY_GLOBALS = frozenset(
    {
        "in_context",
        "out_context",
        "include_steps",
        "include",
        "checkpointing_enabled",
        "persistent_cache",
        "proxy_local",
        "proxy_out",
        "proxy_in",
        "rootfs",  # kameleon_nb's builder copies the tree at $${rootfs} back to the host
    }
)

_VARIABLE_RE = re.compile(r"\$\$\{?([a-zA-Z0-9_-]+)")
_VARIABLE_REF_RE = re.compile(r"\$\$(?:\{[a-zA-Z0-9_-]+\}|[a-zA-Z0-9_-]+)")


class FileKind(enum.Enum):
    """What a recipe file is, and so which schema it follows."""

    RECIPE = "recipe"
    STEPS = "steps"
    ALIASES = "aliases"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True, order=True, slots=True)
class Finding:
    """One problem, where it is, and the closest known name.

    ``str()`` is the line ``kameleon lint`` prints:
    ``path:line:col: key: message (did you mean 'X'?)``.
    """

    path: str
    line: int
    column: int
    key: str
    message: str
    suggestion: str = ""

    def __str__(self) -> str:
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        return f"{self.path}:{self.line}:{self.column}: {self.key}: {self.message}{hint}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """The closest candidate to a misspelt name, or ``""``.

    >>> did_you_mean("exce_in", ["exec_in", "exec_out"]), did_you_mean("zzz", ["exec_in"])
    ('exec_in', '')
    """
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else ""


def summary(findings: Sequence[Finding], recipes: int) -> str:
    """The last line of ``kameleon lint``.

    >>> summary([], 2)
    '2 recipes checked: no findings'
    """
    checked = f"{recipes} recipe{'s' if recipes != 1 else ''} checked"
    if not findings:
        return f"{checked}: no findings"
    files = len({f.path for f in findings})
    return (
        f"{checked}: {len(findings)} finding{'s' if len(findings) != 1 else ''} "
        f"in {files} file{'s' if files != 1 else ''}"
    )


# ------------------------------------------------------------------ documents


Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML file as nodes (for positions) and as JSON data (for the schema)."""

    path: str
    root: yaml.Node | None

    def data(self) -> object:
        """The document as JSON data: mappings with text keys, scalars as Psych reads them."""
        return _json(self.root, 0) if self.root is not None else None

    def at(self, where: Path) -> tuple[yaml.Node | None, yaml.Node | None]:
        """The node at a JSON path, and the key node that names it (if in a mapping)."""
        node, key = self.root, None
        for step in where:
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                pair = _last_pair(node, step)
                if pair is None:
                    return None, None
                key, node = pair
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return None, None
                key, node = None, node.value[step]
            else:
                return None, None
        return node, key

    def finding(
        self, node: yaml.Node | None, key: str, message: str, suggestion: str = ""
    ) -> Finding:
        """A finding at a node (line 1, column 1 without one)."""
        line, column = (1, 1) if node is None else _position(node)
        return Finding(self.path, line, column, key, message, suggestion)


def compose(text: str, path: str) -> Document:
    """The nodes of a YAML text that the loader already read without error."""
    loader = PsychLoader(text)
    try:
        return Document(path, loader.get_single_node())
    except (yaml.YAMLError, RecursionError):  # the loader reports it
        return Document(path, None)
    finally:
        loader.dispose()


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def key_text(node: yaml.Node) -> str:
    """A mapping key as a name (the text of a scalar key)."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return "<complex key>"


def _last_pair(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    found = None
    for key_node, value_node in node.value:
        if key_text(key_node) == key:
            found = (key_node, value_node)  # a duplicate key: the last one wins
    return found


def _scalar(node: yaml.ScalarNode) -> object:
    value: object = node.value
    if not node.style and node.tag.startswith("tag:kameleon-nb:"):
        value = tokenize(node.value) if node.value else None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Symbol):
        return str(value)
    return str(node.value)


def _json(node: yaml.Node, depth: int) -> object:
    if depth > 200:  # the loader refuses deeper documents before we get here
        return None
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_json(child, depth + 1) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        return {key_text(k): _json(v, depth + 1) for k, v in node.value}
    return None


def _pairs(node: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


# --------------------------------------------------------------------- schema


def schema_findings(
    document: Document, schema: Mapping[str, object], kind: FileKind
) -> list[Finding]:
    """What in a file does not follow its schema, one finding per problem.

    Unknown keys and values get the closest known one as a suggestion.
    """
    if document.root is None:
        return []
    validator = Draft202012Validator(schema)
    findings: list[Finding] = []
    for error in validator.iter_errors(document.data()):
        findings.extend(_from_error(document, error, kind))
    return list(dict.fromkeys(findings))  # one per missing hook gives the same finding


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """An ``anyOf`` error's own errors in the branch of the value's type."""
    if error.validator != "anyOf" or not error.context:
        yield error
        return
    relevant = [e for e in error.context if e.validator != "type" or len(e.relative_path) > 0]
    if not relevant:
        yield error
        return
    for sub in relevant:
        yield from _leaf_errors(sub)


def _from_error(document: Document, error: ValidationError, kind: FileKind) -> Iterator[Finding]:
    for leaf in _leaf_errors(error):
        yield from _one_error(document, leaf, kind)


def _context_name(where: Path, kind: FileKind) -> str:
    if kind is FileKind.RECIPE and len(where) == 2 and where[0] == "global":
        return f"{where[1]} setting"
    if kind is FileKind.RECIPE and not where:
        return "recipe key"
    if kind is FileKind.RECIPE and where == ("checkpoint",):
        return "checkpoint hook"
    if kind is FileKind.CHECKPOINT and not where:
        return "checkpoint hook"
    return "key"


def _last_key(where: Path) -> str:
    return next((str(p) for p in reversed(where) if isinstance(p, str)), "")


def _one_error(document: Document, error: ValidationError, kind: FileKind) -> Iterator[Finding]:
    where: Path = tuple(error.absolute_path)
    node, key_node = document.at(where)
    name = _last_key(where)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = [str(k) for k in schema.get("properties", {})]
        what = _context_name(where, kind)
        for extra in error.instance:
            if extra in known:
                continue
            extra_node, _ = document.at((*where, extra))
            pair = _last_pair(node, extra) if isinstance(node, yaml.MappingNode) else None
            position = pair[0] if pair is not None else extra_node
            why = {
                "recipe key": "unknown recipe key: Kameleon ignores it and everything under it",
                "checkpoint hook": "unknown checkpoint hook: Kameleon never runs it",
            }.get(what, f"unknown {what}: Kameleon ignores it")
            yield document.finding(position, extra, why, did_you_mean(extra, known))
        return
    if error.validator == "enum":
        choices = [str(c) for c in _listed(error.validator_value)]
        # as written: ``yes``, ``~``, ``12``, not Python's ``True``, ``None``
        value = node.value if isinstance(node, yaml.ScalarNode) else str(error.instance)
        if name == "on_checkpoint":
            message = (
                f"unknown value '{value}': Kameleon treats it as use_cache "
                f"(one of {', '.join(choices)})"
            )
        else:
            message = f"unknown value '{value}' (one of {', '.join(choices)})"
        yield document.finding(node, name, message, did_you_mean(value, choices))
        return
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        missing = [str(r) for r in _listed(error.validator_value) if r not in present]
        yield document.finding(
            key_node or node, name or kind.value, f"missing {', '.join(missing)}"
        )
        return
    if error.validator in ("type", "anyOf"):
        wanted = error.validator_value
        if error.validator == "anyOf":  # every branch refused the value's type
            wanted = [
                t
                for sub in error.context or []
                for t in (
                    sub.validator_value
                    if isinstance(sub.validator_value, list)
                    else [sub.validator_value]
                )
                if sub.validator == "type"
            ]
        wanted_text = " or ".join(map(str, wanted)) if isinstance(wanted, list) else str(wanted)
        yield document.finding(
            node,
            name or kind.value,
            f"expected {wanted_text.replace('object', 'mapping').replace('array', 'list')}, "
            f"got {_kind_of(error.instance)}",
        )
        return
    if error.validator in ("minProperties", "maxProperties") and isinstance(error.instance, dict):
        yield document.finding(
            node,
            name or kind.value,
            f"expected one key (a one-key mapping), got {len(error.instance)}",
        )
        return
    if error.validator in ("minItems", "maxItems") and isinstance(error.instance, list):
        bounds = {"pipe": "2", "rescue": "2", "test": "2 or 3"}
        expected = bounds.get(name, str(error.validator_value))
        yield document.finding(
            key_node or node,
            name or kind.value,
            f"takes {expected} commands, got {len(error.instance)}",
        )
        return
    yield document.finding(node, name or kind.value, error.message)


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


# ------------------------------------------------------------------- commands


def _command_nodes(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node, yaml.Node | None]]:
    """Each command of a list with its key, its key's node, and its value's node."""
    for item in _items(node):
        if isinstance(item, yaml.ScalarNode):
            yield str(item.value), item, None
        elif isinstance(item, yaml.MappingNode) and len(item.value) == 1:
            key_node, value_node = item.value[0]
            yield key_text(key_node), key_node, value_node


def command_findings(
    document: Document,
    commands: Iterable[yaml.Node | None],
    aliases: Iterable[str],
    *,
    aliases_known: bool = True,
    shipped: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Unknown commands and undefined aliases in lists of commands.

    Args:
        document: the file the lists are in.
        commands: the command lists' nodes (a microstep's, a hook's, an alias's).
        aliases: the alias names the recipe defines.
        aliases_known: False when the recipe's aliases could not be loaded (then
            nothing is reported as an undefined alias).
        shipped: aliases kameleon_nb ships, to the aliases file that defines them.
    """
    alias_names = frozenset(aliases)
    known = (*BUILTIN_COMMANDS, *_HOOKS, "on_checkpoint", *alias_names)
    findings: list[Finding] = []

    def walk(node: yaml.Node | None) -> None:
        for key, key_node, value_node in _command_nodes(node):
            if key in alias_names:
                continue  # an alias's arguments are not commands
            if key in BUILTIN_COMMANDS or key in _HOOKS or key == "on_checkpoint":
                if key in _LIST_COMMANDS or key in _HOOKS:
                    walk(value_node)
                continue
            if not aliases_known:
                continue
            if isinstance(key_node, yaml.ScalarNode) and not key_node.style and " " in key:
                message = (
                    "not a command: a command is '- exec_in: ...' (Kameleon warns "
                    "'Unknown command' and runs nothing)"
                )
            elif key in (shipped or {}):
                message = (
                    "undefined alias: no aliases file of this recipe defines it (kameleon_nb "
                    f"ships one: add 'aliases: {(shipped or {})[key]}'); Kameleon warns "
                    "'Unknown command' and runs nothing"
                )
            elif _CONVENTIONAL_ALIAS_RE.fullmatch(key):
                message = (
                    "undefined alias: no aliases file of this recipe defines it (add "
                    "'aliases: NAME.yaml'); Kameleon warns 'Unknown command' and runs nothing"
                )
            else:
                message = "unknown command: Kameleon warns 'Unknown command' and runs nothing"
            findings.append(document.finding(key_node, key, message, did_you_mean(key, known)))

    for node in commands:
        walk(node)
    return findings


def step_file_microsteps(
    document: Document, wanted: frozenset[str] | None = None
) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """A step file's microsteps: name, name node, commands node (only ``wanted`` ones)."""
    for item in _items(document.root):
        for key_node, value_node in _pairs(item)[:1]:
            name = key_text(key_node)
            if isinstance(value_node, yaml.SequenceNode) and (wanted is None or name in wanted):
                yield name, key_node, value_node


def section_entries(
    document: Document,
) -> Iterator[tuple[str, int, yaml.Node, str, yaml.Node | None]]:
    """A recipe's macrostep entries: section, index, entry node, name, arguments node."""
    for section_key, section_node in _pairs(document.root):
        section = key_text(section_key)
        if section not in ("bootstrap", "setup", "export"):
            continue
        for index, entry in enumerate(_items(section_node)):
            if isinstance(entry, yaml.ScalarNode):
                yield section, index, entry, str(entry.value), None
            elif isinstance(entry, yaml.MappingNode) and entry.value:
                key_node, value_node = entry.value[0]
                yield section, index, key_node, key_text(key_node), value_node


def embedded_microsteps(arguments: yaml.Node | None) -> list[yaml.Node] | None:
    """The command lists of an embedded macrostep's arguments, or None when not embedded."""
    lists = [value for item in _items(arguments) for _, value in _pairs(item)]
    if not any(isinstance(v, yaml.SequenceNode) for v in lists):
        return None
    return [v for v in lists if isinstance(v, yaml.SequenceNode)]


def recipe_command_lists(
    document: Document, kind: FileKind, keys: Iterable[str] = ("aliases", "checkpoint")
) -> list[yaml.Node | None]:
    """The command lists of an aliases file, a checkpoint file or a recipe's inline ones.

    For a recipe, ``keys`` says which inline parts to take (those in force).
    """
    if kind in (FileKind.ALIASES, FileKind.CHECKPOINT):
        return [value for _, value in _pairs(document.root)]
    wanted = frozenset(keys)
    lists: list[yaml.Node | None] = []
    for key_node, value_node in _pairs(document.root):
        if key_text(key_node) in wanted:
            lists.extend(value for _, value in _pairs(value_node))
    return lists


def misplaced_policy_findings(document: Document, items: yaml.Node | None) -> list[Finding]:
    """``on_checkpoint`` written as a macrostep's variable instead of in a microstep.

    Args:
        document: the file.
        items: a step file's root list, or a macrostep entry's arguments.
    """
    return [
        document.finding(
            key_node,
            "on_checkpoint",
            "a step variable here, not a checkpoint policy: Kameleon ignores it (write "
            "'- on_checkpoint: VALUE' inside each microstep)",
        )
        for item in _items(items)
        for key_node, value_node in _pairs(item)
        if key_text(key_node) == "on_checkpoint" and not isinstance(value_node, yaml.SequenceNode)
    ]


# -------------------------------------------------------------------- globals


def referenced_variables(texts: Iterable[str]) -> frozenset[str]:
    r"""Every ``$$name`` and ``$${name}`` in some texts.

    >>> sorted(referenced_variables(["a $${x} b $$y-z", "$$ $(c)"]))
    ['x', 'y-z']
    """
    found: set[str] = set()
    for text in texts:
        if "$$" in text:
            found.update(_VARIABLE_RE.findall(text))
    return frozenset(found)


def unused_global_findings(
    document: Document, referenced: frozenset[str], step_variables: frozenset[str]
) -> list[Finding]:
    """The globals a recipe file defines that nothing uses.

    Args:
        document: the recipe file.
        referenced: every variable any text of the recipe's world mentions (its
            chain, the files of its steps directories, the recipes that extend it).
        step_variables: variables step files declare (a global overrides them).
    """
    findings: list[Finding] = []
    node, _ = document.at(("global",))
    for key_node, _value in _pairs(node):
        name = key_text(key_node)
        if (
            name in referenced
            or name in step_variables
            or name in MACHINERY_GLOBALS
            or name.startswith("kameleon_")
        ):
            continue
        findings.append(
            document.finding(
                key_node,
                name,
                "unused global: nothing this recipe can reach (its parents, steps "
                "directories, aliases, checkpoint, the recipes beside it) uses $${" + name + "}",
                did_you_mean(name, referenced),
            )
        )
    return findings


# ----------------------------------------------------------------- step files


def step_variable_names(document: Document) -> frozenset[str]:
    """The variables a step file declares (``- name: value`` items)."""
    return frozenset(
        key_text(key_node)
        for item in _items(document.root)
        for key_node, value_node in _pairs(item)[:1]
        if not isinstance(value_node, yaml.SequenceNode)
    )


def step_name_matches(name: str, candidate: str) -> bool:
    """Whether a macrostep name as written (maybe with ``$${var}``) can name a step file.

    >>> step_name_matches("$${distrib}_base", "debian_base"), step_name_matches("a", "b")
    (True, False)
    """
    if "$$" not in name:
        return name == candidate
    return fnmatch.fnmatchcase(candidate, _VARIABLE_REF_RE.sub("*", name))


def unused_step_file_findings(
    step_files: Mapping[str, str],
    used_files: frozenset[str],
    used_names: Iterable[str],
    owner: str,
) -> list[Finding]:
    """Step files that no recipe can reach.

    Args:
        step_files: each step file (a YAML list) in the steps directories, to its name.
        used_files: the step files the resolved recipes loaded.
        used_names: every macrostep name the recipes of those directories write.
        owner: the directory whose recipes were searched (for the message).
    """
    names = list(dict.fromkeys(used_names))
    have_files = set(step_files.values())
    missing = [n for n in names if "$$" not in n and n not in have_files]
    findings: list[Finding] = []
    for path, name in sorted(step_files.items()):
        if path in used_files or any(step_name_matches(n, name) for n in names):
            continue
        findings.append(
            Finding(
                path,
                1,
                1,
                name,
                f"unreachable step file: no recipe under {owner} uses a macrostep '{name}'",
                did_you_mean(name, missing),
            )
        )
    return findings


def format_findings(findings: Iterable[Finding]) -> list[str]:
    """The findings' lines, sorted by file, line and column, without duplicates."""
    return [str(f) for f in sorted(set(findings))]
