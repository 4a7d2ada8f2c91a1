"""YAML text surgery: splices keep every untouched byte; fallbacks keep the data right."""

from __future__ import annotations

import pytest
import yaml

from kameleon_nb.frontends.notebook.yaml_text import (
    NewItem,
    ScalarEdit,
    SeqEdit,
    YamlDoc,
    edit_yaml,
    emit_items,
    emit_scalar,
    markdown_of_comments,
    same_data,
)

STEP = """\
# Greets people.
- who: nobody

# the greeting
- say_hello:
  - exec_out: echo "hello $${who}"   # loud
- say_bye:
  - exec_in: 'echo bye'
# trailing comment
"""


def test_replacing_one_microstep_keeps_everything_else():
    edited = edit_yaml(
        STEP,
        "s.yaml",
        [SeqEdit((), replace={2: NewItem("say_bye", [{"exec_in": "echo ciao\necho!\n"}])})],
    )
    assert edited.note is None
    assert edited.text == STEP.replace(
        "  - exec_in: 'echo bye'\n", "  - exec_in: |\n      echo ciao\n      echo!\n"
    )


def test_comments_header_and_appends():
    edited = edit_yaml(
        STEP,
        "s.yaml",
        [
            SeqEdit(
                (),
                comments={1: "The greeting.\n\nLoud.", 2: "Bye."},
                append=[NewItem("wave", [{"exec_in": "wave"}], comments="New.")],
                header="Greets.",
            )
        ],
    )
    assert edited.text == (
        "# Greets.\n- who: nobody\n\n# The greeting.\n#\n# Loud.\n- say_hello:\n"
        '  - exec_out: echo "hello $${who}"   # loud\n# Bye.\n- say_bye:\n'
        "  - exec_in: 'echo bye'\n\n# New.\n- wave:\n  - exec_in: wave\n# trailing comment\n"
    )


def test_unchanged_comments_are_not_rewritten():
    seq = SeqEdit((), comments={1: "the greeting", 2: ""}, header="Greets people.")
    assert edit_yaml(STEP, "s.yaml", [seq]).text == STEP


def test_a_yaml_body_is_written_as_given():
    body = "# first\n- exec_in: x   # keep me\n- pipe:\n    - exec_local: a\n    - exec_in: b\n"
    edited = edit_yaml(
        STEP,
        "s.yaml",
        [
            SeqEdit(
                (),
                replace={
                    1: NewItem(
                        "say_hello",
                        yaml.safe_load(body),
                        text=body,
                        comments="",
                    )
                },
            )
        ],
    )
    assert "\n- say_hello:   \n" not in edited.text
    assert (
        "- say_hello:\n  # first\n  - exec_in: x   # keep me\n  - pipe:\n"
        "      - exec_local: a\n      - exec_in: b\n- say_bye:" in edited.text
    )
    assert "# the greeting" not in edited.text


def test_nested_lists_of_a_recipe_and_a_missing_section():
    recipe = (
        "# DESCRIPTION: r\n---\nextend: ../base\nsetup:\n  - s:\n    - v: 1\n"
        "    # about m\n    - m:\n      - exec_in: a\n"
    )
    edited = edit_yaml(
        recipe,
        "r.yaml",
        [
            SeqEdit(("setup", 0, "s"), replace={1: NewItem("m", [{"exec_in": "b"}])}),
            SeqEdit(("setup",), append=[NewItem("t")]),
            SeqEdit(("export",), append=[NewItem("u")]),
        ],
        [ScalarEdit(("extend",), "../../x/base")],
    )
    assert edited.text == (
        "# DESCRIPTION: r\n---\nextend: ../../x/base\nsetup:\n  - s:\n    - v: 1\n"
        "    # about m\n    - m:\n      - exec_in: b\n  - t\nexport:\n  - u\n"
    )


def test_an_anchor_shared_by_a_changed_microstep_falls_back_to_ruamel():
    text = "- a: &x\n  - exec_in: one\n- b: *x\n"
    edited = edit_yaml(text, "s.yaml", [SeqEdit((), replace={0: NewItem("a", [{"exec_in": "2"}])})])
    assert edited.note is not None
    assert "ruamel" in edited.note
    assert yaml.safe_load(edited.text) == [
        {"a": [{"exec_in": "2"}]},
        {"b": [{"exec_in": "one"}]},
    ]


def test_a_flow_list_falls_back_but_keeps_the_data():
    text = "# keep\n- a: [{exec_in: x}]\n- b: [{exec_in: y}]\n"
    edited = edit_yaml(
        text, "s.yaml", [SeqEdit((), replace={1: NewItem("b", [{"exec_in": "yes"}])})]
    )
    assert same_data(
        yaml.safe_load(edited.text), [{"a": [{"exec_in": "x"}]}, {"b": [{"exec_in": "yes"}]}]
    )


def test_duplicate_keys_take_the_last_one_like_kameleon():
    text = "extend: a\nglobal: {x: 1}\nextend: b\n"
    edited = edit_yaml(text, "r.yaml", [], [ScalarEdit(("extend",), "c")])
    assert edited.text == "extend: a\nglobal: {x: 1}\nextend: c\n"


@pytest.mark.parametrize(
    "value",
    ["plain", "yes", "0755", "12:30", "a: b", "#x", "- x", "@x", "", " lead", "tab\tin", "~"],
)
def test_scalars_read_back_as_written(value):
    assert yaml.safe_load(f"k: {emit_scalar(value)}") == {"k": value}


@pytest.mark.parametrize(
    "value",
    [
        "echo a\necho b\n",
        "no final newline\nx",
        "  leading spaces\nx\n",
        "trailing\n\n\n",
        "trailing spaces   \nx\n",
        "tab\there\n",
        "\x07bell\nx\n",
        "carriage\r\nreturn\n",
        "unicode é ✓\nx\n",
    ],
)
def test_multi_line_values_read_back(value):
    text = emit_items([{"exec_in": value}])
    assert yaml.safe_load(text) == [{"exec_in": value}]


def test_same_data_is_strict_about_types():
    assert not same_data([{"exec_in": True}], [{"exec_in": 1}])
    assert not same_data({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert same_data({"a": [1.5, None]}, {"a": [1.5, None]})


def test_markdown_of_comments():
    assert markdown_of_comments("  # a\n  #\n  #b\n\n  # c\n") == "a\n\nb\n\nc"
    assert markdown_of_comments("---\n\n") == ""


def test_comment_detection_ignores_hashes_in_scalars():
    doc = YamlDoc("- a:\n  - exec_in: echo '#not' a#b\n  - exec_in: |\n      # script\n", "s")
    layout = doc.seq_layout(doc.root, 0)
    assert layout is not None
    assert not layout.items[0].has_comment
    doc = YamlDoc("- a:\n  - exec_in: x # yes\n", "s")
    layout = doc.seq_layout(doc.root, 0)
    assert layout is not None
    assert layout.items[0].has_comment
