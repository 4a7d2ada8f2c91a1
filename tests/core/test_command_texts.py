"""Upstream's hashed command text after the alias pass (compat nested corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kameleon_nb.core.resolve import upstream_text

CORPUS = json.loads(
    (
        Path(__file__).resolve().parents[1] / "data" / "compat" / "psych" / "nested_corpus.json"
    ).read_text()
)


@pytest.mark.parametrize("case", CORPUS, ids=[str(i) for i in range(len(CORPUS))])
def test_alias_pass_text_matches_upstream(case):
    assert upstream_text(case["item"]) == case["after_alias_pass"]
