"""Scenarios of the workspace verbs, run the same way against upstream and kameleon_nb.

Each scenario starts from scratch in its own directory ``ROOT``:

* ``ROOT/repo``: a git repository (one commit, fixed author and date) of the oar-team
  collection, ``tests/data/corpus/K.tar.gz`` (plus the scenario's extra files);
* ``ROOT/home``: an empty ``$HOME`` (``~/.kameleon.d`` is created there);
* ``ROOT/ws``: the workspace, the current directory of each step.

Its steps run one after the other as a new user would type them, stdin ``/dev/null``,
``COLUMNS=100`` (the terminal width that listings cut at; a scenario may set
another). What is recorded per step:
exit status, stdout and stderr (git's own messages), with ``ROOT`` written ``<ROOT>``,
(and the few things that vary from run to run, see :func:`normalise`). After the last step, every file under
``ROOT/ws`` and ``ROOT/out`` is recorded with its mode and SHA-256.

``benchmarks/record_verbs.py`` runs them with upstream (``kameleon-oracle``) and stores
the answers in ``tests/data/verbs/``; ``tests/frontends/test_cli_verbs.py`` runs them
with kameleon_nb and compares.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
ANSWERS = DATA / "verbs"
CORPUS = DATA / "corpus" / "K.tar.gz"
STEP_TIMEOUT = 300

BOOKWORM = "default/from_scratch/debian-bookworm"
SID = "default/from_debootstrap/debian-sid"


@dataclass(frozen=True)
class Step:
    """One command: its arguments (``<ROOT>`` is replaced) and the directory it runs in."""

    argv: tuple[str, ...]
    cwd: str = "ws"
    #: why kameleon_nb deliberately answers differently here (then not compared)
    differs: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    #: files added to the repository before its commit: path -> text
    repo_files: dict[str, str] = field(default_factory=dict)
    #: files written in the workspace before the first step: path -> text
    ws_files: dict[str, str] = field(default_factory=dict)
    #: extract the collection into the workspace too (``list`` over a tree of recipes)
    ws_corpus: bool = False
    #: the terminal width (``COLUMNS``)
    columns: int = 100


def _s(*argv: str, cwd: str = "ws", differs: str = "") -> Step:
    return Step(tuple(argv), cwd, differs)


ADD = _s("repository", "add", "default", "<ROOT>/repo")

CUSTOM_ERB = """\
# <%= recipe_name %> made from <%= template_name %>
---
extend: <%= tpl.relative_path_from_recipe(recipe_path) %>

setup:
  - "@base"
"""

SCENARIOS = (
    Scenario(
        "first_hour",
        (
            ADD,
            _s("template", "list"),
            _s("new", "my_debian", BOOKWORM),
            _s("build", "-d", "my_debian.yaml"),
            _s("list"),
        ),
    ),
    Scenario(
        "repository",
        (
            ADD,
            _s("repository", "add", "other", "file://<ROOT>/repo", "-b", "master"),
            _s("repository", "list"),
            _s("repository", "ls", "--no-git"),
            _s("repository", "update", "default"),
            _s("repository", "update", "nope"),
            _s("repository", "remove", "other"),
            _s("repository", "rm", "nope"),
            _s("repository", "list"),
            _s("repository", "add", "x"),
            _s("repository", "update"),
        ),
    ),
    Scenario(
        "template",
        (
            ADD,
            _s("template", "list", "--no-progress", "-f", "debian-b"),
            _s("template", "ls", "-f", "^default/from_debootstrap/(x86_64/)?debian"),
            _s("template", "info", BOOKWORM),
            _s("template", "info", "-g", "release:trixie", SID),
            _s("template", "import", SID),
            _s("template", "import", SID),
            _s("template", "import", "default/nope"),
            _s("template", "erb", "."),
            _s("template", "erb", "default/from_debootstrap/debian-sid.yaml"),
            _s("template", "erb", "missing.txt"),
            _s("template", "info"),
        ),
    ),
    Scenario(
        "new",
        (
            ADD,
            _s("new", "sub/dir/mine", BOOKWORM),
            _s("new", "again", BOOKWORM),
            _s("new", "custom", "default/from_scratch/debian-bullseye"),
            _s("new", "bydir", "default/from_debootstrap/debian-testing"),
            _s("new", "default/from_scratch/base", "default/from_scratch/base"),
            _s("new", "x", "default/nope"),
            _s("new", "onlyone"),
        ),
        repo_files={
            "from_scratch/.debian-bullseye.extend.yaml.erb": CUSTOM_ERB,
            "from_debootstrap/.extend.yaml.erb": "# from <%= template_name %>\n---\n"
            "extend: <%= tpl.relative_path_from_recipe(recipe_path) %>\n",
        },
        ws_files={"default/steps/env/bashrc": "# edited by the user\n"},
    ),
    Scenario(
        "list",
        (
            _s("list"),
            _s("list", "-f", "debian-b"),
            _s("ls", "-p"),
            _s("list", cwd="ws/from_scratch"),
            _s("list", "extra"),
            _s("list", cwd="out"),
        ),
        ws_files={
            "from_upstream_build/.filter": "centos\n",
            "broken.yaml": "extend: nowhere.yaml\n",
        },
        ws_corpus=True,
    ),
    Scenario(
        "narrow_terminal",
        (ADD, _s("template", "list", "-f", "ubuntu"), _s("list", "-p")),
        ws_corpus=True,
        columns=45,
    ),
    Scenario(
        "dag",
        (
            ADD,
            _s("new", "my_debian", BOOKWORM),
            _s("dag", "my_debian.yaml", "--file", "graph.dot", "--format", "none"),
            _s("dag", "my_debian", "--file", "graph.canon"),
            _s("dag", "my_debian.yaml", "--file", "graph.svg"),
            _s("dag", "my_debian.yaml", "--file", "graph.x", "--format", "bogus"),
            _s(
                "dag",
                "my_debian.yaml",
                f"{BOOKWORM}.yaml",
                "--recipes-only",
                "--file",
                "both.dot",
                "--format",
                "none",
            ),
            _s(
                "dag",
                "my_debian.yaml",
                f"{BOOKWORM}.yaml",
                "--relative",
                "--file",
                "both.canon",
            ),
            _s("dag", "missing.yaml", "--file", "none.dot"),
            _s("dag", differs="upstream crashes (ArgumentError, exit 154): a usage error"),
        ),
    ),
    Scenario(
        "export",
        (
            ADD,
            _s("new", "my_debian", BOOKWORM),
            _s("export", "my_debian", "<ROOT>/out/first"),
            _s("export", "my_debian.yaml", "<ROOT>/out/first"),
            _s("export", "my_debian.yaml", "<ROOT>/out/first", "-A"),
            _s("export", "my_debian.yaml", "copy"),
            _s("export", "../my_debian.yaml", "<ROOT>/out/outside", cwd="ws/sub"),
            _s("export", "child", "<ROOT>/out/outside", cwd="ws/sub"),
            _s("export", "missing", "<ROOT>/out/missing"),
            _s("export", "x"),
        ),
        ws_files={
            "simple.yaml": "---\nsetup:\n  - greet:\n    - hello:\n      - exec_local: echo hi\n",
            "sub/child.yaml": '---\nextend: ../simple.yaml\nsetup:\n  - "@base"\n',
        },
    ),
)


# ----------------------------------------------------------------------------- running


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "kameleon_nb",
        "GIT_AUTHOR_EMAIL": "tests@kameleon-nb.invalid",
        "GIT_COMMITTER_NAME": "kameleon_nb",
        "GIT_COMMITTER_EMAIL": "tests@kameleon-nb.invalid",
        "GIT_AUTHOR_DATE": "2025-01-13T00:00:00Z",
        "GIT_COMMITTER_DATE": "2025-01-13T00:00:00Z",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _extract(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(CORPUS) as archive:
        archive.extractall(target, filter="tar")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def prepare(scenario: Scenario, root: Path) -> None:
    """Make ``ROOT``: the git repository, the empty home, the workspace."""
    repo = root / "repo"
    _extract(repo)
    _write(repo, scenario.repo_files)
    _git(repo, "init", "-q", "-b", "master")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the oar-team collection")
    (root / "home").mkdir()
    (root / "out").mkdir()
    workspace = root / "ws"
    if scenario.ws_corpus:
        _extract(workspace)
    workspace.mkdir(exist_ok=True)
    _write(workspace, scenario.ws_files)


def environment(root: Path, columns: int = 100) -> dict[str, str]:
    """The steps' environment: a scratch HOME, a 100-column terminal, nothing inherited
    that changes the answers (Kameleon's and Thor's own variables)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAMELEON", "THOR_", "RUBY_PROGRESS", "GIT_"))
    }
    env.update(HOME=str(root / "home"), COLUMNS=str(columns), LC_ALL="C.UTF-8")
    return env


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{12})")
_GIT_PROGRESS = re.compile(r"(Updating files|Receiving objects|Resolving deltas):[^\n]*\n")


def normalise(text: str, root: Path) -> str:
    """What varies from run to run: ``ROOT``, the random ``kameleon_uuid`` (and its short
    form) that ``info`` shows, and git's progress lines (shown only when slow)."""
    text = text.replace(str(root), "<ROOT>")
    for short in set(_UUID.findall(text)):
        text = text.replace(short, "<SHORT_UUID>")
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-<SHORT_UUID>", "<UUID>", text)
    return _GIT_PROGRESS.sub("", text)


def snapshot(root: Path) -> dict[str, list[Any]]:
    """Every file under ``ws`` and ``out`` (except the build dir): ``[mode, sha256]``."""
    files: dict[str, list[Any]] = {}
    for top in ("ws", "out"):
        for directory, dirs, names in os.walk(root / top):
            dirs[:] = sorted(d for d in dirs if not (top == "ws" and d == "build"))
            for name in sorted(names):
                path = Path(directory) / name
                if path.is_symlink():
                    files[str(path.relative_to(root))] = ["link", os.readlink(path)]
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                files[str(path.relative_to(root))] = [oct(path.stat().st_mode & 0o777), digest]
    return files


def run(scenario: Scenario, root: Path, command: list[str]) -> dict[str, Any]:
    """Run every step of ``scenario`` with ``command`` (the program and its first args)."""
    prepare(scenario, root)
    env = environment(root, scenario.columns)
    steps = []
    for step in scenario.steps:
        argv = [a.replace("<ROOT>", str(root)) for a in step.argv]
        done = subprocess.run(
            [*command, *argv],
            cwd=root / step.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        steps.append(
            {
                "argv": list(step.argv),
                "cwd": step.cwd,
                "status": done.returncode,
                "stdout": normalise(done.stdout.decode("utf-8", "replace"), root),
                "stderr": normalise(done.stderr.decode("utf-8", "replace"), root),
            }
        )
    return {"scenario": scenario.name, "steps": steps, "files": snapshot(root)}
