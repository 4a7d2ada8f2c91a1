"""``kameleon diff`` and ``%kameleon diff``: output, ``--json``, and one ``Error:`` line for bad input."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from IPython.utils.capture import capture_output

pytestmark = [
    pytest.mark.shell,
    pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync"),
]

STEPS = """\
setup:
  - tree:
    - make:
      - exec_local: mkdir -p "$${rootfs}/etc" && echo hello > "$${rootfs}/etc/motd"
    - change:
      - exec_local: echo hello again > "$${rootfs}/etc/motd" && ln -s motd "$${rootfs}/etc/m"
    - chmod:
      - exec_local: chmod 600 "$${rootfs}/etc/motd"
"""


def recipe(mechanism: str | None) -> str:
    head = f"checkpoint: {mechanism}\n" if mechanism else ""
    return head + "global:\n  rootfs: $${kameleon_cwd}/rootfs\n" + STEPS


@pytest.fixture
def built(tmp_path, monkeypatch, kameleon):
    """A recipe built with rsync checkpoints, in the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(recipe("rsync.yaml"))
    code, out = kameleon("build", "-s", "-c", "r.yaml")
    assert code == 0, out
    return tmp_path


def test_diff_of_one_step_two_checkpoints_and_every_step(built, kameleon):
    code, out = kameleon("diff", "r.yaml", "setup/tree/change")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("From ")
    assert "(setup/tree/make) to " in lines[0]
    assert lines[1:-1] == [
        "added     /etc/m     symlink -> motd",
        "modified  /etc/motd  size 6 -> 12, content",
    ]
    assert lines[-1] == "1 added, 0 removed, 1 modified (+6 bytes); compared path by path"
    code, out = kameleon("diff", "r.yaml", "setup/tree/make", "last", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["from"]["step"] == "setup/tree/make"
    assert data["to"]["step"] == "setup/tree/chmod"
    assert [(c["path"], c["change"], c["differs"]) for c in data["changes"]] == [
        ("/etc/m", "added", []),
        ("/etc/motd", "modified", ["mode", "size", "content"]),
    ]
    assert data["changes"][1]["old"] == {
        "type": "file",
        "mode": "0644",
        "owner": data["changes"][1]["old"]["owner"],
        "size": 6,
    }
    assert data["summary"]["bytes_modified"] == 6
    code, out = kameleon("diff", "r.yaml")
    assert code == 0, out
    rows = [line.split()[:5] for line in out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["setup/tree/make", "setup/tree/change", "setup/tree/chmod"]
    assert rows[0][2:] == ["2", "0", "0"]  # /etc, /etc/motd added (the empty tree before)
    assert rows[2][2:] == ["0", "0", "1"]


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["nope"], 7, "Error: Unknown checkpoint 'nope'. You may use the list checkpoints"),
        (["setup/tree/make", "0123456789ab"], 7, "Error: Unknown checkpoint '0123456789ab'"),
        (["a", "b", "c"], 15, 'Error: ERROR: "kameleon diff" takes a recipe and at most two'),
    ],
)
def test_bad_checkpoints_give_one_error_line(built, kameleon, arguments, code, message):
    status, out = kameleon("diff", "r.yaml", *arguments)
    assert status == code
    assert out.startswith(message)
    assert len(out.splitlines()) == (2 if code == 15 else 1)  # usage errors add the usage line


def test_a_stale_checkpoint_is_compared_with_another_one(built, kameleon):
    first = json.loads(kameleon("diff", "r.yaml", "--json")[1])[0]["to"]["id"]
    other = ["-g", "rootfs:$${kameleon_cwd}/other"]  # every command changes: new ids
    code, out = kameleon("build", "-s", "-c", "r.yaml", *other)
    assert code == 0, out
    code, out = kameleon("diff", "r.yaml", first, *other)
    assert code == 7
    assert out == (
        f"Error: Checkpoint {first} (setup/tree/make) is stale: the recipe has no step "
        f"before it; compare it with another checkpoint: diff ID {first}\n"
    )
    code, out = kameleon("diff", "r.yaml", first, "last", *other)
    assert code == 0, out
    assert out.splitlines()[1:] == [
        "added     /etc/m     symlink -> motd",
        "modified  /etc/motd  mode 0644 -> 0600, size 6 -> 12, content",
        "1 added, 0 removed, 1 modified (+6 bytes); compared path by path",
    ]


@pytest.mark.parametrize(
    ("mechanism", "message"),
    [
        ("simple.yaml", "Error: kameleon diff is not supported by this recipe's checkpoint"),
        (None, "Error: Checkpoint is unavailable for this recipe"),
    ],
)
def test_a_mechanism_without_the_tree_hook_says_so(
    tmp_path, monkeypatch, kameleon, mechanism, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(recipe(mechanism))
    code, out = kameleon("build", "-s", *(["-c"] if mechanism else []), "r.yaml")
    assert code == 0, out
    code, out = kameleon("diff", "r.yaml", "setup/tree/change")
    assert code == 7
    assert out.startswith(message)
    assert len(out.splitlines()) == 1


@pytest.mark.jupyter
def test_the_magic_shows_a_table_and_text(built, ipython):
    os.chdir(built)
    ipython.run_line_magic("kameleon", "load r.yaml -c")
    with capture_output() as captured:
        result = ipython.run_cell("%kameleon diff setup/tree/change")
    assert result.success, result.error_in_exec
    (shown,) = captured.outputs
    html, text = shown.data["text/html"], shown.data["text/plain"]
    assert "<table" in html
    assert "<td style='text-align:left'>/etc/motd</td>" in html
    assert "size 6 -&gt; 12, content" not in html  # the table splits before and after
    assert "modified  /etc/motd  size 6 -> 12, content" in text
    with capture_output() as captured:
        result = ipython.run_cell("%kameleon diff")
    assert result.success, result.error_in_exec
    assert "setup/tree/chmod" in captured.outputs[0].data["text/plain"]
    result = ipython.run_cell("%kameleon diff a b c")
    assert not result.success
    assert "usage: %kameleon diff" in str(result.error_in_exec)
