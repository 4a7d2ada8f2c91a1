"""Exception tree of kameleon_nb.

Every class carries the process exit status that Kameleon 2.11.0 uses for the same
class of error, so the CLI can translate any of them at one boundary.
"""

from __future__ import annotations

__all__ = [
    "AbortError",
    "BuildError",
    "CacheError",
    "CommandTimeoutError",
    "ContextClosedError",
    "ContextError",
    "ExecError",
    "ExpansionLimitError",
    "ExportError",
    "InternalError",
    "KameleonError",
    "MissingFileError",
    "NotebookError",
    "RecipeError",
    "RepositoryError",
    "ShellError",
    "TemplateNotFoundError",
    "UnreadableFileError",
    "UsageError",
    "YamlError",
]


class KameleonError(Exception):
    """Base of every error kameleon_nb reports to the user."""

    exit_code = 1
    #: warnings printed before the error (upstream prints them as they occur)
    warnings: tuple[str, ...] = ()


class ExecError(KameleonError):
    """A command of the recipe failed (non-zero status, or unreachable context)."""

    exit_code = 2


class InternalError(KameleonError):
    """A bug in kameleon_nb itself."""

    exit_code = 3


class ContextError(KameleonError):
    """A context shell could not be started or used."""

    exit_code = 4


class ContextClosedError(ContextError):
    """A context shell died; it is restarted on its next command."""


class ShellError(KameleonError):
    """The shell protocol broke: timeout, lost sentinel, unexpected EOF."""

    exit_code = 5


class CommandTimeoutError(ShellError):
    """A command ran longer than its timeout; it was interrupted, the context lives on."""


class RecipeError(KameleonError):
    """The recipe is invalid: parse, variables, unknown step, alias arity, cycles."""

    exit_code = 6


class ExpansionLimitError(RecipeError):
    """Aliases, variables or YAML anchors expand beyond kameleon_nb's budgets (6)."""


class BuildError(KameleonError):
    """The build cannot go on: unknown checkpoint, checkpoint unavailable, bad option."""

    exit_code = 7


class AbortError(KameleonError):
    """The user (or ``--script``) chose to abort after a failure."""

    exit_code = 8


class TemplateNotFoundError(KameleonError):
    """A template of the repositories cannot be found or loaded (9)."""

    exit_code = 9


class CacheError(KameleonError):
    """The persistent cache failed."""

    exit_code = 10


class ExportError(KameleonError):
    """Export of a recipe or a notebook failed."""

    exit_code = 11


class NotebookError(ExportError):
    """A notebook cannot become a recipe (names the offending cell)."""


class RepositoryError(KameleonError):
    """A recipe repository is missing or git failed on it (12)."""

    exit_code = 12


class UsageError(KameleonError):
    """The command line is wrong (Thor's usage errors exit with 15)."""

    exit_code = 15


class MissingFileError(KameleonError):
    """A file the recipe needs does not exist (ENOENT, 16)."""

    exit_code = 16


class UnreadableFileError(MissingFileError):
    """A recipe file exists but cannot be one (16, as a missing file).

    It is not a regular file, it is too large, or its path is not UTF-8.
    """


class YamlError(KameleonError):
    """A file is not valid YAML (17)."""

    exit_code = 17

    def __init__(self, message: str, *, where: str = "", problem: str = "") -> None:
        super().__init__(message)
        #: ``file:line:column`` (or the file alone) and what is wrong there
        self.where = where
        self.problem = problem

    def located(self) -> str:
        """The error as ``file:line:column: problem`` (editors jump to it)."""
        return f"{self.where}: {self.problem}" if self.where else str(self)
