"""The cache and proxy options: each works or says in one line why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.buildcheck import cli

RECIPE = """\
global:
  in_context:
    cmd: bash
    proxy_cache: {in_cache}
bootstrap:
  - show:
    - env:
      - exec_out: echo "out=[$http_proxy] in_cache=[$${{proxy_in}}]"
      - exec_in: echo "in=[$HTTPS_PROXY] [$no_proxy]"
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(in_cache="127.0.0.1"))
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--proxy", "nohost"], "--proxy expects HOST:PORT"),
        (["--proxy", "h:99999"], "has no valid port"),
        (["--proxy", "h:3128", "--proxy-credentials", "user"], "USER:PASSWORD"),
        (["--proxy-credentials", "u:p"], "needs --proxy"),
        (["-C", "--from-cache", "x.tar.gz"], "use one of them"),
        (["--cache-path", "/tmp/c"], "--cache-path works with -C"),
        (["--proxy-offline"], "--proxy-offline works with -C"),
        (["--cache-archive-compression", "xz"], "works with -C"),
    ],
)
def test_contradictory_or_malformed_options_are_refused(
    recipe: Path, args: list[str], expected: str
) -> None:
    rc, out = cli("build", str(recipe), *args)
    assert rc == 15, out
    assert expected in out
    assert len(out.strip().splitlines()) == 1, out  # one line, no traceback


def test_proxy_without_cache_reaches_every_context(recipe: Path, tmp_path: Path) -> None:
    rc, out = cli(
        "build",
        str(recipe),
        "-b",
        str(tmp_path / "b"),
        "--proxy",
        "squid.lan:3128",
        "--proxy-credentials",
        "me:secret",
    )
    assert rc == 0, out
    assert "out=[http://me:secret@squid.lan:3128]" in out
    # no_proxy takes the text before the first ':' as the proxy's host, as upstream does
    assert "in=[http://me:secret@squid.lan:3128] [localhost,me,127.0.0.1," in out


def test_polipo_path_says_it_is_not_needed(recipe: Path, tmp_path: Path) -> None:
    rc, out = cli("build", str(recipe), "-b", str(tmp_path / "b"), "--polipo-path", "/opt/p")
    assert rc == 0, out
    assert "--polipo-path is ignored" in out


def test_a_context_without_proxy_cache_gets_upstreams_error(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(in_cache="~"))
    rc, out = cli("build", str(path), "-b", str(tmp_path / "b"), "-C")
    assert rc == 7, out
    assert (
        "Error: Missing variable for in context 'proxy_cache' when using the option --cache" in out
    )


def test_a_missing_archive_is_named(tmp_path: Path) -> None:
    rc, out = cli("build", "--from-cache", str(tmp_path / "nope-cache.tar.gz"))
    assert rc != 0
    assert "nope-cache.tar.gz: no such cache archive" in out
    assert "Traceback" not in out


def test_build_help_lists_zstd() -> None:
    rc, out = cli("build", "--help")
    assert rc == 0
    assert "zstd" in out
