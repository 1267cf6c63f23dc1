"""Imports point one way between the rooms of broadcast/, and no module imports itself back.

Every import counts: at module level, inside functions and under TYPE_CHECKING (a cycle of
types is still a cycle to read).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"__init__", "errors", "settings", "clock", "keys", "log_scrub", "text_rules"}
KERNEL |= {"csv_cells", "vocabulary"}
# Lower rooms first; a module may import its own room or a lower one. The middle tier is in the
# order its imports have today (messages and channels use only the store and the kernel). workers/
# is the Dramatiq adapter (actors, broker, the queue monitor), below the two front ends that read
# the queues through it; forces (the platform's tenants) sit above capacity, whose rates their
# profiles check; web sits below cli because `broadcast web` (cli/web.py) serves the web
# app; "entry" is cli.py.
ORDER = ["kernel", "store", "messages", "channels", "capacity", "forces", "registrants"]
ORDER += ["importing"]
ORDER += ["runtime", "delivery", "alerts", "ops", "workers", "web", "cli", "entry"]
FRAMEWORKS = {"dramatiq", "fastapi", "starlette", "typer", "uvicorn"}


def name_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "broadcast":
        return "workers" if parts[0] == "workers" else "entry"
    if module == "broadcast.runtime":
        return "runtime"
    return "kernel" if len(parts) == 1 or parts[1] in KERNEL else parts[1]


FILES = {name_of(p): p for p in [ROOT / "cli.py", *ROOT.glob("workers/**/*.py")]}
FILES |= {name_of(p): p for p in (ROOT / "broadcast").rglob("*.py")}


def imports(module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import in `module`."""
    found = []
    package = module if FILES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(FILES[module].read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in FILES else base, node.lineno))
    return found


GRAPH = {module: imports(module) for module in FILES}


def where(module: str, line: int, target: str) -> str:
    return f"{FILES[module].relative_to(ROOT)}:{line} imports {target}"


def test_no_upward_import_between_rooms() -> None:
    wrong = [
        where(module, line, target)
        for module, found in GRAPH.items()
        for target, line in found
        if target in FILES
        and room(target) != room(module)
        and ORDER.index(room(target)) > ORDER.index(room(module))
    ]
    assert not wrong, f"upward imports (order: {' -> '.join(ORDER)}):\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    edges = {m: {t for t, _ in found if t in FILES} for m, found in GRAPH.items()}
    reach: dict[str, set[str]] = {}

    def reachable(start: str) -> set[str]:
        if start not in reach:
            seen, todo = set(), [start]
            while todo:
                for target in edges[todo.pop()] - seen:
                    seen.add(target)
                    todo.append(target)
            reach[start] = seen
        return reach[start]

    wrong = [
        where(module, line, target)
        for module, found in GRAPH.items()
        for target, line in found
        if target in edges[module] and module in reachable(target)
    ]
    assert not wrong, "imports that close a cycle:\n" + "\n".join(sorted(set(wrong)))


def test_core_imports_no_framework() -> None:
    wrong = [
        where(module, line, target)
        for module, found in GRAPH.items()
        for target, line in found
        if room(module) not in {"workers", "cli", "web", "entry"}
        and target.split(".")[0] in FRAMEWORKS
    ]
    assert not wrong, "the core imports a worker or web framework:\n" + "\n".join(wrong)
