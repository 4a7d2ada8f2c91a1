"""Command output on the console: ``[ctx] `` before every line and after every CR.

The console prefixes whole chunks at once; these tests hold it to the line-by-line
rule whatever the chunking: lines cut across chunks, a last line without newline,
CR/LF, two contexts, colours, and a real build printing 1 MB (stdout and stderr of one
command share its output), whose ``--log-json`` log keeps every byte.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from kameleon_nb.engine.events import CommandOutput, Message
from kameleon_nb.frontends.console import ConsoleSink


def line_by_line(context: str, text: str, colour: bool = False) -> str:
    """The rule, one line at a time (what the console printed before it took chunks)."""
    prefix = f"[{context}] "
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    out = []
    for line in lines:
        shown = prefix + line.replace("\r", "\r" + prefix)
        out.append(f"\x1b[32m{shown}\x1b[0m" if colour else shown)
    return "".join(f"{line}\n" for line in out)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SAMPLE = (
    "plain line\n"
    "progress 10%\rprogress 50%\rprogress 100%\n"
    "windows line\r\n"
    "\n"
    "\r\n"
    "\ttabs and ünïcödé ✓\n"
    "ends without newline"
)


def chunks(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_any_chunking_prints_what_line_by_line_printing_would(seed: int, colour: bool) -> None:
    rng = random.Random(seed)
    stream = Terminal() if colour else io.StringIO()
    console = ConsoleSink(stream, colour=colour)
    for piece in chunks(SAMPLE, rng):
        console(CommandOutput("in", piece))
    console.flush_output()
    assert stream.getvalue() == line_by_line("in", SAMPLE, colour)


def test_a_partial_line_waits_for_its_end_and_is_printed_before_the_next_event() -> None:
    stream = io.StringIO()
    console = ConsoleSink(stream, colour=False)
    console(CommandOutput("out", "first\nsecond, half"))
    assert stream.getvalue() == "[out] first\n"
    console(CommandOutput("out", " and more"))
    assert stream.getvalue() == "[out] first\n"
    console(Message("a message"))
    assert stream.getvalue() == "[out] first\n[out] second, half and more\na message\n"


def test_contexts_keep_their_own_partial_lines() -> None:
    stream = io.StringIO()
    console = ConsoleSink(stream, colour=False)
    console(CommandOutput("out", "o1\no2-"))
    console(CommandOutput("in", "i1-"))
    console(CommandOutput("out", "end\n"))
    console(CommandOutput("in", "end\ni2"))
    console.flush_output()
    assert stream.getvalue() == "[out] o1\n[out] o2-end\n[in] i1-end\n[in] i2\n"


def test_a_long_line_in_many_chunks_is_printed_once_whole() -> None:
    stream = io.StringIO()
    console = ConsoleSink(stream, colour=False)
    for _ in range(1000):
        console(CommandOutput("local", "x" * 1000))
    console(CommandOutput("local", "\n"))
    assert stream.getvalue() == "[local] " + "x" * 1_000_000 + "\n"


COMMAND = (
    "seq 1 120000 | sed 's/^/line /'; "
    "echo to stderr >&2; "
    "printf 'a\\r\\nb\\rc\\n'; "
    "echo again on stderr >&2; "
    "printf 'no newline at the end'"
)


@pytest.mark.shell
def test_a_real_build_prints_a_megabyte_of_output_complete_and_logs_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kameleon: object
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(
        f"setup:\n  - s:\n    - loud:\n      - exec_local: |\n          {COMMAND}\n"
    )
    code, out = kameleon("build", "--log-json", "log.jsonl", "r.yaml")  # type: ignore[operator]
    assert code == 0
    raw = "".join(f"line {i}\n" for i in range(1, 120001))
    raw += "to stderr\na\r\nb\rc\nagain on stderr\nno newline at the end"
    assert len(raw) > 1_000_000
    shown = out[out.index("[local] line 1\n") : out.index("no newline at the end\n") + 22]
    assert shown == line_by_line("local", raw)
    logged = [json.loads(line) for line in Path("log.jsonl").read_text().splitlines()]
    text = "".join(e["text"] for e in logged if e["event"] == "CommandOutput")
    assert text == raw
