"""Block Kit rendering of Leash's replies and notices; every piece of text is mrkdwn-escaped."""

from __future__ import annotations

from typing import Any

from bot.domain.messages import Choice, ChoiceStyle, Reply, Section

Block = dict[str, Any]

SECTION_LIMIT = 2900
ACTION_PREFIX = "leash:"
MAX_BLOCKS = 50  # Slack rejects a message with more blocks than this


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    """A mrkdwn section; `text` must already be escaped."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def button(choice: Choice, index: int) -> dict[str, Any]:
    verb = choice.command.split(" ", 1)[0]
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": choice.label[:75]},
        "action_id": f"{ACTION_PREFIX}{verb}:{index}",
        "value": choice.command[:2000],
    }
    if choice.style is not ChoiceStyle.DEFAULT:
        element["style"] = choice.style.value
    return element


def actions(choices: tuple[Choice, ...], *, block_id: str | None = None, start: int = 0) -> Block:
    """Buttons for `choices`, numbered from `start` so action ids stay unique in a message."""
    block: Block = {
        "type": "actions",
        "elements": [button(choice, start + i) for i, choice in enumerate(choices)],
    }
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def reply_blocks(
    reply: Reply, *, with_buttons: bool = True, more_hint: str | None = None
) -> list[Block]:
    """Render a reply: headline, detail lines, sections with their buttons, buttons.

    Sections that would take the message past Slack's block limit are left out and counted
    in a closing note, which names `more_hint` (a command that lists them all) when given.
    """
    mark = "" if reply.ok else ":x: "
    blocks = [section(f"{mark}{escape(reply.text)}")]
    if reply.lines:
        blocks.append(section("\n".join(escape(line) for line in reply.lines)))
    closing = with_buttons and bool(reply.choices)
    room = MAX_BLOCKS - len(blocks) - (1 if closing else 0)
    costs = [2 if with_buttons and item.choices else 1 for item in reply.sections]
    if sum(costs) > room:
        room -= 1  # keep one block for the "…and N more" note
    numbered = shown = 0  # buttons so far (their ids must differ), sections shown
    for item, cost in zip(reply.sections, costs, strict=True):
        if cost > room:
            break
        room -= cost
        blocks.append(section(_section_text(item)))
        if cost == 2:
            blocks.append(actions(item.choices, start=numbered))
            numbered += len(item.choices)
        shown += 1
    if hidden := len(reply.sections) - shown:
        blocks.append(context(_more(hidden, more_hint)))
    if closing:
        blocks.append(actions(reply.choices, start=numbered))
    return blocks


def _section_text(item: Section) -> str:
    """One section of a grouped message: its title in bold, then its lines."""
    return "\n".join([f"*{escape(item.title)}*", *(escape(line) for line in item.lines)])


def _more(count: int, hint: str | None) -> str:
    note = f"…and {count} more"
    return f"{note} — type `{escape(hint)}`" if hint else note


def fallback_text(reply: Reply) -> str:
    """The plain `text` Slack shows in notifications and screen readers."""
    return _clip(reply.text, 3000)


def outcome_blocks(outcome: Reply, card: Reply) -> list[Block]:
    """A decided or expired card: the outcome first, the original request below, no buttons."""
    return [
        section(f"*{escape(outcome.text)}*"),
        *reply_blocks(card, with_buttons=False),
    ]
