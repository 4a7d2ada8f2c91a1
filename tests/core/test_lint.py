"""The linter's pure part: schema findings with positions, commands, globals, step files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kameleon_nb.core import lint
from kameleon_nb.core.lint import FileKind, Finding

SCHEMAS = Path(lint.__file__).resolve().parent.parent / "data" / "schema"


def schema(kind: FileKind) -> dict[str, object]:
    return json.loads((SCHEMAS / f"{kind.value}.schema.json").read_text())


def findings(text: str, kind: FileKind = FileKind.RECIPE) -> list[str]:
    document = lint.compose(text, "r.yaml")
    return sorted(str(f) for f in lint.schema_findings(document, schema(kind), kind))


@pytest.mark.parametrize("kind", list(FileKind))
def test_every_schema_is_a_valid_draft_2020_12_schema(kind):
    data = schema(kind)
    Draft202012Validator.check_schema(data)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# what yaml-language-server (a draft-07 validator) reads as we do
_DRAFT_07_KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "type", "enum", "const",
    "properties", "additionalProperties", "items", "required", "minItems", "maxItems",
    "minProperties", "maxProperties", "anyOf", "if", "then",
}  # fmt: skip


def _keywords(node: object, path: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if path.endswith(("/properties", "/$defs")):
                found |= _keywords(value, f"{path}/{key}")
            else:
                found.add(key)
                found |= _keywords(value, f"{path}/{key}")
    elif isinstance(node, list):
        for item in node:
            found |= _keywords(item, path)
    return found


@pytest.mark.parametrize("kind", list(FileKind))
def test_the_schemas_use_only_keywords_draft_07_editors_also_read(kind):
    assert _keywords(schema(kind)) <= _DRAFT_07_KEYWORDS


def test_the_schemas_share_one_definition_of_a_command():
    commands = {
        json.dumps(schema(kind)["$defs"]["command"], sort_keys=True)
        for kind in FileKind
        if "command" in schema(kind)["$defs"]
    }
    assert len(commands) == 1


def test_the_schema_knows_every_builtin_command():
    properties = schema(FileKind.STEPS)["$defs"]["command"]["properties"]
    assert set(lint.BUILTIN_COMMANDS) <= set(properties)


def test_finding_line_with_and_without_a_suggestion():
    assert str(Finding("r.yaml", 3, 5, "setpu", "unknown", "setup")) == (
        "r.yaml:3:5: setpu: unknown (did you mean 'setup'?)"
    )
    assert str(Finding("r.yaml", 1, 1, "x", "bad")) == "r.yaml:1:1: x: bad"


def test_unknown_top_level_keys_with_positions_and_suggestions():
    text = "extends: parent.yaml\nglobals:\n  a: 1\nsetpu:\n  - tools\n"
    assert findings(text) == [
        "r.yaml:1:1: extends: unknown recipe key: Kameleon ignores it and everything "
        "under it (did you mean 'extend'?)",
        "r.yaml:2:1: globals: unknown recipe key: Kameleon ignores it and everything "
        "under it (did you mean 'global'?)",
        "r.yaml:4:1: setpu: unknown recipe key: Kameleon ignores it and everything "
        "under it (did you mean 'setup'?)",
    ]


def test_on_checkpoint_value_is_reported_at_the_value():
    text = "setup:\n  - s:\n    - m:\n      - on_checkpoint: redoo\n      - exec_in: x\n"
    (line,) = findings(text)
    assert line.startswith("r.yaml:4:24: on_checkpoint: unknown value 'redoo': Kameleon treats")
    assert line.endswith("(did you mean 'redo'?)")


def test_values_are_shown_as_written():
    text = "setup:\n  - s:\n    - m:\n      - on_checkpoint: yes\n      - reload_context: ~\n"
    assert [line.split(": ", 2)[2].split(" (")[0] for line in findings(text)] == [
        "unknown value 'yes': Kameleon treats it as use_cache",
        "unknown value '~'",
    ]


def test_context_settings_and_checkpoint_hooks():
    text = (
        "global:\n  out_context:\n    cmd: bash\n    workdri: /x\n"
        "checkpoint:\n  create: []\n  apply: []\n  list: []\n  clear: []\n  craete: []\n"
    )
    assert findings(text) == [
        "r.yaml:10:3: craete: unknown checkpoint hook: Kameleon never runs it "
        "(did you mean 'create'?)",
        "r.yaml:4:5: workdri: unknown out_context setting: Kameleon ignores it "
        "(did you mean 'workdir'?)",
    ]


def test_checkpoint_file_needs_its_hooks():
    (line,) = findings("create: []\napply: []\n", FileKind.CHECKPOINT)
    assert line == "r.yaml:1:1: checkpoint: missing list, clear"


def test_command_arity_and_types_in_a_step_file():
    text = "- m:\n  - pipe:\n    - exec_in: a\n  - test: [exec_in: a]\n- v: 1\n- 3\n"
    assert findings(text, FileKind.STEPS) == [
        "r.yaml:2:5: pipe: takes 2 commands, got 1",
        "r.yaml:4:5: test: takes 2 or 3 commands, got 1",
        "r.yaml:6:3: steps: expected mapping, got a number",
    ]


def test_empty_sections_and_psych_scalars_are_valid():
    text = "setup:\n\nexport: ~\nbootstrap: []\nglobal:\n  n: 1,000\n  t: :sym\n"
    assert findings(text) == []


def test_a_value_of_no_allowed_type():
    assert findings("aliases: 3\ncheckpoint: [a]\n") == [
        "r.yaml:1:10: aliases: expected string or list or mapping or null, got a number",
        "r.yaml:2:13: checkpoint: expected string or mapping, got a list",
    ]


def test_a_section_that_is_not_a_list():
    assert findings("export: save_appliance\n") == [
        "r.yaml:1:9: export: expected list or null, got a text"
    ]


def test_duplicate_keys_point_at_the_last_one():
    text = "setup:\n  - a\nsetup: x\n"
    assert findings(text) == ["r.yaml:3:8: setup: expected list or null, got a text"]


def test_unknown_commands_and_undefined_aliases():
    text = (
        "- m:\n  - exce_in: x\n  - local2in: [a, b]\n  - group:\n    - brekpoint: y\n"
        "  - my_alias: [not_a_command]\n  - on_setup_clean:\n    - exec_ot: z\n"
        "  - echo hello\n"
    )
    document = lint.compose(text, "s.yaml")
    lists = [node for _, _, node in lint.step_file_microsteps(document)]
    lines = [str(f) for f in lint.command_findings(document, lists, ["my_alias"])]
    assert lines[0] == (
        "s.yaml:2:5: exce_in: unknown command: Kameleon warns 'Unknown command' and runs "
        "nothing (did you mean 'exec_in'?)"
    )
    assert lines[1].startswith("s.yaml:3:5: local2in: undefined alias: no aliases file")
    assert lines[2].endswith("(did you mean 'breakpoint'?)")
    assert lines[3].startswith("s.yaml:8:7: exec_ot:")
    assert lines[3].endswith("(did you mean 'exec_out'?)")
    assert lines[4].startswith("s.yaml:9:5: echo hello: not a command")
    assert len(lines) == 5


def test_aliases_suggest_alias_names():
    document = lint.compose("- m:\n  - local2out: [a, b]\n", "s.yaml")
    lists = [node for _, _, node in lint.step_file_microsteps(document)]
    (finding,) = lint.command_findings(document, lists, ["local2in", "out2in"])
    assert finding.suggestion == "local2in"


def test_unknown_aliases_are_not_reported_when_the_aliases_are_unknown():
    document = lint.compose("- m:\n  - local2out: [a, b]\n", "s.yaml")
    lists = [node for _, _, node in lint.step_file_microsteps(document)]
    assert lint.command_findings(document, lists, [], aliases_known=False) == []


def test_only_the_wanted_microsteps_are_walked():
    document = lint.compose("- a:\n  - bad_one: x\n- b:\n  - exec_in: y\n", "s.yaml")
    assert [name for name, _, _ in lint.step_file_microsteps(document, frozenset({"b"}))] == ["b"]


def test_referenced_variables():
    texts = ["echo $${a} $$b-c $${kameleon_data_dir}/x", "no $$ here $(pwd) ${SHELL}"]
    assert lint.referenced_variables(texts) == {"a", "b-c", "kameleon_data_dir"}


def test_unused_globals_spare_machinery_references_and_step_variables():
    text = (
        "global:\n  used: 1\n  unused: 2\n  release: x\n  in_context: {cmd: bash}\n"
        "  kameleon_cwd: /b\n  rootfs: /r\n  unsed: 3\n"
    )
    document = lint.compose(text, "r.yaml")
    lines = [
        str(f)
        for f in lint.unused_global_findings(
            document, frozenset({"used", "unsued"}), frozenset({"release"})
        )
    ]
    assert [line.split(": ")[0] for line in lines] == ["r.yaml:3:3", "r.yaml:8:3"]
    assert lines[0].endswith("(did you mean 'unsued'?)")


def test_a_recipe_without_globals_has_no_unused_global():
    document = lint.compose("setup: []\n", "r.yaml")
    assert lint.unused_global_findings(document, frozenset(), frozenset()) == []


def test_step_name_matches_variables():
    assert lint.step_name_matches("$${distrib}_base", "debian_base")
    assert lint.step_name_matches("$$backend", "docker")
    assert not lint.step_name_matches("base", "bases")


def test_unused_step_files_suggest_a_name_no_file_has():
    found = lint.unused_step_file_findings(
        {"steps/setup/instal_tools.yaml": "instal_tools", "steps/setup/used.yaml": "used"},
        frozenset(),
        ["install_tools", "used", "$${x}_y"],
        ".",
    )
    assert [str(f) for f in found] == [
        "steps/setup/instal_tools.yaml:1:1: instal_tools: unreachable step file: no recipe "
        "under . uses a macrostep 'instal_tools' (did you mean 'install_tools'?)"
    ]


def test_section_entries_and_embedded_microsteps():
    text = (
        "setup:\n  - plain\n  - sel: [a, b]\n  - emb:\n    - m: [exec_in: x]\n    - v: 1\n"
        '  - "@base"\n'
    )
    document = lint.compose(text, "r.yaml")
    entries = list(lint.section_entries(document))
    assert [(s, i, name) for s, i, _, name, _ in entries] == [
        ("setup", 0, "plain"),
        ("setup", 1, "sel"),
        ("setup", 2, "emb"),
        ("setup", 3, "@base"),
    ]
    assert lint.embedded_microsteps(entries[1][4]) is None
    embedded = lint.embedded_microsteps(entries[2][4])
    assert embedded is not None
    assert len(embedded) == 1


def test_summary_lines():
    one = Finding("a.yaml", 1, 1, "k", "m")
    assert lint.summary([one], 1) == "1 recipe checked: 1 finding in 1 file"
    two = Finding("b.yaml", 1, 1, "k", "m")
    assert lint.summary([one, two], 3) == "3 recipes checked: 2 findings in 2 files"


def test_format_findings_sorts_and_deduplicates():
    a = Finding("a.yaml", 2, 1, "k", "m")
    b = Finding("a.yaml", 10, 1, "k", "m")
    assert lint.format_findings([b, a, b]) == [str(a), str(b)]
