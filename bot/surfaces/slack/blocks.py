"""Block Kit rendering of Leash's replies and notices; every piece of text is mrkdwn-escaped."""

from __future__ import annotations

from typing import Any

from bot.domain.messages import Choice, ChoiceStyle, Reply

Block = dict[str, Any]

SECTION_LIMIT = 2900
ACTION_PREFIX = "leash:"


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


def actions(choices: tuple[Choice, ...], *, block_id: str | None = None) -> Block:
    block: Block = {
        "type": "actions",
        "elements": [button(choice, i) for i, choice in enumerate(choices)],
    }
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def reply_blocks(reply: Reply, *, with_buttons: bool = True) -> list[Block]:
    """Render a reply: headline, detail lines, buttons."""
    mark = "" if reply.ok else ":x: "
    blocks = [section(f"{mark}{escape(reply.text)}")]
    if reply.lines:
        blocks.append(section("\n".join(escape(line) for line in reply.lines)))
    if with_buttons and reply.choices:
        blocks.append(actions(reply.choices))
    return blocks


def fallback_text(reply: Reply) -> str:
    """The plain `text` Slack shows in notifications and screen readers."""
    return _clip(reply.text, 3000)


def outcome_blocks(outcome: Reply, card: Reply) -> list[Block]:
    """A decided or expired card: the outcome first, the original request below, no buttons."""
    return [
        section(f"*{escape(outcome.text)}*"),
        *reply_blocks(card, with_buttons=False),
    ]
