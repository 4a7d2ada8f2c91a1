"""End to end against upstream 2.11.0's vectors: resolved command texts and ids."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kameleon_nb.core.model import CheckpointPolicy
from kameleon_nb.core.stepid import chain_step_ids
from kameleon_nb.engine.recipes import open_recipe

COMPAT = Path(__file__).resolve().parents[1] / "data" / "compat"

VECTORS = [
    pytest.param("tiny-apple-ckpt-false.json", False, "apple", id="apple-no-checkpointing"),
    pytest.param("tiny-apple-ckpt-true.json", True, "apple", id="apple-checkpointing"),
    pytest.param("tiny-banana-ckpt-true.json", True, "banana", id="banana-checkpointing"),
]

#: ``export/final/done`` embeds the absolute data path (compat README §6.2).
LOCATION_DEPENDENT = "export/final/done"


@pytest.mark.parametrize(("vector", "checkpointing", "fruit"), VECTORS)
def test_resolved_commands_and_ids_match_upstream(tiny, vector, checkpointing, fruit):
    recipe_file = tiny / "tiny.yaml"
    recipe_file.write_text(recipe_file.read_text().replace("fruit: apple", f"fruit: {fruit}"))
    expected = json.loads((COMPAT / "ids" / vector).read_text())
    recipe = open_recipe("tiny.yaml", checkpointing=checkpointing, cwd=str(tiny))
    got = list(recipe.microsteps())
    assert [m.slug for m in got] == [row["slug"] for row in expected]
    assert [m.on_checkpoint.value for m in got] == [row["on_checkpoint"] for row in expected]
    for microstep, row in zip(got, expected, strict=True):
        texts = [c.text for c in microstep.commands]
        if row["slug"] == LOCATION_DEPENDENT:
            assert texts == [f"exec_local: cat {tiny}/steps/data/file.txt"]
            continue
        assert texts == row["cmds"], row["slug"]
        assert microstep.step_id == row["id"], row["slug"]
    # the location-dependent id is still the chain's: sha1(text + previous chained id)
    done = got[-1]
    previous = got[-2].step_id
    expected_done = hashlib.sha1((done.commands[0].text + previous).encode()).hexdigest()[:12]
    assert done.step_id == expected_done


@pytest.mark.parametrize(("vector", "checkpointing", "fruit"), VECTORS)
def test_hash_chain_over_upstream_texts(vector, checkpointing, fruit):
    """The chain alone, fed upstream's own command texts (compat README §4, level 1)."""
    rows = [
        r
        for r in json.loads((COMPAT / "ids" / vector).read_text())
        if r["slug"] != LOCATION_DEPENDENT
    ]
    ids = chain_step_ids((r["cmds"], CheckpointPolicy.parse(r["on_checkpoint"])) for r in rows)
    assert list(ids) == [r["id"] for r in rows]
