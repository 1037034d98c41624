"""A Reply as terminal text: headline, lines, sections, attachments and buttons."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bot.domain.messages import Choice, Reply


def card_choices(reply: Reply) -> tuple[Choice, ...]:
    """Every button of a reply in the order they are shown: each section's, then its own."""
    return (*(c for item in reply.sections for c in item.choices), *reply.choices)


def _same(command: str) -> str:
    return command


def format_reply(
    reply: Reply,
    *,
    saved: Sequence[Path | str] = (),
    numbered: bool = False,
    shorten: Callable[[str], str] = _same,
) -> str:
    """Render a reply as terminal text; `saved` says where each attachment was written.

    Buttons read `[Label: command]`; `numbered` (the console) shows them as
    `[1] Label: command`, counting across the whole reply, with each command passed through
    `shorten` (display only: pressing a button runs its full command).
    """
    mark = "" if reply.ok else "✗ "
    parts = [f"{mark}{reply.text}"]
    parts.extend(f"    {line}" for line in reply.lines)
    number = 1
    for item in reply.sections:
        parts.append(f"    {item.title}")
        parts.extend(f"        {line}" for line in item.lines)
        if item.choices:
            parts.append("        " + _buttons(item.choices, number if numbered else 0, shorten))
            number += len(item.choices)
    for index, attachment in enumerate(reply.attachments):
        where = saved[index] if index < len(saved) else f"{attachment.filename} (not saved)"
        parts.append(f"    📎 {attachment.title}: {where}")
    if reply.choices:
        parts.append("    " + _buttons(reply.choices, number if numbered else 0, shorten))
    return "\n".join(parts)


def _buttons(choices: Sequence[Choice], first: int, shorten: Callable[[str], str]) -> str:
    if not first:
        return "  ".join(f"[{c.label}: {c.command}]" for c in choices)
    return "   ".join(
        f"[{first + offset}] {c.label}: {shorten(c.command)}" for offset, c in enumerate(choices)
    )
