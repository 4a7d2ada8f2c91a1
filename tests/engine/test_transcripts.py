"""Replays upstream 2.11.0's scripted session on the compat recipe, with real bash shells.

The 17 transcripts in ``tests/data/compat/transcripts`` are one sequence on one build
directory (compat README §5): checkpoints, ``.build_recipe`` and the uuid carry over
from one run to the next. Our output must be upstream's, line for line, once the
recipe directory, the durations and the location-dependent id are normalised.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "compat" / "transcripts"
LOCATION_IDS = ("0c3d489ead04", "afaa493b1a44")  # export/final/done, compat README §6.2

pytestmark = pytest.mark.shell


def _transcript(name: str) -> tuple[list[str], str, int]:
    lines = (TRANSCRIPTS / name).read_text().split("\n")
    argv = lines[0][len("$ kameleon ") :].split()
    rc_index = max(i for i, line in enumerate(lines) if line.startswith("rc="))
    return argv, "\n".join(lines[1:rc_index]) + "\n", int(lines[rc_index][3:])


def _normalise(text: str, recipe_dir: Path, done_ids: tuple[str, ...]) -> str:
    text = text.replace(str(recipe_dir), "<RECIPE_DIR>")
    text = re.sub(r"took: \d+ secs", "took: N secs", text)
    text = re.sub(r"Total duration: \d+ secs", "Total duration: N secs", text)
    for step_id in done_ids:
        text = text.replace(step_id, "<DONE_ID>")
    return text


def _done_id(tiny: Path) -> str:
    from kameleon_nb.engine.recipes import open_recipe

    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    return list(recipe.microsteps())[-1].step_id


SEQUENCE = [
    "04-build-c.txt",
    "05-list.txt",
    "06-rebuild-same.txt",
    "EDIT",
    "07-list-after-change.txt",
    "08-rebuild-from-last.txt",
    "09-list-after-rebuild.txt",
    "10-from-unknown.txt",
    "11-from-slug.txt",
    "12-from-without-c.txt",
    "13-clean.txt",
    "14-list-after-clean.txt",
    "15-microstep-first.txt",
    "CLEAN",
    "16-begin-end.txt",
    "17-list-window.txt",
]


def test_upstream_session_replays_identically(tiny, kameleon, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    done_ids = [_done_id(tiny)]
    for step in SEQUENCE:
        if step == "EDIT":
            recipe = tiny / "tiny.yaml"
            recipe.write_text(recipe.read_text().replace("  fruit: apple", "  fruit: banana"))
            done_ids.append(_done_id(tiny))
            continue
        if step == "CLEAN":
            assert kameleon("build", "tiny.yaml", "--clean", "-c")[0] == 0
            continue
        argv, expected, expected_rc = _transcript(step)
        code, out = kameleon(*argv)
        if step == "12-from-without-c.txt":
            # deliberate difference (semantics §0.2): -F turns checkpointing on, as the
            # checkpoint documentation says, instead of being ignored without -c
            assert code == 0
            assert "Restoring last build from step: export/final/done\n" in out
            assert "checkpointing is not activated" not in out
            continue
        assert code == expected_rc, (step, out)
        for upstream_id in LOCATION_IDS:
            expected = expected.replace(upstream_id, "<DONE_ID>")
        assert _normalise(out, tiny, tuple(done_ids)) == _normalise(expected, tiny, ()), step
    # after run 17 the fake backend holds exactly the three ids of the window
    ids = (tiny / "build" / "tiny" / "checkpoints.txt").read_text().split()
    assert ids == ["283a038316f7", "bf3982300be6", "525c7d01fd91"]
