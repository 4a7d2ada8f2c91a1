"""Record upstream's answers to the verb scenarios (tests/frontends/verbs_scenarios.py).

Needs Kameleon 2.11.0 installed as ``kameleon-oracle`` (see the shared ``oracle/``),
git and GraphViz. Writes ``tests/data/verbs/<scenario>.json``; the tests compare
kameleon_nb's answers with these and never need Ruby::

    python benchmarks/record_verbs.py [SCENARIO ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.frontends.verbs_scenarios import ANSWERS, SCENARIOS, run


def main(names: list[str]) -> int:
    ANSWERS.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        if names and scenario.name not in names:
            continue
        with tempfile.TemporaryDirectory(prefix=f"kameleon-verbs-{scenario.name}-") as root:
            answer = run(scenario, Path(root), ["kameleon-oracle"])
        path = ANSWERS / f"{scenario.name}.json"
        path.write_text(json.dumps(answer, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        statuses = [step["status"] for step in answer["steps"]]
        print(f"{scenario.name}: {len(statuses)} steps, statuses {statuses} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
