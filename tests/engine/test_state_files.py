"""A checkpoint records the marker files steps leave in the build directory."""

from __future__ import annotations

from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.builddir import STATE_FILE_LIMIT, restore_state_files, state_files
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.recipes import open_recipe

from .fakes import MemoryCheckpoints, fake_shells


def test_state_files_are_small_hidden_regular_files(tmp_path):
    (tmp_path / ".KAMELEON_SETUP_ROOTFS_SYSTEM").write_text("")
    (tmp_path / ".marker").write_bytes(b"\x00\xffdata")
    (tmp_path / ".big").write_bytes(b"x" * (STATE_FILE_LIMIT + 1))
    (tmp_path / ".build_recipe").write_text("name: x\n")
    (tmp_path / "visible").write_text("an output, not a marker")
    (tmp_path / ".dir").mkdir()
    (tmp_path / ".link").symlink_to("visible")
    assert state_files(str(tmp_path)) == {
        ".KAMELEON_SETUP_ROOTFS_SYSTEM": b"",
        ".marker": b"\x00\xffdata",
    }


def test_restore_puts_back_removes_and_leaves_the_rest(tmp_path):
    (tmp_path / ".gone_since").write_text("made after the checkpoint")
    (tmp_path / ".changed").write_text("new")
    (tmp_path / "visible").write_text("kept")
    restore_state_files(str(tmp_path), {".removed_since": b"1", ".changed": b"old"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".changed", ".removed_since", "visible"]
    assert (tmp_path / ".changed").read_text() == "old"


def test_restoring_a_checkpoint_restores_its_markers(tiny):
    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    cwd = tiny / "build" / "tiny"
    cwd.mkdir(parents=True)
    marker = cwd / ".KAMELEON_SETUP_ROOTFS_SYSTEM"
    marker.write_text("mounted\n")
    factory, _log = fake_shells()
    backend = MemoryCheckpoints()
    microstep = next(iter(recipe.microsteps()))
    with Builder(recipe, on_event=lambda e: None, shells=factory, checkpoints=backend) as builder:
        assert builder.create_checkpoint(microstep)
        marker.unlink()  # a clean step unmounted and removed it
        (cwd / ".later").write_text("")
        builder.restore(microstep)
    assert marker.read_text() == "mounted\n"
    assert not (cwd / ".later").exists()
    assert backend.restored == [microstep.step_id]


def test_older_records_without_markers_leave_the_build_dir_alone(tiny):
    recipe = open_recipe("tiny.yaml", checkpointing=True, cwd=str(tiny))
    factory, _log = fake_shells()
    ids = {m.step_id for m in recipe.microsteps()}
    backend = MemoryCheckpoints(ids)
    cwd = tiny / "build" / "tiny"
    cwd.mkdir(parents=True)
    (cwd / ".mine").write_text("")
    with Builder(recipe, on_event=lambda e: None, shells=factory, checkpoints=backend) as builder:
        builder.build(BuildOptions(checkpointing=True))  # restores a checkpoint with no record
    assert (cwd / ".mine").exists()
