"""Microsteps defined outside the recipe files (what a notebook cell does)."""

from __future__ import annotations

import pytest

from kameleon_nb.core.loader import LoadedRecipe, load_recipe
from kameleon_nb.core.resolve import ResolveOptions, resolve_recipe
from kameleon_nb.errors import RecipeError


def resolve(loaded, tmp_path):
    return resolve_recipe(
        loaded, ResolveOptions(build_path=str(tmp_path / "build")), cwd=str(tmp_path)
    )


def test_replacing_a_file_step_microstep_changes_ids_from_there_on(tiny):
    loaded = load_recipe("tiny.yaml", cwd=str(tiny))
    before = {m.slug: m for m in resolve(loaded, tiny).microsteps()}
    loaded.set_microstep("setup", "greet", "say_bye", [{"exec_in": "echo 'see you'"}])
    after = {m.slug: m for m in resolve(loaded, tiny).microsteps()}
    assert list(after) == list(before)  # same place, same slugs
    assert after["setup/greet/say_hello"].step_id == before["setup/greet/say_hello"].step_id
    assert after["setup/greet/say_bye"].commands[0].value == "echo 'see you'"
    assert after["setup/greet/say_bye"].step_id != before["setup/greet/say_bye"].step_id
    assert (
        after["setup/inline_step/use_user"].step_id != before["setup/inline_step/use_user"].step_id
    )
    assert after["setup/inline_step/always"].step_id == before["setup/inline_step/always"].step_id
    assert "bye $${who}" in (tiny / "steps" / "setup" / "greet.yaml").read_text()  # untouched


def test_new_microstep_and_new_macrostep_are_appended(tiny):
    loaded = load_recipe("tiny.yaml", cwd=str(tiny))
    loaded.set_microstep(
        "setup",
        "greet",
        "wave",
        [{"on_checkpoint": "redo"}, {"exec_out": "echo $${greeting} wave"}],
    )
    loaded.set_microstep("export", "extra", "pack", [{"exec_local": "echo packed"}])
    slugs = [m.slug for m in resolve(loaded, tiny).microsteps()]
    assert slugs[slugs.index("setup/greet/say_bye") + 1] == "setup/greet/wave"
    assert slugs[-1] == "export/extra/pack"
    wave = next(m for m in resolve(loaded, tiny).microsteps() if m.name == "wave")
    assert wave.on_checkpoint.value == "redo"
    assert wave.commands[0].value == "echo hello wave"  # step variables and globals apply


def test_an_empty_recipe_takes_cells(tmp_path):
    loaded = LoadedRecipe.empty(str(tmp_path / "notebook.yaml"), "notebook")
    loaded.set_microstep("setup", "base", "hello", [{"exec_local": "echo hi"}])
    recipe = resolve(loaded, tmp_path)
    assert [m.slug for m in recipe.microsteps()] == ["setup/base/hello"]
    with pytest.raises(RecipeError, match="Unknown section 'deploy'"):
        loaded.set_microstep("deploy", "x", "y", [])
