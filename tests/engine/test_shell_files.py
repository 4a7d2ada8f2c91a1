"""The bash side of the context shells' protocol: shipped as package data, clean for shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

from kameleon_nb.engine.shell.protocol import helper_functions, protocol_functions

FILES = ("protocol.sh", "helpers.sh")


@pytest.mark.parametrize("name", FILES)
def test_shell_files_are_package_data(name):
    text = resources.files("kameleon_nb.engine.shell").joinpath(name).read_text()
    assert text.startswith("# shellcheck shell=bash\n")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
@pytest.mark.parametrize("name", FILES)
def test_shellcheck_finds_nothing(name):
    path = resources.files("kameleon_nb.engine.shell").joinpath(name)
    with resources.as_file(path) as file:
        done = subprocess.run(
            ["shellcheck", "--norc", str(file)], capture_output=True, text=True, check=False
        )
    assert done.returncode == 0, done.stdout + done.stderr


def test_sent_text_has_no_comment_and_no_placeholder():
    for text in (protocol_functions(), helper_functions()):
        assert not any(line.lstrip().startswith("#") for line in text.splitlines())
        assert "@P@" not in text
        assert "@U@" not in text
        assert "@ALL@" not in text
    assert "__knb_prompt_command=" in protocol_functions()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_parses_the_filled_text():
    for text in (protocol_functions(), helper_functions()):
        done = subprocess.run(
            ["bash", "-n"], input=text, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
