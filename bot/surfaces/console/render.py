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
    width: int = 100,
) -> str:
    """Render a reply as terminal text; `saved` says where each attachment was written.

    Buttons read `[Label: command]`; `numbered` (the console) shows them as
    `[1] Label: command`, counting across the whole reply, with each command passed through
    `shorten` (display only: pressing a button runs its full command), and as many buttons
    on a line as fit in `width` columns.
    """
    mark = "" if reply.ok else "✗ "
    parts = [f"{mark}{reply.text}"]
    parts.extend(f"    {line}" for line in reply.lines)
    number = 1
    for item in reply.sections:
        parts.append(f"    {item.title}")
        parts.extend(f"        {line}" for line in item.lines)
        if item.choices:
            parts.append(_buttons(item.choices, number if numbered else 0, shorten, 8, width))
            number += len(item.choices)
    for index, attachment in enumerate(reply.attachments):
        where = saved[index] if index < len(saved) else f"{attachment.filename} (not saved)"
        parts.append(f"    📎 {attachment.title}: {where}")
    if reply.choices:
        parts.append(_buttons(reply.choices, number if numbered else 0, shorten, 4, width))
    return "\n".join(parts)


def _buttons(
    choices: Sequence[Choice],
    first: int,
    shorten: Callable[[str], str],
    indent: int,
    width: int,
) -> str:
    margin = " " * indent
    if not first:
        return margin + "  ".join(f"[{c.label}: {c.command}]" for c in choices)
    lines: list[str] = []
    for offset, choice in enumerate(choices):
        button = f"[{first + offset}] {choice.label}: {shorten(choice.command)}"
        if lines and len(lines[-1]) + 3 + len(button) <= width:
            lines[-1] += "   " + button
        else:
            lines.append(margin + button)
    return "\n".join(lines)
