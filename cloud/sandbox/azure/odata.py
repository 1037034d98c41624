"""Parse the small OData `$filter` dialects ARM, PIM, the activity log and Graph accept."""

from __future__ import annotations

import re
from dataclasses import dataclass

_QUOTED = r"'(?:[^']|'')*'"
_AND = re.compile(rf"\s+and\s+(?=(?:[^']|{_QUOTED})*$)", re.IGNORECASE)
_COMPARISON = re.compile(rf"(?P<field>[\w/.]+)\s+(?P<op>eq|ne|ge|le|gt|lt)\s+(?P<value>{_QUOTED})")
_MEMBERSHIP = re.compile(r"(?P<field>[\w/.]+)\s+in\s+\((?P<values>.*)\)", re.IGNORECASE)
_ANY = re.compile(
    rf"(?P<field>\w+)/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)\s+eq\s+(?P<value>{_QUOTED})\s*\)",
    re.IGNORECASE,
)
_CALL = re.compile(r"(?P<function>\w+)\(\s*(?P<args>.*?)\s*\)")
_ITEM = re.compile(rf"\s*(?:(?P<quoted>{_QUOTED})|(?P<bare>[\w/.]+))\s*(?:,|$)")


@dataclass(frozen=True, slots=True)
class Clause:
    """One filter clause: `principalId eq 'x'` is ("principalId", "eq", ("x",))."""

    field: str
    op: str  # eq ne ge le gt lt, "in", "any" (field/any(t:t eq v)), or "call" (field is a function)
    values: tuple[str, ...] = ()


class FilterError(ValueError):
    """A `$filter` the emulator cannot read."""


def parse(text: str | None) -> list[Clause]:
    """Split a filter into its `and`-joined clauses; FilterError when one is unreadable."""
    if not text or not text.strip():
        return []
    return [_clause(part.strip()) for part in _AND.split(text.strip())]


def _clause(text: str) -> Clause:
    if match := _COMPARISON.fullmatch(text):
        return Clause(match["field"], match["op"].lower(), (_unquote(match["value"]),))
    if match := _MEMBERSHIP.fullmatch(text):
        return Clause(match["field"], "in", _items(match["values"]))
    if match := _ANY.fullmatch(text):
        return Clause(match["field"], "any", (_unquote(match["value"]),))
    if match := _CALL.fullmatch(text):
        return Clause(match["function"], "call", _items(match["args"]))
    raise FilterError(f"Unsupported filter clause: {text}")


def _items(text: str) -> tuple[str, ...]:
    values: list[str] = []
    position = 0
    while position < len(text):
        match = _ITEM.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"Unreadable list: {text}")
        values.append(_unquote(match["quoted"]) if match["quoted"] else match["bare"])
        position = match.end()
    return tuple(values)


def _unquote(quoted: str) -> str:
    return quoted[1:-1].replace("''", "'")
