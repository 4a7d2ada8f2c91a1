"""The checkpoint table and the build progress, headless: real session, clicks from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.events import CommandOutput
from kameleon_nb.engine.session import Session
from kameleon_nb.frontends.notebook.cells import body_commands, parse_microstep_line
from kameleon_nb.frontends.widgets import BuildProgress, CheckpointTable
from tests.frontends.recipes import DIRECTORY_APPLIANCE

pytestmark = [pytest.mark.shell, pytest.mark.jupyter]

RECIPE = (
    DIRECTORY_APPLIANCE
    + """\
bootstrap:
  - make:
    - tree:
      - exec_out: mkdir -p $${rootfs}/etc
setup:
  - files:
    - one:
      - exec_in: echo one > etc/one
    - two:
      - exec_in: export LEVEL=two; echo two > etc/two
      - exec_in: for i in 1 2 3; do echo "line $i"; done
    - three:
      - exec_in: echo three > etc/three
"""
)


@pytest.fixture
def session(tmp_path) -> Session:
    (tmp_path / "r.yaml").write_text(RECIPE)
    with Session.open("r.yaml", cwd=str(tmp_path), checkpointing=True) as session:
        yield session


def etc(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "build" / "r" / "rootfs" / "etc").iterdir()}


def cell(session, line, body):
    parsed = parse_microstep_line(line)
    items = body_commands(body, parsed.context, parsed.on_checkpoint, source=parsed.name)
    return session.run_microstep(
        parsed.name, items, section=parsed.section, macrostep=parsed.macrostep
    )


def test_the_table_lists_checkpoints_and_restore_brings_files_and_variables_back(session, tmp_path):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    slugs = [r.slug for r in table.rows]
    assert slugs == [
        "bootstrap/make/tree",
        "setup/files/one",
        "setup/files/two",
        "setup/files/three",
    ]
    assert all(r.valid for r in table.rows)
    assert all(r.size is not None and r.size >= 0 for r in table.rows)
    assert "4 (4 valid)" in table.title_html
    assert etc(tmp_path) == {"one", "two", "three"}

    two = table.rows[2].step_id
    table.choose(two)
    table.restore_button.click()
    assert etc(tmp_path) == {"one", "two"}
    assert f"Restored checkpoint {two} (setup/files/two)" in table.status.value
    seen: list[str] = []
    session.subscribe(lambda e: seen.append(e.text) if isinstance(e, CommandOutput) else None)
    result = cell(session, "check --context in", 'echo "level=$LEVEL"')
    assert result.slug == "setup/notebook/check"
    assert "".join(seen) == "level=two\n"  # the in context's variables came back too

    table.choose(table.rows[1].step_id)
    table.restore_button.click()
    assert etc(tmp_path) == {"one"}
    assert "◀ the tree is here" in table.rows_html  # on the row of setup/files/one
    assert table.head == table.rows[1].step_id


def test_delete_and_refresh(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    assert session.can_delete
    victim = table.rows[-1].step_id
    table.choose(victim)
    table.delete_button.click()  # asks first: nothing is gone yet
    assert "It cannot be undone" in table.status.value
    assert victim in {r.step_id for r in session.checkpoints()}
    table.cancel_button.click()
    assert "Nothing deleted" in table.status.value
    assert victim in {r.step_id for r in session.checkpoints()}
    table.delete_button.click()
    table.confirm_button.click()
    assert victim not in {r.step_id for r in table.rows}
    assert "Deleted checkpoint" in table.status.value
    assert victim not in {r.step_id for r in session.checkpoints()}
    # a new checkpoint shows up by itself: the table listens to the session
    cell(session, "four", "echo four > etc/four")
    assert table.rows[-1].slug == "setup/notebook/four"
    table.refresh_button.click()
    assert table.rows[-1].slug == "setup/notebook/four"


def test_edited_steps_make_later_checkpoints_stale(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    before = {r.slug: r.step_id for r in table.rows}
    session.restore("bootstrap/make/tree")  # the step before "one": its new version is checkpointed
    result = cell(session, "one", "echo ONE > etc/one")
    valid = {r.step_id: r.valid for r in table.rows}
    assert valid[before["bootstrap/make/tree"]] is True
    assert valid[result.checkpoint] is True  # the new version, just created
    # the old "one", and "two" and "three" whose ids depended on it, are stale
    for slug in ("setup/files/one", "setup/files/two", "setup/files/three"):
        assert valid[before[slug]] is False
    assert [r.valid for r in table.rows] == [True, True, False, False, False]
    assert table.rows_html.count("kameleon-stale") == 3


def test_buttons_are_disabled_while_a_step_runs(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    seen: list[bool] = []

    def watch(event):
        if isinstance(event, CommandOutput):
            seen.append(
                table.refresh_button.disabled
                and table.restore_button.disabled
                and table.delete_button.disabled
            )

    session.subscribe(watch)
    cell(session, "noisy --context in", "echo running")
    assert seen
    assert all(seen)
    assert not table.refresh_button.disabled
    assert not table.restore_button.disabled


def test_a_failed_restore_is_reported_in_the_table(session, tmp_path):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    store = tmp_path / "build" / "r" / "checkpoints" / "rsync"
    victim = table.rows[0].step_id
    (store / victim).rename(store / "elsewhere")  # lost behind the mechanism's back
    table.choose(victim)
    table.restore_button.click()
    assert "Restore failed" in table.status.value


def test_build_progress_follows_the_build(session):
    progress = BuildProgress()
    session.subscribe(progress)
    session.build(BuildOptions(checkpointing=True))
    assert progress.bar.value == progress.bar.max == 4
    assert progress.bar.bar_style == "success"
    assert progress.current.value == "done"
    titles = list(progress.steps.titles)
    assert any(t.startswith("✔ setup/files/two") for t in titles)
    index = next(i for i, t in enumerate(titles) if "setup/files/two" in t)
    text = progress.steps.children[index].outputs[0]["text"]
    assert text == "line 1\nline 2\nline 3\n"

    # a rebuild from the last checkpoint runs nothing
    again = BuildProgress()
    session.subscribe(again)
    session.build(BuildOptions(checkpointing=True, from_checkpoint="last"))
    assert again.bar.value == 4
    assert len(again.steps.children) == 1  # only the restore's own output
    assert again.steps.titles[0].startswith("✔ restore ")


def test_build_progress_shows_the_failing_step(session):
    session.define("setup", "files", "boom", [{"exec_in": "exit 7"}])
    progress = BuildProgress()
    session.subscribe(progress)
    with pytest.raises(Exception, match="exit status 7"):
        session.build(BuildOptions())
    assert progress.bar.bar_style == "danger"
    assert progress.current.value == "failed at setup/files/boom"
    selected = progress.steps.selected_index
    assert progress.steps.titles[selected] == "✘ setup/files/boom"


def test_the_table_as_text_is_complete(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    bundle = table.rows_view()  # what its rows' display holds
    text = bundle["text/plain"]
    assert text.startswith("Checkpoints of 'r': 4\nid")
    assert all(r.step_id in text for r in table.rows)  # not cut at 110 characters
    # without widgets (nbconvert, GitHub, a saved notebook): the rows as HTML
    assert all(r.step_id in bundle["text/html"] for r in table.rows)
    assert "setup/files/three" in bundle["text/html"]


def test_a_table_of_an_ended_session_says_so(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    session.end()
    table.choose(table.rows[0].step_id)
    table.restore_button.click()
    assert "Restore failed" in table.status.value
    assert "has ended" in table.status.value


def test_a_broken_listener_does_not_break_the_session(session):
    def broken(_event):
        raise RuntimeError("display gone")

    session.subscribe(broken)
    first = cell(session, "a --context local", "true")
    second = cell(session, "b --context local", "true")
    assert first.slug == "setup/notebook/a"
    assert second.slug == "setup/notebook/b"
    assert not session.busy


def test_build_progress_of_a_build_that_cannot_start(session):
    progress = BuildProgress()
    session.subscribe(progress)
    with pytest.raises(Exception, match="nosuch"):
        session.build(BuildOptions(checkpointing=True, from_checkpoint="nosuch"))
    assert progress.current.value == "failed before any step ran"
    assert progress.bar.bar_style == "danger"


def _models() -> int:
    """The widget models the kernel holds (ipywidgets 8 keeps them in this registry)."""
    from ipywidgets.widgets import widget

    return len(widget._instances)


def test_models_stay_flat_across_rebuilds_and_tables(session):
    def round_trip() -> None:
        progress = BuildProgress()
        unsubscribe = session.subscribe(progress)
        session.build(BuildOptions(checkpointing=True, from_checkpoint="bootstrap/make/tree"))
        unsubscribe()
        progress.snapshot_html()
        progress.close()
        CheckpointTable(session)  # freezes the previous one

    session.build(BuildOptions(checkpointing=True))
    round_trip()
    after_one = _models()
    for _ in range(3):
        round_trip()
    assert _models() == after_one
    # one table is a fixed handful of models, however many rows
    before = _models()
    for number in range(12):
        cell(session, f"more{number} --context in", f"echo {number} > etc/more{number}")
    table = CheckpointTable(session)
    assert len(table.rows) >= 16
    assert _models() - before <= 40


def test_a_superseded_table_keeps_what_it_showed(session):
    session.build(BuildOptions(checkpointing=True))

    class Handle:
        shown = None

        def update(self, obj, **kwargs):
            self.shown = obj

    first = CheckpointTable(session)
    first.rows_handle = Handle()
    shown_then = first.rows_html
    CheckpointTable(session)  # a newer table of the session
    assert first.rows_handle.shown is not None
    assert shown_then in first.rows_handle.shown["text/html"]  # the rows it showed, as HTML
    assert first.rows_handle.shown["text/plain"].startswith("Checkpoints of 'r': ")
    cell(session, "later --context in", "echo later > etc/later")
    assert "setup/notebook/later" not in first.rows_handle.shown["text/html"]  # frozen


def test_build_progress_snapshot_is_static_html(session):
    progress = BuildProgress()
    session.subscribe(progress)
    session.build(BuildOptions(checkpointing=True))
    snapshot = progress.snapshot_html()
    assert "4/4 microsteps: done" in snapshot
    assert "<details><summary>✔ setup/files/two" in snapshot
    assert "line 1\nline 2\nline 3\n" in snapshot


def test_changes_shows_what_the_chosen_step_changed(session):
    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    table.choose(next(r.step_id for r in table.rows if r.slug == "setup/files/two"))
    table.changes_button.click()
    assert "etc/two" in table.status.value  # the file the step added
    assert "etc/one" not in table.status.value  # an earlier step's
    table.choose(table.rows[0].step_id)
    table.changes_button.click()
    assert "etc" in table.status.value


def test_the_title_and_rows_are_a_display_of_their_own(session):
    """What %kameleon checkpoints shows: rows readable without widgets, live until frozen."""

    class Handle:
        def __init__(self) -> None:
            self.shown: list[dict[str, str]] = []

        def update(self, obj, **kwargs):
            assert kwargs == {"raw": True}
            self.shown.append(obj)

    session.build(BuildOptions(checkpointing=True))
    table = CheckpointTable(session)
    assert not hasattr(table, "title")  # no widget for what the rows' display shows
    assert not hasattr(table, "table")
    table.rows_handle, table.handle = Handle(), Handle()
    first = table.rows_view()
    assert first["text/html"].startswith("<div class='kameleon-checkpoints'>")
    assert "kameleon-checkpoint-rows" in first["text/html"]
    assert first["text/plain"] == repr(table)
    # the widget's own forms (no kernel, nbconvert) hold the status only, not the rows again
    bundle = table._repr_mimebundle_()
    assert "kameleon-checkpoint-rows" not in bundle["text/html"]

    cell(session, "later --context in", "echo later > etc/later")  # the table follows
    assert "setup/notebook/later" in table.rows_handle.shown[-1]["text/html"]
    table.restore(table.rows[0].step_id)
    assert table.rows_handle.shown[-1]["text/html"].count("the tree is here") == 1

    table.freeze()
    frozen = table.rows_handle.shown[-1]
    assert frozen["text/html"].startswith("<div class='kameleon-checkpoints-snapshot'>")
    assert "setup/notebook/later" in frozen["text/html"]
    assert table.handle.shown[-1]["text/plain"].startswith("Restored checkpoint ")
    updates = len(table.rows_handle.shown)
    cell(session, "after --context in", "echo after > etc/after")
    assert len(table.rows_handle.shown) == updates  # frozen: nothing follows any more
