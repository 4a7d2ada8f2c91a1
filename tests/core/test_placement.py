"""Where a microstep named alone goes: the rule the session and the export share."""

from __future__ import annotations

import pytest

from kameleon_nb.core.placement import place_microstep
from kameleon_nb.errors import RecipeError

KNOWN = [
    ("setup", "packages", "install"),
    ("setup", "users", "add"),
    ("export", "disk", "add"),
]


def test_a_name_the_recipe_has_once_replaces_that_microstep():
    assert place_microstep(KNOWN, "install") == ("setup", "packages")


def test_a_new_name_goes_to_setup_notebook_or_where_the_line_says():
    assert place_microstep(KNOWN, "fresh") == ("setup", "notebook")
    assert place_microstep(KNOWN, "fresh", section="export") == ("export", "notebook")
    assert place_microstep(KNOWN, "fresh", macrostep="disk") == ("setup", "disk")


def test_a_name_in_several_macrosteps_needs_the_line_to_say_which():
    with pytest.raises(RecipeError, match=r"several macrosteps \(export/disk, setup/users\)"):
        place_microstep(KNOWN, "add")
    assert place_microstep(KNOWN, "add", section="export") == ("export", "disk")
    assert place_microstep(KNOWN, "add", macrostep="users") == ("setup", "users")


def test_section_and_macrostep_given_are_taken_as_they_are():
    assert place_microstep(KNOWN, "add", "bootstrap", "base") == ("bootstrap", "base")
