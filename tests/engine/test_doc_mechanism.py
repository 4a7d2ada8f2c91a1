"""The checkpoint documentation's own "very simple" mechanism works verbatim."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.shell

MECHANISM = """\
enabled?:
  - exec_local: test -f $KAMELEON_WORKDIR/list_checkpoints.txt

create:
  - exec_local: echo @microstep_id >> $KAMELEON_WORKDIR/list_checkpoints.txt

apply:
  - exec_local: echo "restore to @microstep_id"

list:
  - exec_local: cat $KAMELEON_WORKDIR/list_checkpoints.txt

clear:
  - exec_local: rm -f $KAMELEON_WORKDIR/list_checkpoints.txt
"""


def test_documentation_example_mechanism(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps" / "checkpoints").mkdir(parents=True)
    (tmp_path / "steps" / "checkpoints" / "custom_checkpoint.yaml").write_text(MECHANISM)
    (tmp_path / "doc.yaml").write_text(
        "checkpoint: custom_checkpoint.yaml\n"
        "global:\n  user_name: alice\n"
        "setup:\n  - create_user:\n    - add_user:\n"
        "      - exec_local: echo adding $${user_name}\n"
        "    - add_to_groups:\n      - exec_local: echo groups\n"
    )
    # no list file yet: list finds nothing, enabled? says no, the build still succeeds
    code, out = kameleon("build", "doc.yaml", "--enable-checkpoint")
    assert code == 0, out
    assert out.count("--> Do not create a checkpoint for this microstep: disabled in backend") == 2
    # once the file exists, checkpoints are created, listed and used
    (tmp_path / "build" / "doc" / "list_checkpoints.txt").touch()
    code, out = kameleon("build", "doc.yaml", "--enable-checkpoint")
    assert code == 0, out
    assert out.count("--> Creating checkpoint: ") == 2
    code, listing = kameleon("build", "--checkpoints", "doc.yaml")
    assert code == 0
    assert listing.splitlines()[0] == "The following checkpoints are available for recipe 'doc':"
    assert listing.splitlines()[3].rstrip().endswith("| setup/create_user/add_user")
    first_id = listing.splitlines()[3].split()[0]
    code, out = kameleon("build", "doc.yaml", "--from-checkpoint", first_id)
    assert code == 0, out
    assert f"[local] restore to {first_id}" in out
    assert "Step 1: setup/create_user/add_user\n--> Checkpoint ahead, do nothing" in out
    assert "Step 2: setup/create_user/add_to_groups\n--> Running the step..." in out
