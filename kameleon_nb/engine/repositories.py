"""Recipe repositories: git clones kept under ``~/.kameleon.d/repos`` (``kameleon repository``).

Git runs with the user's terminal (its progress and errors show as they come), as
upstream runs it. A local path or a ``file://`` URL is cloned like any other.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kameleon_nb.errors import KameleonError, RepositoryError

__all__ = ["add", "describe", "names", "remove", "repository_dir", "update"]

_GIT_TIMEOUT = 3600  # a clone of a large collection on a slow link; never for ever


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise KameleonError("git binary not found, make sure it is in your current PATH")
    return git


def _run(argv: list[str], what: str) -> None:
    try:
        status = subprocess.run(argv, check=False, timeout=_GIT_TIMEOUT).returncode
    except subprocess.TimeoutExpired as err:
        raise RepositoryError(f"{what}: git did not finish in {_GIT_TIMEOUT} s") from err
    if status != 0:
        raise RepositoryError(f"{what}: git exited with status {status} (its message is above)")


def repository_dir(repositories: Path, name: str) -> Path:
    """The directory of repository ``name``; a RepositoryError if there is none."""
    path = repositories / name
    if not path.is_dir():
        raise RepositoryError(f"Repository not found '{name}'")
    return path


def add(repositories: Path, name: str, url: str, *, branch: str | None = None) -> None:
    """``git clone [-b BRANCH] -- URL <repositories>/NAME``."""
    argv = [_git(), "clone"]
    if branch:
        argv += ["-b", branch]
    argv += ["--", url, str(repositories / name)]
    _run(argv, f"cloning {url} as repository '{name}'")


def update(repositories: Path, name: str) -> None:
    """``git pull --ff-only`` in repository ``name``."""
    path = repository_dir(repositories, name)
    git = _git()
    argv = [git, "--git-dir", str(path / ".git"), "--work-tree", str(path), "pull", "--ff-only"]
    _run(argv, f"updating repository '{name}'")


def names(repositories: Path) -> list[Path]:
    """The repositories (every visible entry of the directory), sorted as upstream's glob."""
    return sorted((p for p in repositories.iterdir() if not p.name.startswith(".")), key=str)


def _git_output(path: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            [_git(), *args],
            cwd=path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RepositoryError(f"{path}: git {' '.join(args)} failed: {err}") from err
    return done.stdout


def describe(path: Path) -> str:
    """``NAME <- URL (BRANCH)``: where a repository comes from."""
    remotes = _git_output(path, "remote", "-v").splitlines()
    if not remotes or len(remotes[0].split()) < 2:
        raise RepositoryError(
            f"{path} has no git remote: it is not a repository that "
            "'kameleon repository add' made (remove it, or use --no-git)"
        )
    url = remotes[0].split()[1]
    branch = _git_output(path, "rev-parse", "--abbrev-ref", "HEAD").split("\n", 1)[0]
    return f"{path.name} <- {url} ({branch})"


def remove(repositories: Path, name: str) -> str:
    """Delete repository ``name``; returns its description, for the ``Removing:`` line."""
    path = repository_dir(repositories, name)
    shown = describe(path)
    shutil.rmtree(path)
    return shown
