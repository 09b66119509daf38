"""The endpoint stands alone: it imports nothing of the sender but the shared API limits."""

from __future__ import annotations

import ast
from pathlib import Path

import ordered_sender.emulator

ALLOWED = ("ordered_sender.emulator", "ordered_sender.limits")


def _imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


def test_the_emulator_imports_nothing_of_the_sender_but_the_limits() -> None:
    package = Path(ordered_sender.emulator.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 20
    outside = {
        f"{path.relative_to(package)}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if (module == "ordered_sender" or module.startswith("ordered_sender."))
        and not any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED)
    }
    assert outside == set()
