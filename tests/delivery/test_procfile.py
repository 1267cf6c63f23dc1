"""The queues the Procfile's workers serve are exactly the queues the code uses."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from broadcast.delivery.dispatch import QUEUES

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


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_starts_the_procfile_with_honcho_and_describes_every_process() -> None:
    # Given: the README's way of starting the production stack
    section = _readme_section("Running it for real")
    assert "honcho start" in section
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("honcho") for dep in extras["run"])

    # When: honcho (installed by that extra) checks the Procfile
    honcho = Path(sys.executable).with_name("honcho")
    checked = subprocess.run(
        [str(honcho), "check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    # Then: it is valid, and every process it would start is described in the README's table
    assert checked.returncode == 0, checked.stderr
    names = [line.partition(":")[0] for line in (ROOT / "Procfile").read_text().splitlines()]
    assert f"({', '.join(names)})" in checked.stderr + checked.stdout
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    described = [row.split("`")[1] for row in rows]
    assert described == names


def test_the_release_step_comes_first_and_the_readme_runs_it_before_the_rest() -> None:
    # Given: the Procfile's processes
    names = [line.partition(":")[0] for line in (ROOT / "Procfile").read_text().splitlines()]
    assert names[0] == "release"
    assert (ROOT / "Procfile").read_text().splitlines()[0] == "release: broadcast db upgrade"

    # When: the README starts the stack
    section = _readme_section("Running it for real")
    upgrade = section.index("broadcast db upgrade")
    start = next(line for line in section.splitlines() if "honcho start" in line)

    # Then: it migrates first, and honcho (which has no release phase and stops every process
    # when one exits) starts every other process by name, web first for its port
    assert upgrade < section.index(start)
    words = shlex.split(start.partition("honcho start")[2])
    assert [w for w in words if not w.startswith("-") and not w.isdigit()] == names[1:]
