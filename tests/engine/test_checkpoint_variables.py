"""A checkpoint records the contexts' shell variables; restoring it gives them back."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.shell

RECIPE = """\
checkpoint: simple.yaml
global:
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}/out
setup:
  - vars:
    - set_them:
      - exec_out: export APPLIANCE=/srv/appliance; COUNT=1
      - exec_local: export FROM_LOCAL=yes
    - change_them:
      - exec_out: COUNT=$((COUNT + 1)); unset APPLIANCE
    - use_them:
      - exec_out: echo "APPLIANCE=$APPLIANCE COUNT=$COUNT"
      - exec_local: echo "FROM_LOCAL=$FROM_LOCAL"
"""


def test_restoring_a_checkpoint_restores_the_variables(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.yaml").write_text(RECIPE)
    code, out = kameleon("build", "--script", "-c", "v.yaml")
    assert code == 0, out
    assert "[out] APPLIANCE= COUNT=2" in out
    # a new process restarts after set_them: the variables come back from its record
    code, out = kameleon("build", "--script", "-F", "setup/vars/set_them", "v.yaml")
    assert code == 0, out
    assert "--> Checkpoint ahead, do nothing" in out
    assert "[out] APPLIANCE= COUNT=2" in out  # change_them counted on from the restored 1
    code, out = kameleon(
        "build", "--script", "-F", "setup/vars/change_them", "v.yaml", "-g", "unused:x"
    )
    # -g changes no command: the same ids, restart after change_them
    assert code == 0, out
    assert "Restoring last build from step: setup/vars/change_them" in out
    assert "[out] APPLIANCE= COUNT=2" in out
    assert "[local] FROM_LOCAL=yes" in out


def test_restore_before_a_variable_was_set(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.yaml").write_text(
        RECIPE.replace(
            "    - use_them:",
            '    - peek:\n      - exec_out: echo "peek COUNT=$COUNT"\n    - use_them:',
        )
    )
    assert kameleon("build", "--script", "-c", "v.yaml")[0] == 0
    code, out = kameleon("build", "--script", "-F", "setup/vars/set_them", "v.yaml")
    assert code == 0, out
    assert "[out] peek COUNT=2" in out
    assert "[out] APPLIANCE= COUNT=2" in out
