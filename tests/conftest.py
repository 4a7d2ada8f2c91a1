"""Shared fixtures: data paths, a scratch copy of the compat recipe, the CLI runner."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# A suite started in the background by a non-interactive shell (``cmd &``) inherits SIGINT
# ignored, and so would every build a test starts and then interrupts with SIGINT: give
# this process (and through it, its children) the default Ctrl-C behaviour back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

DATA = Path(__file__).resolve().parent / "data"

# Notebooks that are test inputs, not tests (nbval would run every .ipynb it finds).
collect_ignore_glob = ["data/*", "browser/data/*"]
COMPAT = DATA / "compat"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the compat ``tiny`` recipe; the cwd is its directory."""
    target = tmp_path / "tiny"
    shutil.copytree(COMPAT / "recipes" / "tiny", target)
    old = os.getcwd()
    os.chdir(target)
    try:
        yield target
    finally:
        os.chdir(old)


@pytest.fixture
def kameleon(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run the CLI in-process; returns (exit status, stdout)."""
    from kameleon_nb.frontends.cli import main

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(list(argv))
        return code, capsys.readouterr().out

    return run


@pytest.fixture
def ipython(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An in-process IPython shell with kameleon_nb loaded, in a scratch directory.

    The history lives in memory (no database file per test), and the extension is
    unloaded at the end, which closes every context shell.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.chdir(tmp_path)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.warn_venv = False  # the caller's VIRTUAL_ENV is not ours
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "kameleon_nb")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "kameleon_nb")
        InteractiveShell.clear_instance()
