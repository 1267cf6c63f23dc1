"""The queues the Procfile's workers serve are exactly the queues the code uses."""

from __future__ import annotations

import shlex
from pathlib import Path

from broadcast.dispatch import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def test_procfile_serves_every_queue_and_no_other() -> None:
    served: set[str] = set()
    lines = (ROOT / "Procfile").read_text().splitlines()
    for line in lines:
        name, _, command = line.partition(":")
        words = shlex.split(command)
        if words[:2] == ["dramatiq", "workers"]:
            for word in words[words.index("--queues") + 1 :]:
                if word.startswith("-"):
                    break
                served.add(word)
    import workers

    declared = {q for q in workers.broker.get_declared_queues() if not q.endswith(".DQ")}
    assert served == set(QUEUES) == declared
    assert any(line.startswith("web:") for line in lines)
    assert any(line.startswith("sweeper:") for line in lines)
