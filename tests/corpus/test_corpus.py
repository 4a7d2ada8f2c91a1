"""Every entry point of the real collections answers as upstream 2.11.0 did.

Four modes per recipe (``build -d``, ``build -d -l``, ``build -d -l -c``, ``info``),
compared with the answers upstream recorded (``tests/data/corpus/``): the same exit
status; the same output line by line (trailing spaces aside) where it succeeded;
where it failed, the same lines and an ``Error:`` line that starts with upstream's.
The per-mode counts are printed at the end of the run.
"""

from __future__ import annotations

import pytest

from tests.corpus.compare import Case, difference, prepare, run

CASES = prepare()
RESULTS: dict[tuple[str, str], list[bool]] = {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_answers_as_upstream(case: Case) -> None:
    code, stdout = run(case)
    diff = difference(case, code, stdout)
    RESULTS.setdefault((case.collection, case.mode), []).append(diff is None)
    assert diff is None, diff
