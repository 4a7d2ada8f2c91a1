"""The user's Kameleon directory, ``~/.kameleon.d``, as Kameleon 2.11.0 keeps it.

Upstream creates ``~/.kameleon.d/`` and writes a ``config`` file there at every start;
kameleon_nb does so only for the verbs that use it (``repository``, ``template``,
``new``). The config's ``repositories_path`` and ``extend_yaml_erb`` are honoured. As
upstream, nothing else (no ``KAMELEON_*`` variable, no option) moves the directory:
``$HOME`` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from kameleon_nb.errors import KameleonError

__all__ = ["UserConfig", "user_config"]

_DEFAULT_CONFIG = """\
---
repositories_path: ~/.kameleon.d/repos
extend_yaml_erb: .extend.yaml.erb
script: false
color: true
debug: false
"""


@dataclass(frozen=True, slots=True)
class UserConfig:
    """What the verbs read from ``~/.kameleon.d/config``.

    Attributes:
        repositories_path: where ``repository add`` clones (absolute, ``~`` expanded).
        extend_yaml_erb: the file name of a custom extend template (``.extend.yaml.erb``).
    """

    repositories_path: Path
    extend_yaml_erb: str


def user_config() -> UserConfig:
    """Read (and create, as upstream does) ``~/.kameleon.d/config`` and the repositories dir."""
    home = os.environ.get("HOME")
    if not home or not os.path.isdir(home):
        raise KameleonError(
            f"the home directory {home!r} does not exist; kameleon keeps its repositories "
            "in ~/.kameleon.d: set HOME to an existing directory"
        )
    userdir = Path(home) / ".kameleon.d"
    userdir.mkdir(exist_ok=True)
    config_file = userdir / "config"
    if not config_file.exists() or config_file.stat().st_size == 0:
        config_file.write_text(_DEFAULT_CONFIG, encoding="utf-8")
    try:
        values = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        values = None
    if not isinstance(values, dict):
        values = {}
    repos = Path(
        os.path.expanduser(str(values.get("repositories_path", "~/.kameleon.d/repos")))
    ).absolute()
    if not repos.exists() and not repos.is_symlink():
        repos.mkdir()
    return UserConfig(repos, str(values.get("extend_yaml_erb", ".extend.yaml.erb")))
