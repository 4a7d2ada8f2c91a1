"""Templates: the recipes of the repositories, and what ``new`` and ``template`` do with them.

A template is loaded as upstream loads it (``resolve! :strict => false``: an undefined
variable in the globals is not an error), with the repositories directory as the root
its steps directories are searched from. Importing it copies every file it uses into
the workspace at the same path relative to the repositories directory.

``new`` then writes a child recipe from an ERB template (``.NAME.extend.yaml.erb`` next
to the template, else ``.extend.yaml.erb`` in its directory or one above, else
kameleon_nb's default). The ERB is rendered with Jinja2 set to ERB's delimiters
(``<%= expr %>``, ``<% statement %>``): the one shape upstream ships uses only
``<%= name %>`` and ``<%= tpl.relative_path_from_recipe(recipe_path) %>``, which read the
same in both languages.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kameleon_nb.core.model import ResolvedRecipe
from kameleon_nb.engine.filecopy import Report, copy_file
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.errors import KameleonError, RecipeError, TemplateNotFoundError

__all__ = [
    "DEFAULT_EXTEND_ERB",
    "all_files",
    "extend_erb_candidates",
    "import_template",
    "load_template",
    "new_recipe",
    "render_erb",
    "template_erb_path",
]

#: kameleon_nb's default extend template (the same recipe text as upstream's)
DEFAULT_EXTEND_ERB = Path(__file__).resolve().parent.parent / "data" / "erb" / "extend.yaml.erb"


def _with_yaml(name: str) -> str:
    return name if name.endswith(".yaml") else name + ".yaml"


def _not_found(name: str) -> TemplateNotFoundError:
    return TemplateNotFoundError(
        f"Template '{name}' invalid (try --verbose) or not found. To see all templates, "
        "run the command `kameleon template list`"
    )


def load_template(
    repositories: Path,
    workspace: Path,
    name: str,
    cli_globals: Mapping[str, str],
) -> ResolvedRecipe:
    """Load and resolve template ``name`` (``.yaml`` may be omitted), globals non-strictly."""
    return open_recipe(
        str(repositories / _with_yaml(name)),
        cli_globals=cli_globals,
        cwd=str(repositories),
        build_path=str(workspace / "build"),
        build_dir_uuid=False,
        strict_globals=False,
    )


def _load_or_not_found(
    repositories: Path, workspace: Path, name: str, cli_globals: Mapping[str, str], verbose: bool
) -> ResolvedRecipe:
    try:
        return load_template(repositories, workspace, name, cli_globals)
    except KameleonError as err:
        if verbose:
            raise
        raise _not_found(name) from err


def all_files(recipe: ResolvedRecipe) -> list[str]:
    """Every file a recipe uses, in upstream's order: recipes, steps, data, env files."""
    files = recipe.files
    return [files.recipe, *files.parents, *files.steps, *files.data, *files.env]


def _copy_into_workspace(
    recipe: ResolvedRecipe, repositories: Path, workspace: Path, report: Report
) -> None:
    for path in all_files(recipe):
        relative = os.path.relpath(path, repositories)
        copy_file(
            Path(path), workspace / relative, workspace=workspace, keep_mode=True, report=report
        )


def import_template(
    repositories: Path,
    workspace: Path,
    name: str,
    cli_globals: Mapping[str, str],
    *,
    verbose: bool,
    report: Report,
) -> ResolvedRecipe:
    """``template import``: copy the template and every file it uses into the workspace."""
    recipe = _load_or_not_found(repositories, workspace, name, cli_globals, verbose)
    _copy_into_workspace(recipe, repositories, workspace, report)
    return recipe


@dataclass(frozen=True, slots=True)
class _TemplateView:
    """What an extend ERB sees as ``tpl``."""

    path: Path
    repositories: Path
    workspace: Path

    def relative_path_from_recipe(self, recipe_path: str) -> str:
        """The template's path (once imported) relative to the new recipe's directory."""
        imported = self.workspace / os.path.relpath(self.path, self.repositories)
        return os.path.relpath(imported, os.path.dirname(recipe_path))


def _custom_erb_name(template: str, erb_name: str) -> str:
    """``a/b/name.yaml`` -> ``a/b/.name`` + erb name (upstream's per-template ERB)."""
    directory, _, base = template.rpartition("/")
    base = base.removesuffix(".yaml")
    return f"{directory}/.{base}{erb_name}" if directory else f".{base}{erb_name}"


def extend_erb_candidates(repositories: Path, template: str, erb_name: str) -> list[Path]:
    """Where ``new`` looks for the extend ERB, in order (the last is kameleon_nb's)."""
    found = [repositories / _custom_erb_name(template, erb_name)]
    directory = Path(template).parent
    while True:  # the template's directory, then each one above it (not the root)
        found.append(repositories / directory / erb_name)
        if directory.parent in (directory, Path(".")):
            break
        directory = directory.parent
    found.append(DEFAULT_EXTEND_ERB)
    return found


def render_erb(text: str, variables: Mapping[str, object], *, source: str) -> str:
    """Render an ERB template's ``<%= %>`` and ``<% %>`` tags with Jinja2."""
    import jinja2  # noqa: PLC0415 - only ``new`` needs it

    environment = jinja2.Environment(
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<%=",
        variable_end_string="%>",
        comment_start_string="<%#",
        comment_end_string="%>",
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
    )
    try:
        return environment.from_string(text).render(**variables)
    except jinja2.TemplateError as err:
        line = f" line {err.lineno}" if isinstance(err, jinja2.TemplateSyntaxError) else ""
        raise RecipeError(
            f"{source}{line}: cannot render this extend template ({err}); kameleon_nb "
            "renders ERB with Jinja2: use <%= name %> with the variables recipe_name, "
            "recipe_path, template_name, template_path and tpl.relative_path_from_recipe(...)"
        ) from err


def new_recipe(
    repositories: Path,
    workspace: Path,
    recipe_name: str,
    template_name: str,
    cli_globals: Mapping[str, str],
    *,
    erb_name: str,
    verbose: bool,
    report: Report,
) -> Path:
    """``new``: import the template, then write the child recipe that extends it."""
    template_name = _with_yaml(template_name)
    recipe_name = _with_yaml(recipe_name)
    if recipe_name == template_name:
        raise RecipeError("Recipe path should be different from template name")
    recipe_path = workspace / recipe_name
    template = _load_or_not_found(repositories, workspace, template_name, cli_globals, verbose)
    _copy_into_workspace(template, repositories, workspace, report)
    candidates = extend_erb_candidates(repositories, template_name, erb_name)
    erb = next(p for p in candidates if _readable(p))
    text = render_erb(
        erb.read_text(encoding="utf-8"),
        {
            "recipe_name": recipe_name,
            "recipe_path": str(recipe_path),
            "template_name": template_name,
            "template_path": str(repositories / template_name),
            "tpl": _TemplateView(Path(template.abspath), repositories, workspace),
        },
        source=str(erb),
    )
    with tempfile.TemporaryDirectory(prefix="kameleon-new-") as scratch:
        rendered = Path(scratch) / recipe_path.name
        rendered.write_text(text, encoding="utf-8")
        copy_file(rendered, recipe_path, workspace=workspace, keep_mode=False, report=report)
    return recipe_path


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def template_erb_path(path: str, erb_name: str) -> Path:
    """Where ``template erb PATH`` writes: in a directory, or next to a ``.yaml`` file."""
    if os.path.isdir(path):
        return Path(path) / erb_name
    if os.path.isfile(path) and path.endswith(".yaml"):
        return Path(_custom_erb_name(path, erb_name))
    raise KameleonError(f"Invalid path '{path}', please give a path to a yaml file or a directory")
