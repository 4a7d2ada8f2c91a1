"""The %kameleon and %%microstep magics in an in-process IPython, with real context shells."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from kameleon_nb.frontends.cell_errors import CellError
from tests.frontends.recipes import DIRECTORY_APPLIANCE

pytestmark = [pytest.mark.shell, pytest.mark.jupyter]

# A rootless recipe whose "appliance" is a directory, checkpointed with rsync.
RECIPE = (
    DIRECTORY_APPLIANCE
    + """\
  greeting: hello
bootstrap:
  - make_rootfs:
    - mkdir:
      - exec_out: mkdir -p $${rootfs}/etc
setup:
  - configure:
    - motd:
      - exec_in: echo "$${greeting}" > etc/motd
"""
)


def run(ip, source):
    """Run one cell; returns (result, captured stdout, captured displays as text)."""
    with capture_output() as captured:
        result = ip.run_cell(source)
    shown = [o.data.get("text/plain", "") for o in captured.outputs]
    return result, captured.stdout, shown


def ok(ip, source):
    result, out, shown = run(ip, source)
    assert result.success, f"{source!r} failed: {result.error_in_exec}\n{out}"
    return out, shown


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "appliance.yaml"
    path.write_text(RECIPE)
    return path


def rootfs(tmp_path: Path) -> Path:
    return tmp_path / "build" / "appliance" / "rootfs"


def test_usage_and_unknown_commands(ipython):
    out, _ = ok(ipython, "%kameleon")
    assert "%%microstep NAME" in out
    assert "%kameleon checkpoints" in out
    result, _, _ = run(ipython, "%kameleon frobnicate")
    assert isinstance(result.error_in_exec, UsageError)
    assert "unknown command 'frobnicate'" in str(result.error_in_exec)
    out, _ = ok(ipython, "%%microstep --help\nignored\n")
    assert "--on-checkpoint" in out


def test_load_shows_the_plan(ipython, recipe):
    _, shown = ok(ipython, f"%kameleon load {recipe.name}")
    assert shown[0].startswith("recipe 'appliance': 2 microsteps")
    assert "bootstrap  make_rootfs  mkdir" in shown[0]


def test_load_errors_name_the_file(ipython, tmp_path):
    result, _, _ = run(ipython, "%kameleon load missing.yaml")
    assert isinstance(result.error_in_exec, CellError)
    assert "missing.yaml" in str(result.error_in_exec)
    (tmp_path / "broken.yaml").write_text("global: [unclosed\n")
    result, _, _ = run(ipython, "%kameleon load broken.yaml")
    assert isinstance(result.error_in_exec, CellError)
    assert "broken.yaml" in str(result.error_in_exec)


def test_magics_do_not_expand_python_variables(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    ipython.user_ns["x"] = "PYTHON"
    out, _ = ok(ipython, '%%microstep show --context out\necho "$${greeting} {x} $HOME $x"\n')
    assert out == f"hello {{x}} {os.environ['HOME']} \n"
    out, _ = ok(ipython, "%kameleon shell local echo {x} $${greeting} $HOME")
    assert out == f"{{x}} hello {os.environ['HOME']}\n"


def test_cells_run_in_persistent_contexts_with_kameleon_semantics(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    ok(ipython, "%%microstep set_vars --context out\nexport ANSWER=42\ncd /tmp\n")
    out, _ = ok(ipython, '%%microstep use_vars --context out\necho "$ANSWER $(pwd -P)"\n')
    # variables persist across cells; cd does not (each command starts in the workdir;
    # $PWD comes back as a variable, as upstream)
    assert out == f"42 {recipe.parent / 'build' / 'appliance'}\n"
    out, _ = ok(ipython, '%%microstep read_stdin --context out\nread line; echo "rc=$?"\n')
    assert out == "rc=1\n"  # stdin is /dev/null: a read never hangs


def test_yaml_bodies_run_kameleon_commands(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    out, shown = ok(
        ipython,
        "%%microstep two_contexts\n"
        "# a comment first\n"
        "- exec_out: echo from-out\n"
        "- exec_local: echo from-local\n"
        "- on_checkpoint: redo\n",
    )
    assert out == "from-out\nfrom-local\n"
    assert shown == ["setup/notebook/two_contexts: ok"]
    _, plan = ok(ipython, "%kameleon plan")
    assert "notebook     two_contexts" in plan[0]
    assert "redo" in plan[0]


def test_a_failing_cell_raises_a_short_error_and_the_context_survives(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    result, out, _ = run(ipython, "%%microstep broken --context out\necho before\nfalse\n")
    error = result.error_in_exec
    assert type(error).__name__ == "StepFailed"  # its own class, shown without a traceback
    assert error._render_traceback_()[0] == (
        "✘ setup/notebook/broken failed in the out context: exit status 1"
    )
    text = str(error)
    assert "\n  command: echo before … (+1 lines)\n" in text
    assert "  before" in text
    assert out.startswith("before\n")  # then (in a terminal IPython) the error itself
    out, _ = ok(ipython, "%%microstep broken --context out\necho fixed\n")
    assert out == "fixed\n"


def test_bad_cells_give_clear_errors(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    for source, expected in [
        ("%%microstep\necho hi\n", "the following arguments are required: name"),
        ("%%microstep a --context nowhere\necho\n", "invalid choice: 'nowhere'"),
        ("%%microstep a\n- exec_in: [unclosed\n", "%%microstep a"),
        ("%%microstep a\n\n", "the cell has no commands"),
        ("%%microstep a\n- exec_in: echo $${nope}\n", "nope"),
    ]:
        result, _, _ = run(ipython, source)
        assert isinstance(result.error_in_exec, UsageError | CellError), source
        assert expected in str(result.error_in_exec), (source, str(result.error_in_exec))
    # a rejected cell leaves the recipe as it was
    _, plan = ok(ipython, "%kameleon plan")
    assert plan[0].startswith("recipe 'appliance': 2 microsteps")


def test_rerunning_a_cell_replaces_its_microstep(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    _, first = ok(ipython, "%kameleon plan")
    ok(ipython, "%%microstep mkdir --context out\nmkdir -p $${rootfs}/etc\n")
    _, shown = ok(ipython, '%%microstep motd\necho "$${greeting}" > etc/motd\n')
    assert shown == ["setup/configure/motd: ok"]  # found by name; the same as the file's
    _, same = ok(ipython, "%kameleon plan")
    assert same == first  # the same text gives the same id as the file's
    _, shown = ok(ipython, '%%microstep motd\necho "changed" > etc/motd\n')
    assert shown == ["setup/configure/motd: ok (replaced)"]
    _, changed = ok(ipython, "%kameleon plan")
    assert changed[0].count("\n") == first[0].count("\n")  # replaced, not added
    assert changed != first
    assert (rootfs(recipe.parent) / "etc" / "motd").read_text() == "changed\n"


def test_checkpoints_restore_and_build(ipython, recipe, tmp_path):
    ok(ipython, f"%kameleon load {recipe.name} --enable-checkpoint")
    _, shown = ok(ipython, "%%microstep mkdir --context out\nmkdir -p $${rootfs}/etc\n")
    first_id = shown[0].rsplit(" ", 1)[1]
    ok(ipython, "%%microstep motd\nexport MOOD=happy\necho one > etc/motd\n")
    ok(ipython, "%%microstep more --context in\nexport MOOD=sad\necho two > etc/more\n")
    assert (rootfs(tmp_path) / "etc" / "more").exists()

    out, _ = ok(ipython, "%kameleon restore setup/configure/motd")
    assert out.startswith("restored ")
    assert "Restored checkpoint" in out
    assert not (rootfs(tmp_path) / "etc" / "more").exists()
    out, shown = ok(ipython, "%%microstep mood --context in\necho $MOOD\n")
    assert out == "happy\n"  # the variables are back at that checkpoint too
    # the tree is at motd, not at "more" (the step before mood): no checkpoint would be true
    assert shown == [
        "setup/notebook/mood: ok, not checkpointed (the tree is not at setup/notebook/more, "
        "the step before it: %kameleon build -c --until setup/notebook/more brings it there, "
        "or %kameleon restore setup/notebook/more if it has a checkpoint)"
    ]
    # the way forward is one command: the tree is then at "more", and the cell checkpoints
    out, shown = ok(ipython, "%kameleon build -c --until setup/notebook/more")
    assert "Stopped after step setup/notebook/more (--until)" not in out  # a panel shows it
    assert (rootfs(tmp_path) / "etc" / "more").exists()
    _, shown = ok(ipython, "%%microstep mood --context in\necho $MOOD\n")
    assert "checkpoint " in shown[0]

    out, _ = ok(ipython, f"%kameleon restore {first_id}")
    assert not (rootfs(tmp_path) / "etc" / "motd").exists()

    ok(ipython, "%kameleon close")  # stops the shells, keeps the recipe and its state
    _, shown = ok(ipython, "%kameleon plan")
    assert shown[0].startswith("recipe 'appliance'")

    result, _, _ = run(ipython, "%kameleon restore nope")
    assert "nope" in str(result.error_in_exec)

    _, shown = ok(ipython, "%kameleon build --from-checkpoint last")
    assert shown[-1].startswith("Build of 'appliance' done: 0 run, 4 from checkpoint")
    ok(ipython, "%%microstep motd\necho three > etc/motd\n")
    _, shown = ok(ipython, "%kameleon build -c")
    summary = shown[-1]
    # the motd cell ran on the built tree (not right after mkdir): it was not checkpointed,
    # so the rebuild restarts after mkdir and runs motd and what follows
    assert summary.startswith("Build of 'appliance' done: 3 run, 1 from checkpoint"), summary
    assert (rootfs(tmp_path) / "etc" / "motd").read_text() == "three\n"

    # the notebook's build dir is the CLI's: while the session has shells it owns it
    def cli_list() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kameleon_nb", "build", "-l", recipe.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    busy = cli_list()
    assert busy.returncode == 7
    assert f"is in use by pid {os.getpid()} (" in busy.stdout + busy.stderr
    ok(ipython, "%kameleon close")
    # then the CLI sees the same checkpoints
    listing = cli_list()
    assert listing.returncode == 0, listing.stderr
    # the file still has the old motd: only the unchanged first step is valid for it
    assert "bootstrap/make_rootfs/mkdir" in listing.stdout
    assert "setup/configure/motd" not in listing.stdout


def test_build_failure_stops_with_the_failing_step(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    ok(ipython, "%%microstep later --context out\ntrue\n")
    result, _, _ = run(ipython, "%%microstep later --context out\nexit 3\n")
    assert "exit status 3" in str(result.error_in_exec)
    result, _, _ = run(ipython, "%kameleon build")
    assert type(result.error_in_exec).__name__ == "StepFailed"
    assert str(result.error_in_exec).startswith(
        "setup/notebook/later failed in the out context: exit status 3\n  command: exit 3"
    )


def test_vars_and_shell(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name} -g greeting:bonjour")
    _, shown = ok(ipython, "%kameleon vars")
    assert "greeting" in shown[0]
    assert "bonjour" in shown[0]
    out, _ = ok(ipython, "%kameleon shell out pwd")
    assert out.strip().endswith("build/appliance")
    result, _, _ = run(ipython, "%kameleon shell nowhere ls")
    assert "usage: %kameleon shell" in str(result.error_in_exec)
    result, _, _ = run(ipython, "%kameleon shell out exit 4")
    assert "exit status 4" in str(result.error_in_exec)


def test_a_notebook_without_recipe_gets_an_empty_one(ipython, tmp_path):
    out, shown = ok(ipython, "%%microstep hello --context local\necho hi\n")
    assert out == "hi\n"
    assert shown == ["setup/notebook/hello: ok"]
    _, plan = ok(ipython, "%kameleon plan")
    assert plan[0].startswith("recipe 'notebook': 1 microsteps")


def _children() -> set[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(os.getpid())], capture_output=True, text=True, check=False
    )
    return {int(pid) for pid in found.stdout.split()}


def test_unload_ext_closes_every_shell(ipython, recipe):
    before = _children()
    ok(ipython, f"%kameleon load {recipe.name}")
    ok(ipython, "%%microstep a --context out\ntrue\n")
    ok(ipython, "%%microstep b --context local\ntrue\n")
    assert len(_children() - before) >= 2
    ipython.run_line_magic("unload_ext", "kameleon_nb")
    assert _children() - before == set()
    assert "microstep" not in ipython.magics_manager.magics["cell"]
    ipython.run_line_magic("load_ext", "kameleon_nb")  # the fixture unloads it again


def test_a_cell_with_only_hooks_is_kept_and_runs_with_its_section(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    _, shown = ok(
        ipython, "%%microstep hooks\n- on_setup_clean:\n  - exec_local: echo cleaning up\n"
    )
    assert shown == ["setup/notebook/hooks: defined (no commands of its own, only hooks)"]
    out, _ = ok(ipython, "%kameleon build --console")
    assert "[local] cleaning up" in out


def test_a_new_session_over_an_existing_build_does_not_trust_the_tree(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name} -c")
    _, shown = ok(ipython, "%%microstep mkdir --context out\nmkdir -p $${rootfs}/etc\n")
    assert "checkpoint " in shown[0]  # a fresh build dir: the tree is at the start
    ok(ipython, f"%kameleon load {recipe.name} -c")  # a new session (a kernel restart)
    _, shown = ok(ipython, "%%microstep mkdir --context out\nmkdir -p $${rootfs}/etc\n")
    assert shown == [
        "bootstrap/make_rootfs/mkdir: ok, not checkpointed (the tree is not at the start: "
        "%kameleon build -c builds anew)"
    ]


def test_after_close_cells_are_not_checkpointed_until_a_restore(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name} -c")
    ok(ipython, "%%microstep mkdir --context out\nmkdir -p $${rootfs}/etc\nexport A=1\n")
    ok(ipython, "%kameleon close")  # the shells' variables are gone
    _, shown = ok(ipython, '%%microstep motd\necho "$${greeting}" > etc/motd\n')
    assert "not checkpointed" in shown[0]
    ok(ipython, "%kameleon restore bootstrap/make_rootfs/mkdir")
    out, _ = ok(ipython, "%kameleon shell out echo A=$A")
    assert out == "A=1\n"  # the checkpoint's variables are back
    _, shown = ok(ipython, '%%microstep motd\necho "$${greeting}" > etc/motd\n')
    assert "checkpoint " in shown[0]


def test_a_cell_that_moves_its_microstep_leaves_nothing_behind(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    with capture_output():
        assert ipython.run_cell("%%microstep greet --context local\ntrue\n", cell_id="c1").success
        moved = "%%microstep greet --section bootstrap --macrostep prep --context local\ntrue\n"
        assert ipython.run_cell(moved, cell_id="c1").success
        renamed = "%%microstep hello --section bootstrap --macrostep prep --context local\ntrue\n"
        assert ipython.run_cell(renamed, cell_id="c1").success
    _, plan = ok(ipython, "%kameleon plan")
    assert "greet" not in plan[0]
    assert plan[0].count(" hello ") == 1


def test_errors_in_a_cell_name_the_cell(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    result, _, _ = run(ipython, "%%microstep oops\necho $${nope}\n")
    assert str(result.error_in_exec).startswith("%%microstep oops: ")
    result, _, _ = run(ipython, "%%microstep oops --macrostep ../escape\ntrue\n")
    assert "is not a macrostep name" in str(result.error_in_exec)


def test_the_timeout_can_be_changed_after_loading(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name}")
    ok(ipython, "%%microstep warm --context local\ntrue\n")
    ok(ipython, "%config KameleonMagics.timeout = 0.5")
    result, _, _ = run(ipython, "%%microstep slow --context local\nsleep 5\n")
    assert type(result.error_in_exec).__name__ == "StepFailed"
    assert str(result.error_in_exec).startswith(
        "setup/notebook/slow failed in the local context: The command in the local_context "
        "timed out after 0.5 s"
    )
    assert "\n  command: sleep 5" in str(result.error_in_exec)
    ok(ipython, "%config KameleonMagics.timeout = None")
    ok(ipython, "%%microstep slow --context local\nsleep 0.6\n")


def test_exporting_an_empty_session_is_refused(ipython, tmp_path):
    result, _, _ = run(ipython, "%kameleon export out")
    assert "Nothing to export" in str(result.error_in_exec)
    assert not (tmp_path / "out").exists()


def test_build_with_the_persistent_cache_shows_what_it_recorded(ipython, recipe, tmp_path):
    ok(ipython, f"%kameleon load {recipe.name}")
    # a pipe from the host is recorded: the summary says so, and the archive is packed
    ok(
        ipython,
        "%%microstep from_host\n- pipe:\n  - exec_local: echo host data\n  - exec_in: cat > host.txt\n",
    )
    _, shown = ok(ipython, "%kameleon build -C")
    summary = shown[-1]
    assert "Cache: 0 request(s)" in summary
    assert "1 pipe output(s) recorded" in summary
    archive = tmp_path / "build" / "appliance" / "appliance-cache.tar.gz"
    assert f"Cache archive: {archive}" in summary
    assert archive.is_file()
    # a replay belongs to the command line: one clear line
    result, _, _ = run(ipython, f"%kameleon build --from-cache {archive}")
    assert "kameleon build --from-cache ARCHIVE' in a terminal" in str(result.error_in_exec)


def test_a_flood_of_output_keeps_a_bounded_head_and_tail_and_a_full_log(ipython, recipe, tmp_path):
    ok(ipython, f"%kameleon load {recipe.name}")
    out, shown = ok(ipython, "%%microstep flood --context local\nseq 1 50000\n")
    lines = out.splitlines()
    assert lines[:3] == ["1", "2", "3"]
    assert lines[-1] == "50000"
    assert len(lines) == 2001  # head, one note, tail: not 50,000
    assert "1000" in lines
    assert "49001" in lines
    assert "25000" not in lines
    assert any("lines not shown here" in s for s in shown)  # the live count
    note = lines[1000]  # between the head and the tail
    assert note.startswith("[48,000 lines not shown here; all of the output is in ")
    log = Path(note.removesuffix("]").rsplit(" in ", 1)[1])
    assert log.read_text().splitlines() == [str(n) for n in range(1, 50001)]
    assert log.is_relative_to(tmp_path / "build" / "appliance" / ".kameleon_nb" / "logs")


def test_a_cell_deleted_from_the_saved_notebook_leaves_the_recipe(
    ipython, recipe, tmp_path, monkeypatch
):
    import json
    import time

    notebook = tmp_path / "lab.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    ok(ipython, f"%kameleon load {recipe.name}")
    for cell_id, name in (("cell-a", "keep"), ("cell-b", "gone")):
        with capture_output():
            ipython.run_cell(f"%%microstep {name} --context out\ntrue\n", cell_id=cell_id)
    _, plan = ok(ipython, "%kameleon plan")
    assert "gone" in plan[0]
    time.sleep(0.05)  # the save comes after the cells ran
    notebook.write_text(json.dumps({"cells": [{"id": "cell-a", "cell_type": "code"}]}))
    out, plan = ok(ipython, "%kameleon plan")
    assert out == "Dropped the microsteps of cells no longer in lab.ipynb: setup/notebook/gone\n"
    assert "gone" not in plan[0]
    assert "keep" in plan[0]
    # a cell run after the last save is not in the file yet: it stays
    with capture_output():
        ipython.run_cell("%%microstep fresh --context out\ntrue\n", cell_id="cell-c")
    out, plan = ok(ipython, "%kameleon plan")
    assert out == ""
    assert "fresh" in plan[0]
    # forgotten explicitly
    out, plan = ok(ipython, "%kameleon forget fresh")
    assert out == "Forgot setup/notebook/fresh\n"
    _, plan = ok(ipython, "%kameleon plan")
    assert "fresh" not in plan[0]
    result, _, _ = run(ipython, "%kameleon forget nosuch")
    assert "Cannot forget 'nosuch'" in str(result.error_in_exec)


def test_a_table_keeps_what_its_cell_showed_when_a_later_cell_changes_the_session(ipython, recipe):
    ok(ipython, f"%kameleon load {recipe.name} --enable-checkpoint")
    ok(ipython, "%kameleon build -c")
    _, shown = ok(ipython, "%kameleon checkpoints")
    assert shown[0].startswith("Checkpoints of 'appliance': 2\n")

    def table_updates(source: str) -> list[str]:
        with capture_output() as captured:
            assert ipython.run_cell(source).success
        return [
            o.data["text/plain"]
            for o in captured.outputs
            if o.update and o.data.get("text/plain", "").startswith("Checkpoints of")
        ]

    # reading cells leave the table live ...
    assert table_updates("%kameleon plan") == []
    assert table_updates("%kameleon shell in ls") == []
    # ... a cell that changes the checkpoints freezes it first, as its cell showed it
    frozen = table_updates("%kameleon build -c -g greeting:bye")
    assert len(frozen) == 1
    assert frozen[0].startswith("Checkpoints of 'appliance': 2\n")
    assert "stale" not in frozen[0]
    # the new state is for a new table; nothing updates the frozen one any more
    _, shown = ok(ipython, "%kameleon checkpoints")
    assert shown[0].startswith("Checkpoints of 'appliance': 3\n")
    assert "stale" in shown[0]
    assert table_updates("%%microstep extra\necho x > etc/extra\n") == [shown[0]]
    assert table_updates("%kameleon build -c") == []
