"""The quick paths of a 100,000-microstep dry run give what the slow paths give (issue 12).

A dry run of a recipe with 100,000 microsteps took about 20 s: the collector's full
collections, a YAML parse per command text, PyYAML's constructor. Each quick path
must be invisible: same data, same types, same shared objects, same errors.
"""

from __future__ import annotations

import contextlib
import gc
import math
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kameleon_nb.core import command_texts, psych, psych_load
from kameleon_nb.core import resolve as resolve_module
from kameleon_nb.core.gcpause import full_collections_paused
from kameleon_nb.core.loader import load_recipe, parse_yaml
from kameleon_nb.core.psych_load import PsychLoader, ScalarTooLargeError
from kameleon_nb.core.resolve import ResolveOptions, resolve_recipe
from kameleon_nb.errors import KameleonError

ROOT = Path(__file__).resolve().parents[2]


class _ReferenceLoader(PsychLoader):  # type: ignore[misc]
    """PsychLoader through PyYAML's own composer and constructor (no quick path)."""

    get_single_data = yaml.constructor.BaseConstructor.get_single_data


def _reference(text: str) -> object:
    return yaml.load(text, Loader=_ReferenceLoader)


def _same(left: object, right: object, pairs: dict[int, int] | None = None) -> bool:
    """Equal, with the same types all the way down, and the same sharing of objects."""
    pairs = {} if pairs is None else pairs
    if type(left) is not type(right):
        return False
    if isinstance(left, dict | list):
        if id(left) in pairs:
            return pairs[id(left)] == id(right)
        pairs[id(left)] = id(right)
        if isinstance(left, dict):
            assert isinstance(right, dict)
            return list(left) == list(right) and all(
                _same(a, b, pairs) for a, b in zip(left.values(), right.values(), strict=True)
            )
        assert isinstance(right, list)
        return len(left) == len(right) and all(
            _same(a, b, pairs) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return bool(left == right)


def _outcome(load: object, text: str) -> tuple[str, object]:
    try:
        return ("data", load(text))  # type: ignore[operator]
    except (yaml.YAMLError, KameleonError, ScalarTooLargeError) as err:
        return ("error", f"{type(err).__name__}: {err}")


def _recipe_texts() -> list[tuple[str, str]]:
    files = sorted(
        [
            *ROOT.glob("examples/**/*.yaml"),
            *ROOT.glob("tests/data/recipes/**/*.yaml"),
            *ROOT.glob("kameleon_nb/data/**/*.yaml"),
        ]
    )
    texts = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files]
    with tarfile.open(ROOT / "tests" / "data" / "corpus" / "K.tar.gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith(".yaml"):
                stream = archive.extractfile(member)
                assert stream is not None
                texts.append((member.name, stream.read().decode("utf-8", "replace")))
    return texts


def test_every_real_recipe_file_is_constructed_as_pyyaml_does() -> None:
    texts = _recipe_texts()
    assert len(texts) > 300
    for name, text in texts:
        mine, theirs = (
            _outcome(lambda t: yaml.load(t, Loader=PsychLoader), text),
            _outcome(_reference, text),
        )
        assert mine[0] == theirs[0], name
        assert _same(mine[1], theirs[1]), name


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: &x [1, 2]\nb: *x\nc: *x\n", id="shared-alias"),
        pytest.param("a: &x\n  b: *x\n", id="recursive-alias"),
        pytest.param("base: &b {k: 1}\nderived:\n  <<: *b\n  j: 2\n", id="merge-key"),
        pytest.param("a: !!binary aGVsbG8=\nb: !!str 12\nc: '12'\n", id="tags"),
        pytest.param("a: !!set {x, y}\nb: !!omap [{k: v}]\n", id="set-omap"),
        pytest.param("? [a, b]\n: c\n", id="unhashable-key"),
        pytest.param("a: !custom x\n", id="unknown-tag"),
        pytest.param("{a: 1, a: 2, b: [yes, no, ~, 1:30, 1,000, :sym, 2001-02-03]}\n", id="dup"),
        pytest.param("=: =\n<<: x\n", id="value-and-merge-scalars"),
        pytest.param("- " * 300 + "x\n", id="deep"),
        pytest.param("x: " + "y" * (2**21 + 1) + "\n", id="scalar-over-budget"),
        pytest.param("", id="empty"),
        pytest.param("just a scalar\n", id="scalar-document"),
    ],
)
def test_odd_documents_give_pyyamls_data_or_error(text: str) -> None:
    mine = _outcome(lambda t: yaml.load(t, Loader=PsychLoader), text)
    theirs = _outcome(_reference, text)
    assert mine[0] == theirs[0]
    if mine[0] == "error":
        assert mine[1] == theirs[1]
    else:
        assert _same(mine[1], theirs[1])


_SCALARS = st.one_of(
    st.text(alphabet="ab 01:-#&*!|>'\"%@`,[]{}?=~.\t\\é", max_size=12),
    st.sampled_from(["yes", "no", "on", "~", "null", "1:30", "1,000", ":sym", "0o17", "017"]),
    st.integers(),
    st.booleans(),
    st.none(),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(alphabet="abk_ :", min_size=1, max_size=6), children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_dumped_documents_are_constructed_as_pyyaml_does(value: object) -> None:
    text = psych.dump(value)
    mine, theirs = (
        _outcome(lambda t: yaml.load(t, Loader=PsychLoader), text),
        _outcome(_reference, text),
    )
    assert mine[0] == theirs[0]
    assert _same(mine[1], theirs[1])


_KEYS = st.sampled_from(["exec_in", "exec_local", "on", "yes", "null", "a1", "_x", "group"])
_VALUES = st.text(alphabet="ab 0189.:-#&*!|>'\"%@`,[]{}?=~\t\\<é/$", max_size=16)


@settings(max_examples=1000, deadline=None)
@given(_KEYS, st.sampled_from([":", ": ", ":  ", " : ", ""]), _VALUES)
def test_a_command_text_parses_as_yaml_parses_it(key: str, colon: str, value: str) -> None:
    text = key + colon + value
    quick = _outcome(command_texts.parse.__wrapped__, text)
    slow = _outcome(lambda t: parse_yaml(t, source="<unknown>"), text)
    assert quick[0] == slow[0]
    assert _same(quick[1], slow[1])


def test_the_quick_command_parse_covers_common_commands() -> None:
    # not a behaviour check (the test above is): the quick path must apply to these
    for text in ("exec_in: apt-get install -y curl", "exec_local: echo 1:30", "my_alias"):
        assert command_texts._SIMPLE_COMMAND_RE.fullmatch(text), text


def test_full_collections_pause_and_come_back() -> None:
    before = gc.get_threshold()
    generations: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        generations.append(info["generation"])

    with full_collections_paused():
        gc.callbacks.append(record)
        try:
            with full_collections_paused():
                assert gc.get_threshold()[:2] == before[:2]
                kept = [[i] for i in range(300_000)]  # would start full collections
            assert gc.get_threshold()[2] > 10**6  # the outer pause still holds
        finally:
            gc.callbacks.remove(record)
    assert len(kept) == 300_000
    assert generations  # young collections still ran
    assert 2 not in generations
    assert gc.get_threshold() == before
    with pytest.raises(ValueError, match="boom"), full_collections_paused():
        raise ValueError("boom")
    assert gc.get_threshold() == before


def test_concurrent_pauses_restore_the_thresholds() -> None:
    before = gc.get_threshold()
    barrier = threading.Barrier(4)

    def pause() -> None:
        with full_collections_paused():
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=pause) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert gc.get_threshold() == before


def _emitted(key: str, value: str) -> str:
    emitter = psych._Emitter({})
    emitter.mapping({key: value})
    return emitter.finish()


_DUMP_TEXT = st.text(
    alphabet=st.sampled_from(list("ab 01:-#&*!|>'\"%@`,[]{}?=~.\t\\\n<é日\x85\u2028/$y")),
    max_size=90,
)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_DUMP_TEXT, _KEYS), _DUMP_TEXT)
def test_a_command_dumps_as_the_emitter_writes_it(key: str, value: str) -> None:
    assert psych._dump_command.__wrapped__(key, value) == _emitted(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("exec_in", "x" * 72),  # column 81: the last that fits
        ("exec_in", "x" * 73),
        ("exec_in", "a " * 40),
        ("exec_in", "y"),
        ("exec_in", "<<"),
        ("<<", "x"),
        ("k" * 129, "x"),
        ("exec_in", "1:30"),
        ("exec_in", "echo ok"),
    ],
)
def test_edge_commands_dump_as_the_emitter_writes_them(key: str, value: str) -> None:
    assert psych._dump_command.__wrapped__(key, value) == _emitted(key, value)


# --- the whole pipeline, with and without the quick paths


@contextlib.contextmanager
def _slow_paths() -> Iterator[None]:
    """Every quick path off (and the caches that hold their results emptied)."""

    def not_plain(loader: object) -> object:
        raise psych_load._NotPlain

    saved = (
        resolve_module._plain_command,
        psych._one_plain_line,
        command_texts._SIMPLE_COMMAND_MAX,
        psych_load._read_plainly,
    )
    resolve_module._plain_command = lambda text, aliases: None  # type: ignore[assignment]
    psych._one_plain_line = lambda key, value: False  # type: ignore[assignment]
    command_texts._SIMPLE_COMMAND_MAX = -1
    psych_load._read_plainly = not_plain  # type: ignore[assignment]
    _clear_caches()
    try:
        yield
    finally:
        (
            resolve_module._plain_command,
            psych._one_plain_line,
            command_texts._SIMPLE_COMMAND_MAX,
            psych_load._read_plainly,
        ) = saved
        _clear_caches()


def _clear_caches() -> None:
    for cached in (
        command_texts.parse,
        command_texts.value_of,
        command_texts._gsub_command,
        psych._dump_command,
    ):
        cached.cache_clear()


def _answer(path: Path) -> object:
    try:
        loaded = load_recipe(str(path), cwd=str(path.parent))
        recipe = resolve_recipe(
            loaded, ResolveOptions(build_path="/tmp/b", stored_uuid=("u", "u")), cwd="/tmp"
        )
    except KameleonError as err:
        return f"{type(err).__name__}: {err}"
    return [
        (m.slug, m.step_id, [(c.key, c.value, c.text) for c in m.commands])
        for m in recipe.microsteps()
    ]


def test_the_fixture_recipes_resolve_the_same_without_quick_paths() -> None:
    recipes = sorted(
        [
            *ROOT.glob("examples/*/*.yaml"),
            *ROOT.glob("tests/data/recipes/*/*.yaml"),
            *ROOT.glob("tests/data/fuzz/**/r.yaml"),
        ]
    )
    assert len(recipes) > 50
    quick = {str(r): _answer(r) for r in recipes}
    with _slow_paths():
        slow = {str(r): _answer(r) for r in recipes}
    assert quick == slow


_COMMAND_KEYS = st.sampled_from(["exec_in", "exec_local", "on", "al", "group", "x:y", "<<"])
_COMMAND_VALUES = st.one_of(
    _VALUES,
    st.sampled_from(["echo $${v}", "a---b", "@1", "1:30", "y", "x" * 79, "echo " + "w " * 40]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_COMMAND_KEYS, _COMMAND_VALUES), min_size=1, max_size=6),
    st.booleans(),
)
def test_generated_commands_resolve_the_same_without_quick_paths(
    commands: list[tuple[str, str]], dashes: bool
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        recipe = Path(scratch) / "r.yaml"
        alias = "echo ---" if dashes else "echo @1"
        body = {
            "global": {"v": "val"},
            "aliases": {"al": [{"exec_local": alias}]},
            "setup": [{"s": [{"m": [{key: value} for key, value in commands]}]}],
        }
        recipe.write_text(psych.dump(body), encoding="utf-8")
        quick = _answer(recipe)
        with _slow_paths():
            slow = _answer(recipe)
    assert quick == slow
