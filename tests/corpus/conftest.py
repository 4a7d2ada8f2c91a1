"""Print how many real recipes answer as upstream, per collection and mode."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.corpus.test_corpus import RESULTS

    if not RESULTS:
        return
    terminalreporter.section("real recipe collections vs upstream 2.11.0")
    for (collection, mode), outcomes in sorted(RESULTS.items()):
        terminalreporter.write_line(
            f"{collection} {mode:>4}: {sum(outcomes)}/{len(outcomes)} recipes identical"
        )
