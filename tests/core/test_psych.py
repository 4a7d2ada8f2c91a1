"""Tests for kameleon_nb.core.psych: byte-exact Psych 5.0.2 ``YAML.dump`` text."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kameleon_nb.core.psych import dump

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "compat" / "psych"


def _load(name: str) -> list[dict[str, Any]]:
    with (DATA_DIR / name).open(encoding="utf-8") as f:
        cases: list[dict[str, Any]] = json.load(f)
    return cases


def _case_id(index: int, value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{index}-{text}"


def _string_params(name: str) -> list[Any]:
    return [
        pytest.param(case, id=_case_id(i, case["input"]))
        for i, case in enumerate(_load(name))
        if "input" in case
    ]


CORPUS_STRINGS = _string_params("psych_corpus.json")
RANDOM_STRINGS = _string_params("psych_random.json")
CORPUS_STRUCTURED = [
    pytest.param(case, id=_case_id(i, case["input_obj"]))
    for i, case in enumerate(_load("psych_corpus.json"))
    if "input_obj" in case
]


def test_corpus_sizes() -> None:
    assert len(CORPUS_STRINGS) + len(CORPUS_STRUCTURED) == 111
    assert len(CORPUS_STRUCTURED) == 12
    assert len(RANDOM_STRINGS) == 2500


# ---------------------------------------------------------------------------
# The corpora: byte for byte.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS_STRINGS)
def test_corpus_command(case: dict[str, Any]) -> None:
    assert dump({"exec_local": case["input"]}) == case["dump_cmd"]


@pytest.mark.parametrize("case", CORPUS_STRINGS)
def test_corpus_scalar(case: dict[str, Any]) -> None:
    assert dump(case["input"]) == case["dump_scalar"]


@pytest.mark.parametrize("case", CORPUS_STRUCTURED)
def test_corpus_structured(case: dict[str, Any]) -> None:
    assert dump(case["input_obj"]) == case["dump_cmd"]


@pytest.mark.parametrize("case", RANDOM_STRINGS)
def test_random_command(case: dict[str, Any]) -> None:
    assert dump({"exec_local": case["input"]}) == case["dump_cmd"]


@pytest.mark.parametrize("case", RANDOM_STRINGS)
def test_random_scalar(case: dict[str, Any]) -> None:
    assert dump(case["input"]) == case["dump_scalar"]


def test_nested_corpus_initial_text() -> None:
    # string_cmd right after the command is built: the dump, "---" removed, stripped.
    for case in _load("nested_corpus.json"):
        assert dump(case["item"]).replace("---", "").strip() == case["initial"]


# ---------------------------------------------------------------------------
# Behaviour outside the corpora. These expectations were derived from the
# documented behaviour of libyaml 0.2.5 and Psych 5.0.2 (no Ruby was available to
# observe them): top-level nil, Float#to_s, escapes of non-BMP characters and of
# NEL/LS/BOM, "|+" followed by "..." at the end of the stream, Date/Time validation
# in Psych's scalar scanner, and sexagesimal numbers limited to two ":" groups.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "---\n"),
        ([], "--- []\n"),
        ({}, "--- {}\n"),
        ({"pipe": []}, "---\npipe: []\n"),
        ([1, "a", None, True, False], "---\n- 1\n- a\n-\n- true\n- false\n"),
        ({"a": {"b": 1}}, "---\na:\n  b: 1\n"),
        ([[1, 2], [3]], "---\n- - 1\n  - 2\n- - 3\n"),
        (-7, "--- -7\n"),
        (1.5, "--- 1.5\n"),
        (12.5, "--- 12.5\n"),
        (1.0, "--- 1.0\n"),
        (-0.0, "--- -0.0\n"),
        (0.0001, "--- 0.0001\n"),
        (0.00001, "--- 1.0e-05\n"),
        (1e15, "--- 1000000000000000.0\n"),
        (1e16, "--- 1.0e+16\n"),
        (1e20, "--- 1.0e+20\n"),
        (1.5e300, "--- 1.5e+300\n"),
        (math.inf, "--- .inf\n"),
        (-math.inf, "--- -.inf\n"),
        (math.nan, "--- .nan\n"),
        ({None: 1}, "---\n! '': 1\n"),
        ({"": 1}, "---\n'': 1\n"),
        ({"<<": "<<"}, "---\n!!str '<<': !!str '<<'\n"),
        ({"a\nb": 1}, "---\n? |-\n  a\n  b\n: 1\n"),
        ({"é" * 70: 1}, "---\n? " + "é" * 70 + "\n: 1\n"),
        ("😀", '--- "\\U0001F600"\n'),
        ("a\x85b", '--- "a\\Nb"\n'),
        ("\u2028x", '--- "\\Lx"\n'),
        ("\ufeffx", '--- "\\uFEFFx"\n'),
        ("a\x00b\x1b\x7f", '--- "a\\0b\\e\\x7F"\n'),
        ("\n", '--- "\\n"\n'),
        ("a\n\n", '--- "a\\n\\n"\n'),
        ("x\n\n\n", "--- |+\n  x\n\n\n...\n"),
        ({"a": "l1\nl2\n\n", "b": "c"}, "---\na: |+\n  l1\n  l2\n\nb: c\n...\n"),
        ("2020-02-30", "--- 2020-02-30\n"),
        ("1500-02-29", "--- '1500-02-29'\n"),
        ("1582-10-10", "--- 1582-10-10\n"),
        ("2020-01-01 25:00:00", "--- 2020-01-01 25:00:00\n"),
        ("2020-01-01 24:00:00", "--- '2020-01-01 24:00:00'\n"),
        ("2020-01-01 10:00:00 +25:00", "--- 2020-01-01 10:00:00 +25:00\n"),
        ("1:2:3", "--- '1:2:3'\n"),
        ("1:2:3:4", "--- 1:2:3:4\n"),
        ("0o17", "--- 0o17\n"),
        ("0b101", "--- '0b101'\n"),
        ("ON", "--- 'ON'\n"),
        ("nUlL", "--- 'nUlL'\n"),
        (':a"', "--- ':a\"'\n"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_behaviour_outside_corpora(value: object, expected: str) -> None:
    assert dump(value) == expected


def test_shared_objects_become_anchors_and_aliases() -> None:
    shared = ["x"]
    other: dict[str, Any] = {"k": "v"}
    expected = "---\n- &2\n  - x\n- &1\n  k: v\n- *1\n- *2\n"
    assert dump([shared, other, other, shared]) == expected


def test_tuples_are_arrays() -> None:
    assert dump({"write_local": ("/tmp/f", "content")}) == dump(
        {"write_local": ["/tmp/f", "content"]}
    )


def test_unsupported_type() -> None:
    with pytest.raises(TypeError):
        dump({"a": {1, 2}})


def test_cached_fast_path_matches_generic_path() -> None:
    # A one-entry {str: str} mapping goes through a cache; the same text must come out
    # of the generic path (a mapping with a second entry shows the first line).
    for case in _load("psych_corpus.json")[:99]:
        fast = dump({"exec_local": case["input"]})
        generic = dump({"exec_local": case["input"], "z": None})
        assert generic.startswith(fast.removesuffix("...\n"))


# ---------------------------------------------------------------------------
# Round trips through PyYAML.
# ---------------------------------------------------------------------------

_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


def _pyyaml_reads_plain_as_string(text: str) -> bool:
    """Tell whether PyYAML (YAML 1.1 resolvers) reads ``text`` as a string.

    Psych emits a scalar plain whenever *its own* scanner reads it back as a
    string. PyYAML's YAML 1.1 resolvers differ on a few forms (``1:2:3:4``,
    ``1__0``, ``1._5`` and ``0x_`` are numbers for PyYAML, invalid dates such as
    ``2020-02-30`` or times such as ``2020-01-01 25:00:00`` are timestamps that
    fail to construct). Such texts are not an emitter problem, so the round-trip
    properties skip strings whose dump is plain and that PyYAML would not read back
    as a string.
    """
    if dump(text).startswith(("--- '", '--- "', "--- |", "--- !!")):
        return True
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG


_SPECIAL = " \t\n\r\x00\x01\x1b\x7f\x85\xa0\u2028\u2029\ufeff\U0001f600é日"
_INDICATORS = "-?:,[]{}#&*!|>'\"%@`~<=.$/\\"
_TEXT_ALPHABET = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits),
    st.sampled_from(_INDICATORS),
    st.sampled_from(_SPECIAL),
    st.characters(exclude_categories=("Cs",)),
)
_FRAGMENTS = st.sampled_from(
    [
        "yes",
        "No",
        "true",
        "off",
        "null",
        "~",
        "y",
        "n",
        "<<",
        "12:30",
        "1_000",
        "0x1F",
        "0755",
        "08",
        "1.5",
        "1e3",
        ".inf",
        "2020-01-01",
        "2020-01-01 10:00:00",
        ": ",
        " #",
        "---",
        "...",
        "  ",
        "\n",
        "\n\n",
        "x" * 85,
        " word" * 20,
    ]
)
_TEXTS = st.lists(st.one_of(st.text(_TEXT_ALPHABET, max_size=12), _FRAGMENTS), max_size=8).map(
    "".join
)


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_round_trip_in_mapping(text: str) -> None:
    assume(_pyyaml_reads_plain_as_string(text))
    assert yaml.safe_load(dump({"k": text}))["k"] == text


@settings(max_examples=400, deadline=None)
@given(_TEXTS)
def test_round_trip_scalar(text: str) -> None:
    assume(_pyyaml_reads_plain_as_string(text))
    assert yaml.safe_load(dump(text)) == text


_SAFE_TEXTS = _TEXTS.filter(_pyyaml_reads_plain_as_string)
_NESTED = st.recursive(
    _SAFE_TEXTS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_SAFE_TEXTS, children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_NESTED)
def test_round_trip_nested(value: object) -> None:
    assert yaml.safe_load(dump(value)) == value
