"""The notebook session over fake shells and in-memory checkpoints (the layer above them)."""

from __future__ import annotations

from kameleon_nb.engine.session import Session

from .fakes import MemoryCheckpoints, fake_shells


class CountingCheckpoints(MemoryCheckpoints):
    def __init__(self) -> None:
        super().__init__()
        self.sized: list[str] = []

    def size(self, step_id):
        self.sized.append(step_id)
        return super().size(step_id)


def test_a_checkpoint_size_is_asked_once_until_the_checkpoint_is_made_again(tmp_path):
    backend = CountingCheckpoints()
    shells, _log = fake_shells()
    session = Session.scratch(
        cwd=str(tmp_path), checkpointing=True, shells=shells, checkpoints=backend
    )
    first = session.run_microstep("a", [{"exec_local": "true"}])
    session.run_microstep("b", [{"exec_local": "true"}])
    for _ in range(3):
        rows = session.checkpoints()
    assert [r.size for r in rows] == [0, 0]
    assert sorted(backend.sized) == sorted(r.step_id for r in rows)  # once each
    session.restore(first.slug)
    session.run_microstep("b", [{"exec_local": "true"}])  # b made again
    session.checkpoints()
    assert backend.sized.count(rows[1].step_id) == 2
    assert backend.sized.count(rows[0].step_id) == 1
