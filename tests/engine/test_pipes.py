"""``pipe`` between every pair of contexts, with real shells: bytes intact, any size."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import CommandOutput
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.errors import ExecError

pytestmark = pytest.mark.shell

CONTEXTS = ("local", "out", "in")
SIZE = 20_000_000


def _recipe(tmp_path, body: str) -> str:
    (tmp_path / "p.yaml").write_text(
        "global:\n"
        "  out_context:\n    cmd: bash\n    workdir: $${kameleon_cwd}/out\n"
        "  in_context:\n    cmd: bash\n    workdir: $${kameleon_cwd}/in\n"
        f"setup:\n  - pipes:\n{body}"
    )
    return "p.yaml"


def test_pipe_every_direction_keeps_the_bytes_and_the_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    steps = [
        "    - prepare:\n"
        f"      - exec_local: head -c {SIZE} /dev/urandom > $${{kameleon_cwd}}/src.bin\n"
        "      - exec_out: export KEEP_OUT=out-value\n"
        "      - exec_in: export KEEP_IN=in-value\n"
        "      - exec_local: export KEEP_LOCAL=local-value\n"
    ]
    for source, target in itertools.permutations(CONTEXTS, 2):
        steps.append(
            f"    - {source}_to_{target}:\n"
            "      - pipe:\n"
            f"        - exec_{source}: cat $${{kameleon_cwd}}/src.bin\n"
            f"        - exec_{target}: cat > $${{kameleon_cwd}}/{source}_{target}.bin\n"
        )
    steps.append(
        "    - check:\n"
        "      - exec_local: cd $${kameleon_cwd} && sha256sum *.bin | awk '{print $1}' | sort -u | wc -l\n"
        '      - exec_out: test "$KEEP_OUT" = out-value\n'
        '      - exec_in: test "$KEEP_IN" = in-value\n'
        '      - exec_local: test "$KEEP_LOCAL" = local-value\n'
    )
    recipe = open_recipe(_recipe(tmp_path, "".join(steps)), cwd=str(tmp_path))
    events: list[object] = []
    tracemalloc.start()
    try:
        with Builder(recipe, on_event=events.append) as builder:
            builder.build(BuildOptions())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    outputs = "".join(e.text for e in events if isinstance(e, CommandOutput))
    assert outputs.strip().splitlines()[-1] == "1"  # 7 files, one distinct checksum
    build = tmp_path / "build" / "p"
    assert len(list(build.glob("*_*.bin"))) == 6
    assert all(f.stat().st_size == SIZE for f in build.glob("*.bin"))
    assert peak < 10_000_000  # the data never passes through Python


def test_pipe_failure_of_either_end_fails_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = (
        "    - broken_source:\n"
        "      - pipe:\n"
        "        - exec_local: echo partial; exit 3\n"
        "        - exec_in: cat > /dev/null\n"
    )
    recipe = open_recipe(_recipe(tmp_path, body), cwd=str(tmp_path))
    with (
        pytest.raises(ExecError, match="exit status 3"),
        Builder(recipe, on_event=lambda e: None) as builder,
    ):
        builder.build(BuildOptions())


def test_pipe_of_a_non_exec_command_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = "    - bad:\n      - pipe:\n        - exec_local: echo x\n        - breakpoint: no\n"
    recipe = open_recipe(_recipe(tmp_path, body), cwd=str(tmp_path))
    with (
        pytest.raises(ExecError, match="expecting two exec_"),
        Builder(recipe, on_event=lambda e: None) as builder,
    ):
        builder.build(BuildOptions())
