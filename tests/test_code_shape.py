"""The size rules of the codebase: no module over 400 lines, no function over 60.

Small modules with one role each, and functions that fit on a screen, are what keeps Leash
readable as it grows (issue 19). Migrations (Alembic writes them) and the OpenAPI document
(one literal) are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "cloud", "scheduler")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
EXEMPT_PARTS = {"migrations"}
EXEMPT_FUNCTIONS = {("bot/http/openapi.py", "openapi_document")}


def _sources() -> list[Path]:
    found = [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not EXEMPT_PARTS & set(path.relative_to(ROOT).parts)
    ]
    assert len(found) > 100, "the source tree was not found"
    return found


def _long_functions(path: Path) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        lines = (node.end_lineno or node.lineno) - start + 1
        if lines > MAX_FUNCTION_LINES and (relative, node.name) not in EXEMPT_FUNCTIONS:
            long.append(f"{relative}:{node.lineno} {node.name} ({lines} lines)")
    return long


def test_no_module_is_over_400_lines() -> None:
    long = [
        f"{path.relative_to(ROOT).as_posix()} ({count} lines)"
        for path in _sources()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "split these modules by responsibility:\n" + "\n".join(long)


def test_no_function_is_over_60_lines() -> None:
    long = [entry for path in _sources() for entry in _long_functions(path)]
    assert not long, "split these functions:\n" + "\n".join(long)
