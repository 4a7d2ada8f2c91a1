"""A cell's bounded output: the first lines, a count of those hidden, the last lines.

The output is handled a chunk at a time (a count and slices, not a step per line);
these tests hold it to the per-line rule whatever the chunking, and check that the log
file keeps every byte.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from kameleon_nb.frontends import cell_output
from kameleon_nb.frontends.cell_output import BoundedOutput


def reference(text: str, head: int, tail: int, log: str) -> str:
    lines = text.split("\n")
    partial = lines.pop()
    complete = [line + "\n" for line in lines]
    out = "".join(complete[:head])
    rest = complete[head:]
    if len(complete) < head:
        return out + partial
    hidden = max(0, len(rest) - tail)
    if rest:
        if hidden:
            out += f"[{hidden:,} lines not shown here; all of the output is in {log}]\n"
        out += "".join(rest[-tail:] if tail else [])
    return out + partial


def chunks(text: str, rng: random.Random) -> list[str]:
    if len(text) < 2:
        return [text]
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 30))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.fixture(autouse=True)
def no_live_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    # the live "… N lines not shown" display needs IPython; its text is checked below
    monkeypatch.setattr(BoundedOutput, "_show_count", lambda self: None)


@pytest.mark.parametrize("seed", range(60))
def test_any_chunking_shows_the_head_the_count_and_the_tail(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    head, tail = rng.randint(0, 6), rng.randint(0, 6)
    text = "".join(
        rng.choice(["a", "bb", "\n", "\r", "ü", "\n\n"]) for _ in range(rng.randint(0, 80))
    )
    stream = io.StringIO()
    with BoundedOutput(str(tmp_path), "t", head=head, tail=tail, stream=stream) as bounded:
        for piece in chunks(text, rng):
            bounded.write(piece)
    assert stream.getvalue() == reference(text, head, tail, bounded.log_path)
    if text:
        assert Path(bounded.log_path).read_bytes().decode() == text


def test_a_million_short_lines_keep_the_default_bounds(tmp_path: Path) -> None:
    stream = io.StringIO()
    text = "".join(f"{i}\n" for i in range(1_000_000))
    with BoundedOutput(str(tmp_path), "big", stream=stream) as bounded:
        for start in range(0, len(text), 65536):
            bounded.write(text[start : start + 65536])
    shown = stream.getvalue().split("\n")
    head, tail = cell_output.HEAD_LINES, cell_output.TAIL_LINES
    assert shown[:head] == [str(i) for i in range(head)]
    assert shown[head] == (
        f"[{1_000_000 - head - tail:,} lines not shown here; all of the output is in "
        f"{bounded.log_path}]"
    )
    assert shown[head + 1 : -1] == [str(i) for i in range(1_000_000 - tail, 1_000_000)]
    assert Path(bounded.log_path).read_bytes().decode() == text
