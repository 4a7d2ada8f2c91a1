"""Which stale checkpoints a successful build removes (``--keep-stale``)."""

from __future__ import annotations

from kameleon_nb.core.model import StepId
from kameleon_nb.core.retention import KEEP_ALL, retain


def _ids(*names: str) -> list[StepId]:
    return [StepId(n) for n in names]


def test_valid_checkpoints_are_never_removed_and_are_marked_used() -> None:
    outcome = retain(_ids("a", "b"), _ids("a", "b", "c"), {}, 4, keep=0)
    assert outcome.remove == ()
    assert outcome.generation == 5
    assert outcome.used == {"a": 5, "b": 5}


def test_default_keeps_the_previous_builds_stale_ones_then_drops_them() -> None:
    # build 1 made a1 b1; build 2 edited b (b2): b1 is stale, last used by build 1
    first = retain(_ids("a1", "b1"), _ids("a1", "b1"), {}, 0, keep=1)
    second = retain(_ids("a1", "b1", "b2"), _ids("a1", "b2"), first.used, 1, keep=1)
    assert second.remove == ()  # an edit reverted next time costs nothing
    # build 3 edits b again (b3): b1 was last used two builds ago, b2 one build ago
    third = retain(_ids("a1", "b1", "b2", "b3"), _ids("a1", "b3"), second.used, 2, keep=1)
    assert third.remove == ("b1",)
    assert set(third.used) == {"a1", "b2", "b3"}


def test_reverting_an_edit_makes_the_old_checkpoint_valid_again() -> None:
    first = retain(_ids("a", "b1"), _ids("a", "b1"), {}, 0, keep=1)
    second = retain(_ids("a", "b1", "b2"), _ids("a", "b2"), first.used, 1, keep=1)
    back = retain(_ids("a", "b1", "b2"), _ids("a", "b1"), second.used, 2, keep=1)
    assert back.remove == ()
    assert back.used["b1"] == 3


def test_keep_zero_removes_every_stale_checkpoint() -> None:
    outcome = retain(_ids("a", "old"), _ids("a"), {StepId("old"): 7}, 7, keep=0)
    assert outcome.remove == ("old",)


def test_keep_all_removes_nothing() -> None:
    outcome = retain(_ids("a", "old"), _ids("a"), {StepId("old"): 1}, 50, keep=KEEP_ALL)
    assert outcome.remove == ()


def test_an_unrecorded_stale_checkpoint_gets_one_builds_grace() -> None:
    # made by a failed build (or before usage was recorded): treated as used by the last one
    outcome = retain(_ids("a", "orphan"), _ids("a"), {}, 3, keep=1)
    assert outcome.remove == ()
    assert outcome.used["orphan"] == 3
    later = retain(_ids("a", "orphan"), _ids("a"), outcome.used, 4, keep=1)
    assert later.remove == ("orphan",)


def test_rebuilding_the_same_version_opens_no_new_generation() -> None:
    first = retain(_ids("a", "b1"), _ids("a", "b1"), {}, 0, keep=1)
    second = retain(_ids("a", "b1", "b2"), _ids("a", "b2"), first.used, 1, keep=1)
    again = retain(
        _ids("a", "b1", "b2"), _ids("a", "b2"), second.used, 2, keep=1, new_version=False
    )
    assert again.generation == 2
    assert again.remove == ()  # b1 is still the previous version's
    # but asking for no stale checkpoint at all applies at once
    none = retain(_ids("a", "b1", "b2"), _ids("a", "b2"), again.used, 2, keep=0, new_version=False)
    assert none.remove == ("b1",)
