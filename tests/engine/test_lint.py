"""``kameleon lint`` on recipes written in a scratch directory: each kind of finding."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kameleon_nb.engine.lint import lint_recipes
from kameleon_nb.errors import MissingFileError


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def lines(root: Path, *recipes: str, **globals_: str) -> list[str]:
    report = lint_recipes(list(recipes) or ["r.yaml"], cli_globals=globals_, cwd=str(root))
    return [str(f) for f in report.findings]


TOOLS = """\
    - install:
      - exec_in: echo $${package}
    - configure:
      - exec_local: echo configured
    """


def test_a_clean_recipe_has_no_findings(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                global:
                  package: vim
                setup:
                  - tools
                """,
            "steps/setup/tools.yaml": TOOLS,
        },
    )
    assert lines(tmp_path) == []


def test_the_issue_examples(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                extends: parent.yaml
                globals:
                  x: 1
                setpu:
                  - tools
                bootstrap:
                  - inline:
                    - hello:
                      - exce_in: echo hi
                      - on_checkpoint: redoo
                """,
        },
    )
    found = lines(tmp_path)
    assert [line.split(": ")[0:2] for line in found] == [
        ["r.yaml:1:1", "extends"],
        ["r.yaml:2:1", "globals"],
        ["r.yaml:4:1", "setpu"],
        ["r.yaml:9:9", "exce_in"],
        ["r.yaml:10:24", "on_checkpoint"],
    ]
    suggestions = [line.rsplit("(did you mean ", 1)[-1] for line in found]
    assert suggestions == ["'extend'?)", "'global'?)", "'setup'?)", "'exec_in'?)", "'redo'?)"]


def test_an_undefined_alias_that_kameleon_nb_ships_says_where(tmp_path):
    write(tmp_path, {"r.yaml": "setup:\n  - s:\n    - m:\n      - write_in: [/etc/x, y]\n"})
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:4:9: write_in: undefined alias")
    assert "add 'aliases: chroot.yaml'" in found


def test_on_checkpoint_as_a_step_variable(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                global:
                  package: vim
                setup:
                  - tools:
                    - on_checkpoint: redo
                  - inline:
                    - on_checkpoint: skip
                    - m:
                      - exec_in: true
                """,
            "steps/setup/tools.yaml": "- on_checkpoint: disabled\n" + textwrap.dedent(TOOLS),
        },
    )
    found = lines(tmp_path)
    assert [line.split(": ")[0:2] for line in found] == [
        ["r.yaml:5:7", "on_checkpoint"],
        ["r.yaml:7:7", "on_checkpoint"],
        ["steps/setup/tools.yaml:1:3", "on_checkpoint"],
    ]
    assert "Kameleon ignores it" in found[0]


def test_misspelt_step_and_microstep_selection(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                global:
                  package: vim
                setup:
                  - tool
                  - tools: [instal, configure]
                """,
            "steps/setup/tools.yaml": TOOLS,
        },
    )
    found = lines(tmp_path)
    assert len(found) == 2
    assert found[0].startswith("r.yaml:4:5: tool: unknown step: no setup/tool.yaml")
    assert found[0].endswith("(did you mean 'tools'?)")
    assert found[1].startswith("r.yaml:5:13: instal: unknown microstep of steps/setup/tools.yaml")
    assert found[1].endswith("(did you mean 'install'?)")


def test_step_file_outside_the_search_path_is_named(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "global:\n  package: vim\nsetup:\n  - tools\n",
            "steps/setup/debian/tools.yaml": TOOLS,
        },
    )
    (found,) = lines(tmp_path)
    assert "steps/setup/debian/tools.yaml is not where Kameleon looks" in found
    assert "include_steps" in found


def test_commands_of_step_aliases_and_checkpoint_files(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                aliases: mine.yaml
                checkpoint: mine.yaml
                setup:
                  - tools: [install]
                """,
            "steps/aliases/mine.yaml": """\
                local2in:
                  - exec_local: cat @1
                  - exec_inn: cat > @2
                """,
            "steps/checkpoints/mine.yaml": """\
                create: [exec_local: true]
                apply: [exec_local: true]
                list: [exec_local: true]
                clear: [exec_local: true]
                delet: [exec_local: true]
                """,
            "steps/setup/tools.yaml": """\
                - install:
                  - local2in: [a, b]
                  - loca2in: [a, b]
                  - rescue:
                    - exec_in: a
                    - brekpoint: b
                - other:
                  - not_checked: because not selected
                """,
        },
    )
    found = lines(tmp_path)
    keys = [line.split(": ")[0:2] for line in found]
    assert keys == [
        ["steps/aliases/mine.yaml:3:5", "exec_inn"],
        ["steps/checkpoints/mine.yaml:5:1", "delet"],
        ["steps/setup/tools.yaml:3:5", "loca2in"],
        ["steps/setup/tools.yaml:6:7", "brekpoint"],
    ]
    assert found[1].endswith("(did you mean 'delete'?)")
    assert "unknown command" in found[2]
    assert found[2].endswith("(did you mean 'local2in'?)")


def test_unused_global_and_what_counts_as_a_use(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": """\
                extend: parent.yaml
                global:
                  in_step: 1
                  in_alias: 1
                  in_parent: 1
                  in_sibling: 1
                  step_default: 1
                  in_context:
                    cmd: bash
                  kameleon_cwd: /tmp/b
                  nowhere: 1
                setup:
                  - "@base"
                """,
            "parent.yaml": """\
                aliases: a.yaml
                global:
                  other: $${in_parent}
                setup:
                  - tools
                """,
            "sibling.yaml": "setup:\n  - s:\n    - m:\n      - exec_in: echo $${in_sibling}\n",
            "steps/aliases/a.yaml": "say:\n  - exec_in: echo $${in_alias}\n",
            "steps/setup/tools.yaml": """\
                - step_default: 2
                - install:
                  - exec_in: echo $$in_step $${other} $${step_default}
                """,
        },
    )
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:11:3: nowhere: unused global")


def test_a_global_of_a_parent_used_only_by_a_child_is_not_unused(tmp_path):
    write(
        tmp_path,
        {
            "base.yaml": "global:\n  arch: x86_64\nsetup: []\n",
            "child.yaml": (
                "extend: base.yaml\nsetup:\n  - s:\n    - m:\n      - exec_in: echo $${arch}\n"
            ),
        },
    )
    assert lines(tmp_path, "base.yaml") == []


def test_unreachable_step_file(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "global:\n  package: vim\nsetup:\n  - tools\n",
            "other.yaml": "setup:\n  - helpers\n",
            "steps/setup/tools.yaml": TOOLS,
            "steps/setup/helpers.yaml": "- h:\n  - exec_in: true\n",
            "steps/setup/forgotten.yaml": "- f:\n  - exec_in: true\n",
            "steps/backend/docker.yaml": "setup:\n  - from_backend\n",
            "steps/setup/from_backend.yaml": "- b:\n  - exec_in: true\n",
        },
    )
    (found,) = lines(tmp_path)
    assert found == (
        "steps/setup/forgotten.yaml:1:1: forgotten: unreachable step file: no recipe under . "
        "uses a macrostep 'forgotten'"
    )


def test_build_and_hidden_directories_are_not_searched_for_recipes(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "global:\n  package: vim\nsetup:\n  - tools\n",
            "steps/setup/tools.yaml": TOOLS,
            "steps/setup/old.yaml": "- f:\n  - exec_in: true\n",
            "build/r/copy.yaml": "setup:\n  - old\n",
            ".git/x.yaml": "setup:\n  - old\n",
        },
    )
    (found,) = lines(tmp_path)
    assert found.startswith("steps/setup/old.yaml:1:1: old: unreachable step file")


def test_a_shared_steps_directory_above_the_recipes_is_not_judged(tmp_path):
    write(
        tmp_path,
        {
            "recipes/r.yaml": "global:\n  package: vim\nsetup:\n  - tools\n",
            "steps/setup/tools.yaml": TOOLS,
            "steps/setup/library_step.yaml": "- f:\n  - exec_in: true\n",
        },
    )
    assert lines(tmp_path, "recipes/r.yaml") == []


def test_a_loader_error_is_one_finding_in_the_loaders_words(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "setup:\n  - tools\n",
            "steps/setup/tools.yaml": "- install:\n  - exec_in: [unclosed\n",
        },
    )
    (found,) = lines(tmp_path)
    assert found.startswith("steps/setup/tools.yaml:3:1: yaml: (")
    assert "steps/setup/tools.yaml): " in found


def test_a_resolution_error_is_one_finding(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "setup:\n  - s:\n    - m:\n      - exec_in: echo $${undefined_one}\n",
        },
    )
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:4:23: undefined_one: undefined variable: Kameleon stops")
    assert "variable $${undefined_one} not found" in found


def test_an_undefined_variable_in_a_step_file_suggests_a_global(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": "global:\n  package: vim\nsetup:\n  - tools\n",
            "steps/setup/tools.yaml": "- m:\n  - exec_in: echo $$packge\n",
        },
    )
    unused, undefined = lines(tmp_path)  # the two sides of one misspelling
    assert unused.startswith("r.yaml:2:3: package: unused global")
    assert unused.endswith("(did you mean 'packge'?)")
    assert undefined.startswith("steps/setup/tools.yaml:2:19: packge: undefined variable")
    assert undefined.endswith("(did you mean 'package'?)")


def test_a_cyclic_extend_is_one_finding(tmp_path):
    write(tmp_path, {"r.yaml": "extend: p.yaml\n", "p.yaml": "extend: r.yaml\n"})
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:1:1: load: Cyclic 'extend'")


def test_a_yaml_error_after_substitution_is_at_the_recipe(tmp_path):
    write(
        tmp_path,
        {
            "r.yaml": (
                'global:\n  a: "x\\n  y: [z"\n  b: "$${a}"\n'
                "setup:\n  - s:\n    - m:\n      - exec_in: echo $${b}\n"
            )
        },
    )
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:1:1: yaml: (<unknown>): mapping values are not allowed")


def test_a_yaml_error_in_the_recipe_is_a_finding(tmp_path):
    write(tmp_path, {"r.yaml": "setup: [\n"})
    (found,) = lines(tmp_path)
    assert found.startswith("r.yaml:2:1: yaml: (")


def test_a_missing_recipe_is_an_error(tmp_path):
    with pytest.raises(MissingFileError):
        lines(tmp_path, "absent.yaml")


def test_findings_of_several_recipes_are_merged_sorted_and_unique(tmp_path):
    write(
        tmp_path,
        {
            "a.yaml": "extend: base.yaml\nsetup:\n  - '@base'\n",
            "b.yaml": "extend: base.yaml\nsetup:\n  - '@base'\n",
            "base.yaml": "setup:\n  - s:\n    - m:\n      - exce_in: x\n",
        },
    )
    report = lint_recipes(["a.yaml", "b.yaml"], cwd=str(tmp_path))
    assert report.recipes == 2
    assert [f.key for f in report.findings] == ["exce_in"]


def test_lint_does_not_create_a_build_directory(tmp_path):
    write(tmp_path, {"r.yaml": "setup:\n  - s:\n    - m:\n      - exec_local: touch x\n"})
    assert lines(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]


def test_the_linters_commands_are_the_ones_the_engine_runs():
    import inspect

    from kameleon_nb.core.lint import BUILTIN_COMMANDS
    from kameleon_nb.engine.commands import CommandRunner, exec_context

    dispatch = inspect.getsource(CommandRunner._dispatch)
    for command in BUILTIN_COMMANDS:
        assert exec_context(command) is not None or f'key == "{command}"' in dispatch, command
    assert dispatch.count('key == "') == len([c for c in BUILTIN_COMMANDS if not exec_context(c)])
