"""Checkpoint ids: upstream's SHA-1 hash chain over the microsteps' command texts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

from kameleon_nb.core.model import CheckpointPolicy, StepId

__all__ = ["chain_step_ids", "step_id_of", "unique_slugs"]


def step_id_of(texts: Sequence[str], salt: str) -> StepId:
    """The id of one microstep: ``sha1(" ".join(texts) + salt)[:12]``.

    >>> step_id_of(['exec_in: echo "bye alice"'], "b74ff1fab969")
    '283a038316f7'
    """
    content = " ".join(texts) + salt
    return StepId(hashlib.sha1(content.encode("utf-8")).hexdigest()[:12])


def chain_step_ids(
    microsteps: Iterable[tuple[Sequence[str], CheckpointPolicy]],
) -> Iterator[StepId]:
    """Give each microstep an id that depends on it and on every id before it.

    Microsteps marked ``on_checkpoint: redo`` or ``skip`` get an unchained id and
    do not advance the chain, as in Kameleon 2.11.0, so changing a command changes
    that microstep's id and every later chained id, never an earlier one.

    Args:
        microsteps: each microstep's command texts and policy, in execution order.

    Yields:
        One id per microstep.
    """
    salt = ""
    for texts, policy in microsteps:
        if policy.chained:
            salt = step_id_of(texts, salt)
            yield salt
        else:
            yield step_id_of(texts, "")


def unique_slugs(slugs: Iterable[str]) -> Iterator[str]:
    """Add ``%1``, ``%2``... to slugs already seen, as upstream's checkpoint table does.

    >>> list(unique_slugs(["a/b/c", "a/b/c", "a/b/d", "a/b/c"]))
    ['a/b/c', 'a/b/c%1', 'a/b/d', 'a/b/c%2']
    """
    seen: dict[str, int] = {}
    for slug in slugs:
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        yield slug if count == 0 else f"{slug}%{count}"
