"""Variable substitution: upstream's textual, recursive algorithm, with cycles reported."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameleon_nb.core.variables import (
    VariableCycleError,
    overload,
    ruby_str,
    substitute,
)

NAMES = st.sampled_from(["a", "b", "c", "d-e", "f_1"])
PLAIN = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=20)


def lookup_of(values: dict[str, str]):
    return values.get


@given(PLAIN)
def test_text_without_references_is_unchanged(text):
    assert substitute(text, lambda name: "X", source="r") == text


@given(
    st.lists(st.tuples(PLAIN, NAMES, st.booleans()), max_size=6),
    PLAIN,
    st.dictionaries(NAMES, PLAIN),
)
def test_plain_values_are_inserted_in_place(parts, end, values):
    text = "".join(f"{pre}$${{{n}}}" if braced else f"{pre}$${n} " for pre, n, braced in parts)
    text += end
    expected = re.sub(
        r"\$\$\{([a-zA-Z0-9_-]+)\}|\$\$([a-zA-Z0-9_-]+)",
        lambda m: values.get(m.group(1) or m.group(2), ""),
        text,
    )
    assert substitute(text, lookup_of(values), source="r") == expected


@given(st.dictionaries(NAMES, st.lists(NAMES, max_size=3), min_size=1))
def test_reference_graphs_either_resolve_or_report_a_cycle(graph):
    values = {name: "".join(f"<$${{{ref}}}>" for ref in refs) for name, refs in graph.items()}

    def reaches(start: str, seen: frozenset[str]) -> bool:
        return any(
            ref in seen or (ref in graph and reaches(ref, seen | {ref}))
            for ref in graph.get(start, [])
        )

    for name in graph:
        text = f"x $${{{name}}} y"
        if reaches(name, frozenset({name})):
            with pytest.raises(VariableCycleError) as err:
                substitute(text, lookup_of(values), source="r.yaml")
            chain = err.value.chain
            assert chain[0] == chain[-1]
            assert "r.yaml" in str(err.value)
        else:
            result = substitute(text, lookup_of(values), source="r")
            assert "$$" not in result


def test_nested_values_are_rescanned():
    values = {"arch": "amd64", "iso": "debian-$${arch}.iso", "path": "/tmp/$${iso}"}
    assert (
        substitute("cp $${path} .", lookup_of(values), source="r") == "cp /tmp/debian-amd64.iso ."
    )


def test_dollar_dollar_without_a_name_is_left_alone():
    text = "echo $$ > /sys/tasks; echo ${rootfs#/} $${x}"
    assert substitute(text, lookup_of({"x": "1"}), source="r") == (
        "echo $$ > /sys/tasks; echo ${rootfs#/} 1"
    )


def test_unbraced_name_takes_dashes_and_warns():
    warned: list[str] = []
    values = {"arch-live": "L", "arch": "A"}
    out = substitute("$$arch-live", lookup_of(values), source="r", on_unbraced=warned.append)
    assert out == "L"
    assert warned == ["arch-live"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.5, "12.5"),
        (18.1, "18.1"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        (493, "493"),
        (1e20, "1.0e+20"),
        (1e-5, "1.0e-05"),
        (0.0001, "0.0001"),
        ({"cmd": "bash", "n": None}, '{"cmd"=>"bash", "n"=>nil}'),
        (["a", 1], '["a", 1]'),
    ],
)
def test_ruby_string_forms(value, text):
    assert ruby_str(value) == text


def test_overload_replaces_the_first_reference_by_the_parent_value():
    assert overload("$${pkgs} vim", "pkgs", "curl") == "curl vim"
    assert overload("no self ref $${x}", "pkgs", "curl") == "no self ref $${x}"


def test_overload_bug_keeps_the_self_reference_and_is_then_a_cycle():
    child = overload("$${other} $${pkgs}", "pkgs", "curl")
    assert child == " $${pkgs}"
    with pytest.raises(VariableCycleError):
        substitute(child, lookup_of({"pkgs": child}), source="r")
