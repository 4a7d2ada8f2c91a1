"""The builder's decisions and failure handling, with scripted shells (no processes)."""

from __future__ import annotations

import pytest

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import CheckpointCreated, Message, MicrostepStarted
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.errors import AbortError, BuildError, ExecError

from .fakes import MemoryCheckpoints, fake_shells


def build(recipe, *, options, backend=None, behaviour=lambda c, s: (0, ""), on_failure=None):
    factory, log = fake_shells(behaviour)
    events = []
    kwargs = {} if on_failure is None else {"on_failure": on_failure}
    with Builder(
        recipe, on_event=events.append, shells=factory, checkpoints=backend, **kwargs
    ) as builder:
        result = builder.build(options)
    return result, events, log


def test_plain_build_runs_every_microstep_but_only(tiny):
    recipe = open_recipe("tiny.yaml", cwd=str(tiny))
    result, _events, log = build(recipe, options=BuildOptions())
    assert "setup/inline_step/only_ckpt" in result.skipped
    assert "setup/inline_step/skipped" in result.ran
    assert len(result.ran) == 13
    assert ("local", 'echo "always redone (checkpointing=false)"') in log
    assert (tiny / "build" / "tiny" / ".build_recipe").is_file()


def test_checkpointed_build_creates_checkpoints_per_policy(tiny):
    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    backend = MemoryCheckpoints()
    _result, events, _ = build(recipe, options=BuildOptions(checkpointing=True), backend=backend)
    made = [e.slug for e in events if isinstance(e, CheckpointCreated)]
    assert "setup/inline_step/always" not in made  # redo
    assert "setup/inline_step/nockpt" not in made  # disabled
    assert "setup/inline_step/skipped" not in made  # skip: not even run
    assert len(backend.created) == 11


def test_rebuild_restores_the_last_valid_checkpoint(tiny):
    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    ids = [m.step_id for m in recipe.microsteps()]
    backend = MemoryCheckpoints(set(ids[:4]))  # up to setup/greet/say_bye
    result, _events, _ = build(recipe, options=BuildOptions(checkpointing=True), backend=backend)
    assert backend.restored == [ids[3]]
    assert result.checkpoint_ahead[:4] == [
        "bootstrap/prepare/make_dirs",
        "bootstrap/prepare/set_env",
        "setup/greet/say_hello",
        "setup/greet/say_bye",
    ]
    assert "setup/inline_step/use_user" in result.ran


def test_disabled_backend_creates_nothing(tiny):
    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    backend = MemoryCheckpoints()
    backend.is_enabled = False
    _, events, _ = build(recipe, options=BuildOptions(checkpointing=True), backend=backend)
    assert backend.created == []
    reasons = [e.text for e in events if isinstance(e, Message)]
    assert "--> Do not create a checkpoint for this microstep: disabled in backend" in reasons


def test_checkpointing_without_mechanism_is_a_build_error(tmp_path, monkeypatch):
    (tmp_path / "r.yaml").write_text("setup:\n  - s:\n    - m:\n      - exec_local: echo\n")
    monkeypatch.chdir(tmp_path)
    recipe = open_recipe("r.yaml", cwd=str(tmp_path))
    with pytest.raises(BuildError, match=r"^Checkpoint is unavailable for this recipe$"):
        build(recipe, options=BuildOptions(checkpointing=True))


def test_failure_in_script_mode_cleans_unfinished_sections_and_reports(tmp_path, monkeypatch):
    (tmp_path / "r.yaml").write_text(
        "bootstrap:\n  - b:\n    - ok:\n      - exec_local: echo boot\n"
        "      - on_bootstrap_clean:\n        - exec_local: echo clean-bootstrap\n"
        "setup:\n  - s:\n    - boom:\n      - exec_local: echo about to fail; false\n"
        "      - on_setup_clean:\n        - exec_local: echo clean-setup\n"
        "      - on_export_clean:\n        - exec_local: echo clean-export\n"
    )
    monkeypatch.chdir(tmp_path)
    recipe = open_recipe("r.yaml", cwd=str(tmp_path))

    def behaviour(context, script):
        return (1, "about to fail\n") if "false" in script else (0, "")

    factory, log = fake_shells(behaviour)
    events = []
    with (
        pytest.raises(ExecError) as err,
        Builder(recipe, on_event=events.append, shells=factory) as builder,
    ):
        builder.build(BuildOptions())
    assert "> exec_local: echo about to fail; false" in str(err.value)
    assert "exit status 1" in str(err.value)
    texts = [e.text for e in events if isinstance(e, Message)]
    assert texts[:2] == ["fatal error...", "Waiting for cleanup before exiting..."]
    assert "Cleaning setup section" in texts
    assert "Cleaning export section" in texts
    assert "Cleaning bootstrap section" not in texts
    commands = [script for _, script in log]
    assert "echo clean-setup" in commands
    assert "echo clean-export" in commands
    assert "echo clean-bootstrap" in commands  # ran as part of the finished bootstrap


def test_interactive_continue_and_retry(tmp_path, monkeypatch):
    from kameleon_nb.engine.commands import Choice

    (tmp_path / "r.yaml").write_text(
        "setup:\n  - s:\n    - m:\n      - exec_local: flaky\n      - exec_local: after\n"
    )
    monkeypatch.chdir(tmp_path)
    recipe = open_recipe("r.yaml", cwd=str(tmp_path))
    attempts = []

    def behaviour(context, script):
        if script == "flaky":
            attempts.append(1)
            return (0 if len(attempts) == 3 else 1, "")
        return (0, "")

    answers = iter([Choice.RETRY, Choice.RETRY])
    _result, _, log = build(
        recipe,
        options=BuildOptions(),
        behaviour=behaviour,
        on_failure=lambda failure, can_retry: next(answers),
    )
    assert len(attempts) == 3
    assert log[-1] == ("local", "after")

    with pytest.raises(AbortError, match="Execution aborted"):
        build(
            recipe,
            options=BuildOptions(),
            behaviour=lambda c, s: (1, ""),
            on_failure=lambda failure, can_retry: Choice.ABORT,
        )


def test_events_number_every_microstep(tiny):
    recipe = open_recipe("tiny.yaml", cwd=str(tiny))
    _, events, _ = build(recipe, options=BuildOptions())
    started = [e for e in events if isinstance(e, MicrostepStarted)]
    assert [e.order for e in started] == list(range(1, 15))
    assert all(e.total == 14 for e in started)
