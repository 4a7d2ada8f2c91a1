"""``kameleon lint``'s reading part: load each recipe, gather its files, run the checks.

The recipe is loaded and resolved by the same loader and resolver as a build
(:mod:`kameleon_nb.engine.recipes`); what they find (the extend chain, the steps
directories, the step, aliases and checkpoint files, the microsteps used) tells
:mod:`kameleon_nb.core.lint` what to check and with which names. A file the loader
cannot read is one finding with the loader's own message.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from kameleon_nb.core import lint
from kameleon_nb.core.lint import Document, FileKind, Finding
from kameleon_nb.core.loader import LoadedRecipe, parse_yaml, read_bytes, read_text
from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.core.resolve import (
    RecipeLookups,
    ResolveOptions,
    builtin_globals,
    recipe_lookups,
)
from kameleon_nb.core.variables import UndefinedVariableError
from kameleon_nb.engine.recipes import BUILTIN_RECIPES_DIR, BUILTIN_STEPS_DIR, load, resolve
from kameleon_nb.errors import KameleonError, MissingFileError, UnreadableFileError, YamlError

__all__ = ["SCHEMA_DIR", "LintReport", "lint_recipes", "schema", "schema_text"]

log = logging.getLogger(__name__)

#: Where the JSON Schemas ship (``kameleon schema`` prints them).
SCHEMA_DIR = str(Path(__file__).resolve().parent.parent / "data" / "schema")

# A workspace directory with more files than this is not scanned for recipes (the
# unreachable-step-file check then trusts every step file).
_MAX_SCANNED_FILES = 20000
_MAX_REFERENCE_BYTES = 1 << 20
_RECIPE_RE = re.compile(r"^(extend|bootstrap|setup|export)[ \t]*:", re.M)
_NOT_STEP_DIRS = ("aliases", "checkpoints", "env", "data", "global")


def schema_text(kind: FileKind) -> str:
    """The JSON Schema of one kind of file, as shipped."""
    return (Path(SCHEMA_DIR) / f"{kind.value}.schema.json").read_text(encoding="utf-8")


@cache
def schema(kind: FileKind) -> Mapping[str, object]:
    """The JSON Schema of one kind of file, parsed."""
    loaded: Mapping[str, object] = json.loads(schema_text(kind))
    return loaded


@dataclass(slots=True)
class LintReport:
    """What ``kameleon lint`` found: the findings (sorted, no duplicates) and the count."""

    findings: list[Finding] = field(default_factory=list)
    recipes: int = 0


def lint_recipes(
    paths: Sequence[str], *, cli_globals: Mapping[str, str] | None = None, cwd: str | None = None
) -> LintReport:
    """Lint recipes: every finding of every recipe, each once.

    Raises:
        MissingFileError: a recipe file does not exist (or is a directory).
        UnreadableFileError: a recipe file cannot be read.
    """
    linter = _Linter(os.path.abspath(cwd or os.getcwd()), dict(cli_globals or {}))
    found: set[Finding] = set()
    for path in paths:
        found.update(linter.lint(path))
    return LintReport(sorted(found), len(paths))


class _Linter:
    """One lint run; files read and directories scanned are shared between recipes."""

    def __init__(self, cwd: str, cli_globals: dict[str, str]) -> None:
        self.cwd = cwd
        self.cli_globals = cli_globals
        self._documents: dict[str, Document | KameleonError] = {}
        self._texts: dict[str, str] = {}
        self._scans: dict[str, list[str]] = {}
        self._step_files: dict[str, dict[str, str]] = {}
        self._variables: dict[str, frozenset[str]] = {}

    # files ---------------------------------------------------------------------
    def shown(self, path: str) -> str:
        relative = os.path.relpath(path, self.cwd)
        return path if relative.startswith("..") else relative

    def document(self, path: str) -> Document | KameleonError:
        """A file's nodes, or the loader's error for it."""
        if path not in self._documents:
            try:
                text = read_text(path)
                parse_yaml(text, source=path)
                self._documents[path] = lint.compose(text, self.shown(path))
            except KameleonError as err:
                self._documents[path] = err
        return self._documents[path]

    def text(self, path: str) -> str:
        if path not in self._texts:
            try:
                raw = read_bytes(path)
            except KameleonError:
                raw = b""
            self._texts[path] = raw[:_MAX_REFERENCE_BYTES].decode("utf-8", errors="replace")
        return self._texts[path]

    def error_finding(self, err: KameleonError, fallback: str) -> Finding:
        """The loader's error as one finding, where it says it is."""
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = err.where if isinstance(err, YamlError) and err.where else ""
        match = re.fullmatch(r"(.*):(\d+):(\d+)", where)
        if match and os.path.isfile(match.group(1)):
            return Finding(
                self.shown(match.group(1)),
                int(match.group(2)),
                int(match.group(3)),
                "yaml",
                message,
            )
        if not os.path.isfile(where):  # a text substitution made (Psych's ``<unknown>``)
            where = fallback
        return Finding(self.shown(where), 1, 1, _error_key(err), message)

    def undefined_variable(
        self, err: UndefinedVariableError, loaded: LoadedRecipe, fallback: str
    ) -> Finding:
        """An undefined variable, at its first use in the file that uses it."""
        finding = self.error_finding(err, fallback)
        known = [*loaded.global_vars, *self.cli_globals, *builtin_globals("", "", "")]
        line, column = 1, 1
        if os.path.isfile(err.source):
            text = self.text(err.source)
            use = re.search(
                r"\$\$(\{" + re.escape(err.name) + r"\}|" + re.escape(err.name) + r"\b)", text
            )
            if use is not None:
                line = text.count("\n", 0, use.start()) + 1
                column = use.start() - (text.rfind("\n", 0, use.start()) + 1) + 1
            path = self.shown(err.source)
        else:
            path = finding.path
        return Finding(
            path,
            line,
            column,
            err.name,
            f"undefined variable: Kameleon stops ('variable $${{{err.name}}} not found in local "
            f"or global'); define it under 'global:' or pass -g {err.name}:VALUE",
            lint.did_you_mean(err.name, known),
        )

    # one recipe ----------------------------------------------------------------
    def lint(self, path: str) -> list[Finding]:
        abspath = os.path.normpath(os.path.join(self.cwd, os.path.expanduser(path)))
        if not os.path.exists(abspath) and not abspath.endswith(".yaml"):
            abspath += ".yaml"
        read_bytes(abspath)  # a recipe that cannot be read is an error, not a finding
        findings: list[Finding] = []
        try:
            loaded = load(path, cli_globals=self.cli_globals, cwd=self.cwd)
        except KameleonError as err:
            findings.append(self.error_finding(err, abspath))
            document = self.document(abspath)
            if isinstance(document, Document) and isinstance(document.root, yaml.MappingNode):
                findings.extend(self.check_file(abspath, FileKind.RECIPE))
            return findings
        for recipe_file in loaded.chain:
            findings.extend(self.check_file(recipe_file, FileKind.RECIPE))
        lookups: RecipeLookups | None = None
        try:
            lookups = recipe_lookups(loaded, self.options(), cwd=self.cwd)
        except KameleonError:
            log.debug("lookups of %s failed; the resolution reports it", abspath)
        steps: dict[str, set[str] | None] = {}
        entry_findings = self.check_entries(loaded, lookups, steps) if lookups else []
        findings.extend(entry_findings)
        resolved: ResolvedRecipe | None = None
        try:
            resolved = resolve(
                loaded, cli_globals=self.cli_globals, cwd=self.cwd, build_dir_uuid=False
            )
        except UndefinedVariableError as err:
            findings.append(self.undefined_variable(err, loaded, abspath))
        except KameleonError as err:
            if not _reported(err, entry_findings):
                findings.append(self.error_finding(err, abspath))
        if lookups is None:
            return findings
        if resolved is not None:
            _add_resolved_steps(resolved, loaded, steps)
        findings.extend(self.check_support_files(lookups))
        findings.extend(self.check_steps(steps, lookups))
        if resolved is not None:
            findings.extend(self.check_unreachable(loaded, lookups, resolved))
        findings.extend(self.check_globals(loaded, lookups))
        return findings

    def options(self) -> ResolveOptions:
        return ResolveOptions(
            cli_globals=self.cli_globals,
            build_path=os.path.join(self.cwd, "build"),
            builtin_steps_dirs=(BUILTIN_STEPS_DIR,),
        )

    def commands(
        self, document: Document, lists: Sequence[yaml.Node | None], aliases: frozenset[str]
    ) -> list[Finding]:
        return lint.command_findings(document, lists, aliases, shipped=_shipped_aliases())

    def check_file(self, path: str, kind: FileKind) -> list[Finding]:
        document = self.document(path)
        if isinstance(document, KameleonError):
            return [self.error_finding(document, path)]
        return lint.schema_findings(document, schema(kind), kind)

    def check_entries(
        self, loaded: LoadedRecipe, lookups: RecipeLookups, steps: dict[str, set[str] | None]
    ) -> list[Finding]:
        """Step names and microstep selections of the entries the build uses.

        The step files found go into ``steps`` with the microsteps selected (None:
        all), so their commands are checked even when the resolution fails later.
        """
        findings: list[Finding] = []
        aliases = frozenset(lookups.aliases)
        used = {
            (item.origin, section, item.index)
            for section, items in loaded.sections.items()
            for item in items
        }
        checkpoint_origin = None  # the inline parts in force: the first file that has them
        for origin in dict.fromkeys(loaded.chain):
            document = self.document(origin)
            if isinstance(document, KameleonError):
                continue
            in_force = ["aliases"] if origin == loaded.aliases_origin else []
            if checkpoint_origin is None and document.at(("checkpoint",))[0] is not None:
                checkpoint_origin = origin
                in_force.append("checkpoint")
            lists = lint.recipe_command_lists(document, FileKind.RECIPE, in_force)
            findings.extend(self.commands(document, lists, aliases))
            for section, index, node, name, arguments in lint.section_entries(document):
                if (origin, section, index) not in used or name == "@base":
                    continue
                findings.extend(lint.misplaced_policy_findings(document, arguments))
                embedded = lint.embedded_microsteps(arguments)
                if embedded is not None:
                    findings.extend(self.commands(document, embedded, aliases))
                elif "$$" not in name:
                    findings.extend(
                        self.check_entry(document, (section, node, name, arguments), lookups, steps)
                    )
        return findings

    def check_entry(
        self,
        document: Document,
        entry: tuple[str, yaml.Node, str, yaml.Node | None],
        lookups: RecipeLookups,
        steps: dict[str, set[str] | None],
    ) -> list[Finding]:
        section, node, name, arguments = entry
        try:
            step_file = lookups.steps_dirs.find_step(section, name, list(lookups.include_steps))
        except KameleonError:
            return []  # the resolution reports it
        if step_file is None:
            known = {
                path: n for d in lookups.steps_dirs.dirs for path, n in self.step_files(d).items()
            }
            elsewhere = sorted(path for path, n in known.items() if n == name)
            if elsewhere:
                message = (
                    f"unknown step: {self.shown(elsewhere[0])} is not where Kameleon looks for "
                    f"a {section} step (add its directory to include_steps?); Kameleon stops: "
                    f"'Step {name} not found'"
                )
                suggestion = ""
            else:
                message = (
                    f"unknown step: no {section}/{name}.yaml in the steps directories; "
                    f"Kameleon stops: 'Step {name} not found'"
                )
                suggestion = lint.did_you_mean(name, known.values())
            return [document.finding(node, name, message, suggestion)]
        selection = [
            item
            for item in (arguments.value if isinstance(arguments, yaml.SequenceNode) else [])
            if isinstance(item, yaml.ScalarNode)
        ]
        if step_file in steps or not selection:
            steps[step_file] = None  # every microstep
        step_document = self.document(step_file)
        if isinstance(step_document, KameleonError) or not selection:
            return []
        names = [m for m, _, _ in lint.step_file_microsteps(step_document)]
        if step_file not in steps:
            steps[step_file] = {str(item.value) for item in selection}
        return [
            document.finding(
                item,
                str(item.value),
                f"unknown microstep of {self.shown(step_file)} (Kameleon stops: "
                "'Can't find microstep')",
                lint.did_you_mean(str(item.value), names),
            )
            for item in selection
            if str(item.value) not in names
        ]

    def check_support_files(self, lookups: RecipeLookups) -> list[Finding]:
        """The aliases and checkpoint files: their schema and their commands."""
        findings: list[Finding] = []
        aliases = frozenset(lookups.aliases)
        files = [(p, FileKind.ALIASES) for p in lookups.alias_files]
        if lookups.checkpoint_file is not None:
            files.append((lookups.checkpoint_file, FileKind.CHECKPOINT))
        for path, kind in files:
            findings.extend(self.check_file(path, kind))
            document = self.document(path)
            if not isinstance(document, KameleonError):
                lists = lint.recipe_command_lists(document, kind)
                findings.extend(self.commands(document, lists, aliases))
        return findings

    def check_steps(
        self, steps: Mapping[str, set[str] | None], lookups: RecipeLookups
    ) -> list[Finding]:
        """The step files the build loads: their schema, and the used microsteps' commands."""
        findings: list[Finding] = []
        aliases = frozenset(lookups.aliases)
        for path, names in steps.items():
            findings.extend(self.check_file(path, FileKind.STEPS))
            document = self.document(path)
            if isinstance(document, KameleonError):
                continue
            findings.extend(lint.misplaced_policy_findings(document, document.root))
            wanted = None if names is None else frozenset(names)
            lists = [node for _, _, node in lint.step_file_microsteps(document, wanted)]
            findings.extend(self.commands(document, lists, aliases))
        return findings

    # the world of a recipe -------------------------------------------------------
    def steps_dirs(self, lookups: RecipeLookups) -> list[str]:
        builtin = os.path.normpath(BUILTIN_STEPS_DIR)
        return [d for d in lookups.steps_dirs.dirs if os.path.normpath(d) != builtin]

    def step_files(self, steps_dir: str) -> dict[str, str]:
        """The step files (YAML lists) of a steps directory, to their names."""
        if steps_dir not in self._step_files:
            found: dict[str, str] = {}
            for path in self.files_under(steps_dir, skip_top=_NOT_STEP_DIRS):
                if not path.endswith(".yaml"):
                    continue
                document = self.document(path)
                if isinstance(document, Document) and isinstance(document.root, yaml.SequenceNode):
                    found[path] = os.path.basename(path)[: -len(".yaml")]
            self._step_files[steps_dir] = found
        return self._step_files[steps_dir]

    def files_under(self, directory: str, *, skip_top: Iterable[str] = ()) -> list[str]:
        key = f"{directory}\0{','.join(skip_top)}"
        if key not in self._scans:
            files: list[str] = []
            skipped = set(skip_top)
            for root, dirs, names in os.walk(directory):
                if root == directory:
                    dirs[:] = [d for d in dirs if d not in skipped]
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names))
                if len(files) > _MAX_SCANNED_FILES:
                    break
            self._scans[key] = files
        return self._scans[key]

    def workspace_recipes(self, directory: str) -> list[str] | None:
        """The recipes under a directory, steps directories included (None: too many)."""
        key = f"recipes\0{directory}"
        if key not in self._scans:
            recipes: list[str] = []
            count = 0
            for root, dirs, names in os.walk(directory):
                # recipes in steps directories too (backends a recipe extends); not in
                # hidden directories (.git), build directories (a rootfs holds thousands
                # of files) or other file systems (a rootfs's /proc, still mounted)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if (d == ".steps" or not d.startswith("."))
                    and d != "build"
                    and not os.path.ismount(os.path.join(root, d))
                )
                count += len(names)
                if count > _MAX_SCANNED_FILES:
                    self._scans[key] = ["\0too many"]
                    break
                recipes.extend(
                    os.path.join(root, n)
                    for n in sorted(names)
                    if n.endswith(".yaml") and _RECIPE_RE.search(self.text(os.path.join(root, n)))
                )
            else:
                self._scans[key] = recipes
        found = self._scans[key]
        return None if found == ["\0too many"] else found

    def check_unreachable(
        self, loaded: LoadedRecipe, lookups: RecipeLookups, recipe: ResolvedRecipe
    ) -> list[Finding]:
        """Step files of the recipe's steps directories that no recipe there uses."""
        findings: list[Finding] = []
        used_files = frozenset(os.path.normpath(p) for p in recipe.files.steps)
        recipe_dirs = {os.path.dirname(path) for path in loaded.chain}
        for steps_dir in self.steps_dirs(lookups):
            owner = os.path.dirname(steps_dir)
            if owner not in recipe_dirs:
                continue  # a shared library of steps (a collection's steps/): not ours to judge
            sources = self.workspace_recipes(owner)
            if sources is None:
                continue
            names: list[str] = []
            for source in [*sources, *loaded.chain]:
                document = self.document(source)
                if isinstance(document, Document):
                    names.extend(name for _, _, _, name, _ in lint.section_entries(document))
            step_files = {
                self.shown(path): name for path, name in self.step_files(steps_dir).items()
            }
            shown_used = frozenset(self.shown(p) for p in used_files)
            findings.extend(
                lint.unused_step_file_findings(step_files, shown_used, names, self.shown(owner))
            )
        return findings

    def check_globals(self, loaded: LoadedRecipe, lookups: RecipeLookups) -> list[Finding]:
        """Globals of the recipe file that nothing in its world uses."""
        document = self.document(loaded.abspath)
        if isinstance(document, KameleonError):
            return []
        texts: list[str] = [self.text(p) for p in loaded.chain]
        texts.extend(self.text(p) for p in loaded.include_files)
        step_variables: set[str] = set()
        directories = [*lookups.steps_dirs.dirs, BUILTIN_RECIPES_DIR]
        for steps_dir in directories:
            texts.extend(self.text(p) for p in self.files_under(steps_dir))
            step_variables.update(self.step_variables(steps_dir))
        # the recipes that may extend it: the workspace's (or those beside it, outside)
        roots = {self.cwd if _inside(r, self.cwd) else os.path.dirname(r) for r in loaded.chain}
        roots.update(os.path.dirname(d) for d in self.steps_dirs(lookups))
        for root in sorted(roots):
            sources = self.workspace_recipes(root)
            if sources is None:
                return []  # too large a tree to know every use: say nothing
            texts.extend(self.text(source) for source in sources)
        referenced = lint.referenced_variables(texts)
        return lint.unused_global_findings(document, referenced, frozenset(step_variables))

    def step_variables(self, steps_dir: str) -> frozenset[str]:
        """Variables the step files of a directory declare (``- name: value``)."""
        if steps_dir not in self._variables:
            names: set[str] = set()
            for path in self.step_files(steps_dir):
                document = self.document(path)
                if isinstance(document, Document):
                    names.update(lint.step_variable_names(document))
            self._variables[steps_dir] = frozenset(names)
        return self._variables[steps_dir]


def _add_resolved_steps(
    recipe: ResolvedRecipe, loaded: LoadedRecipe, steps: dict[str, set[str] | None]
) -> None:
    """The step files the resolution loaded that the entries' check did not find.

    Those are the macrosteps whose name has a variable; a microstep that only
    declared hooks is gone from its macrostep, so all of the file is checked then.
    """
    for section in recipe.sections:
        for macrostep in section.macrosteps:
            origin = macrostep.origin
            if macrostep.internal or origin is None or origin in loaded.chain:
                continue
            if origin not in steps:
                steps[origin] = None


@cache
def _shipped_aliases() -> Mapping[str, str]:
    """The aliases of kameleon_nb's own aliases files, to their file names."""
    shipped: dict[str, str] = {}
    directory = Path(BUILTIN_STEPS_DIR) / "aliases"
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            shipped.update(dict.fromkeys(map(str, data), path.name))
    return shipped


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


_ENTRY_ERROR_RE = re.compile(r"Step (.+?) not found|Can't find microstep '(.+?)'")


def _reported(err: KameleonError, findings: Iterable[Finding]) -> bool:
    """Whether the checks of the entries already report the resolution's error.

    >>> _reported(KameleonError("Step tool not found (searched ...)"), [])
    False
    """
    match = _ENTRY_ERROR_RE.match(str(err))
    if match is None:
        return False
    name = match.group(1) or match.group(2)
    return any(f.key == name and f.message.startswith("unknown ") for f in findings)


def _error_key(err: KameleonError) -> str:
    if isinstance(err, (MissingFileError, UnreadableFileError)):
        return "file"
    if isinstance(err, YamlError):
        return "yaml"
    return "load"
