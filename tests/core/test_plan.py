"""The planner's decision table (semantics §6.4-6.6), one row per upstream branch."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kameleon_nb.core import messages
from kameleon_nb.core.model import (
    CheckpointPolicy,
    Macrostep,
    Microstep,
    RecipeFiles,
    ResolvedRecipe,
    Section,
    StepId,
)
from kameleon_nb.core.plan import Action, BuildOptions, find_row, plan_build
from kameleon_nb.errors import BuildError

P = CheckpointPolicy
RUN, SKIP, AHEAD = Action.RUN, Action.SKIP, Action.CHECKPOINT_AHEAD
OUTSIDE = messages.only_between("setup/m/s2", "setup/m/s2")


def recipe_of(*policies: CheckpointPolicy) -> ResolvedRecipe:
    """One macrostep ``m`` in setup whose microsteps ``s1``, ``s2``... have these policies."""
    steps = tuple(
        Microstep(
            name=f"s{n}",
            section="setup",
            macrostep="m",
            commands=(),
            on_checkpoint=policy,
            step_id=StepId(f"{n:012d}"),
            slug=f"setup/m/s{n}",
            order=n,
        )
        for n, policy in enumerate(policies, start=1)
    )
    return ResolvedRecipe(
        name="r",
        path="r.yaml",
        abspath="/r.yaml",
        description="",
        sections=(Section("setup", (Macrostep("m", "/r.yaml", microsteps=steps),)),),
        global_vars={},
        contexts={},
        checkpoint={},
        files=RecipeFiles(recipe="/r.yaml", parents=(), steps=(), env=(), data=()),
        cli_globals={},
        warnings=(),
    )


def ids(*orders: int) -> frozenset[StepId]:
    return frozenset(StepId(f"{n:012d}") for n in orders)


# (policy of s2, -c?, checkpoint of s2 exists (restore point is s2)) ->
# (action, printed reason, why no checkpoint is made after it (None: one is made))
TABLE = [
    (P.USE_CACHE, False, False, RUN, messages.RUNNING, None),
    (P.DISABLED, False, False, RUN, messages.RUNNING, None),
    (P.REDO, False, False, RUN, messages.RUNNING, None),
    (P.SKIP, False, False, RUN, messages.RUNNING, None),
    (P.ONLY, False, False, SKIP, messages.SKIP_NOT_ACTIVATED, None),
    (P.USE_CACHE, True, False, RUN, messages.RUNNING, None),
    (P.USE_CACHE, True, True, AHEAD, messages.CHECKPOINT_AHEAD, None),
    (P.DISABLED, True, False, RUN, messages.RUNNING, messages.DISABLED_IN_STEP),
    (P.DISABLED, True, True, AHEAD, messages.CHECKPOINT_AHEAD, None),
    (P.REDO, True, False, RUN, messages.RUNNING, messages.ALWAYS_REDO),
    (P.REDO, True, True, RUN, messages.RUNNING, messages.ALWAYS_REDO),
    (P.SKIP, True, False, SKIP, messages.SKIP_ACTIVATED, None),
    (P.SKIP, True, True, SKIP, messages.SKIP_ACTIVATED, None),
    (P.ONLY, True, False, RUN, messages.RUNNING, None),
    (P.ONLY, True, True, AHEAD, messages.CHECKPOINT_AHEAD, None),
]


@pytest.mark.parametrize(
    ("policy", "checkpointing", "exists", "action", "reason", "why_not"),
    TABLE,
    ids=[f"{r[0].value}-{'c' if r[1] else 'noc'}-{'ahead' if r[2] else 'new'}" for r in TABLE],
)
def test_decision_for_each_policy(policy, checkpointing, exists, action, reason, why_not):
    recipe = recipe_of(P.USE_CACHE, policy, P.USE_CACHE)
    plan = plan_build(recipe, ids(2) if exists else ids(), BuildOptions(checkpointing))
    step = plan.steps[1]
    assert (step.action, step.reason, step.checkpoint_reason) == (action, reason, why_not)
    # a restore point covers the microsteps before it; nothing after it is ahead
    assert plan.steps[2].action is RUN
    if exists and checkpointing and policy not in (P.SKIP, P.REDO):
        assert plan.restore is not None
        assert plan.restore.slug == "setup/m/s2"
        assert plan.steps[0].action is AHEAD


def test_last_takes_the_last_existing_checkpoint_in_recipe_order():
    recipe = recipe_of(P.USE_CACHE, P.USE_CACHE, P.USE_CACHE)
    plan = plan_build(recipe, ids(1, 2), BuildOptions(True, from_checkpoint="last"))
    assert plan.restore is not None
    assert plan.restore.slug == "setup/m/s2"
    assert [s.action for s in plan.steps] == [AHEAD, AHEAD, RUN]


def test_from_a_slug_or_an_id_and_unknown_ones():
    recipe = recipe_of(P.USE_CACHE, P.USE_CACHE, P.USE_CACHE)
    by_slug = plan_build(recipe, ids(1, 2), BuildOptions(True, from_checkpoint="setup/m/s1"))
    assert by_slug.restore is not None
    assert by_slug.restore.order == 1
    by_id = plan_build(recipe, ids(1, 2), BuildOptions(True, from_checkpoint="000000000002"))
    assert by_id.restore is not None
    assert by_id.restore.order == 2
    with pytest.raises(BuildError, match=r"Unknown checkpoint 'setup/m/s3'\. You may use the list"):
        plan_build(recipe, ids(1, 2), BuildOptions(True, from_checkpoint="setup/m/s3"))


def test_without_checkpointing_from_checkpoint_restores_nothing():
    recipe = recipe_of(P.USE_CACHE, P.USE_CACHE)
    plan = plan_build(recipe, ids(1, 2), BuildOptions(False, from_checkpoint="last"))
    assert plan.restore is None
    assert [s.action for s in plan.steps] == [RUN, RUN]


@pytest.mark.parametrize(
    ("begin", "end", "reasons"),
    [
        ("setup/m/s2", None, [messages.only_after("setup/m/s2"), None, None]),
        (None, "setup/m/s2", [None, None, messages.not_after("setup/m/s2")]),
        (
            "000000000002",
            "000000000002",
            [OUTSIDE, None, OUTSIDE],
        ),
    ],
)
def test_checkpoint_window(begin, end, reasons):
    recipe = recipe_of(P.USE_CACHE, P.USE_CACHE, P.USE_CACHE)
    plan = plan_build(recipe, ids(), BuildOptions(True, begin=begin, end=end))
    assert [s.checkpoint_reason for s in plan.steps] == reasons


def test_unknown_window_bound_names_the_dry_run():
    recipe = recipe_of(P.USE_CACHE)
    with pytest.raises(BuildError, match="use the dryrun and list checkpoints options"):
        plan_build(recipe, ids(), BuildOptions(True, begin="nope"))


def test_a_checkpoint_is_named_by_id_or_slug_and_a_stale_one_by_id_only():
    @dataclass
    class Row:
        step_id: str
        slug: str

    valid = [Row("a1", "setup/m/s1"), Row("b2", "setup/m/s2"), Row("c3", "setup/m/s2")]
    stale = [Row("d4", "setup/m/s1"), Row("e5", "setup/m/old")]
    assert find_row(valid, "setup/m/s2", last=True) is valid[2]
    assert find_row(valid, "setup/m/s2", last=False) is valid[1]
    assert find_row(valid, "b2", last=True, stale=stale) is valid[1]
    assert find_row(valid, "e5", last=True, stale=stale) is stale[1]
    assert find_row(valid, "setup/m/old", last=True, stale=stale) is None  # slug of a stale one
    assert find_row(valid, "setup/m/s1", last=True, stale=stale) is valid[0]
