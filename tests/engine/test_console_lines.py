"""Upstream's lines from build events: ``Step N:`` lines, command output with ``[ctx] ``."""

from __future__ import annotations

import io
from pathlib import Path

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import CommandOutput, MicrostepStarted
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.frontends.console import ConsoleSink

from .fakes import fake_shells

RECIPE = """\
setup:
  - MC:
    - MC1:
      - exec_local: echo one
    - MC1:
      - exec_local: echo two
  - MC:
    - MC1:
      - exec_local: echo three
"""


def test_repeated_microstep_names_keep_the_table_suffix_out_of_step_lines(tmp_path: Path):
    (tmp_path / "dup.yaml").write_text(RECIPE)
    recipe = open_recipe("dup.yaml", cwd=str(tmp_path))
    factory, _log = fake_shells(lambda c, s: (0, ""))
    events: list[object] = []
    stream = io.StringIO()
    console = ConsoleSink(stream, colour=False)

    def sink(event: object) -> None:
        events.append(event)
        console(event)  # type: ignore[arg-type]

    with Builder(recipe, on_event=sink, shells=factory) as builder:
        builder.build(BuildOptions())
    started = [e for e in events if isinstance(e, MicrostepStarted)]
    assert [e.slug for e in started] == ["setup/MC/MC1", "setup/MC/MC1%1", "setup/MC/MC1%2"]
    assert {e.name for e in started} == {"setup/MC/MC1"}
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("Step ")]
    assert [line for line in lines if ":" in line and "took" not in line] == [
        "Step 1: setup/MC/MC1",
        "Step 2: setup/MC/MC1",
        "Step 3: setup/MC/MC1",
    ]


def test_output_lines_get_the_prefix_after_each_carriage_return_as_upstream():
    stream = io.StringIO()
    console = ConsoleSink(stream, colour=False)
    for chunk in [
        "Selecting less.\r\n(Reading database ... ",
        "\r(Reading 5%\r(Rea",
        "ding 100%)\n",
    ]:
        console(CommandOutput("in", chunk))
    console(CommandOutput("out", "no newline"))
    console.flush_output()
    assert stream.getvalue() == (
        "[in] Selecting less.\r[in] \n"
        "[in] (Reading database ... \r[in] (Reading 5%\r[in] (Reading 100%)\n"
        "[out] no newline\n"
    )
