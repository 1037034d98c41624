"""Block Kit rendering of Leash's replies and notices; what people typed is shown literally.

Reply text is plain text, and much of it was typed by someone else: reasons and notes, names of
people and identities, cloud tags. Slack's mrkdwn cannot show such text literally. `&amp;`,
`&lt;` and `&gt;` stop mentions and links, but mrkdwn has no escape for `*bold*`, `_italic_`,
`~strike~`, `` `code` ``, `> quotes` or bare URLs, and the usual tricks fail: a zero-width space
is a word boundary to Slack (it turns formatting on rather than off), and look-alike characters
change what the person typed. So reply text never goes into mrkdwn here. It goes into
`plain_text` text objects (emoji shortcodes off), or, where Leash formats around it (bold
titles, outcomes, the App Home), into `rich_text` text elements: Slack shows both exactly as
given, and Leash's own formatting is carried by the structure (styles), not by characters a
person could also type. Bare URLs are also kept from being linked (`unlinked`).
"""

from __future__ import annotations

from typing import Any

from bot.commands.forms import verb_of
from bot.domain.messages import Choice, ChoiceStyle, Reply, Section
from bot.surfaces.literal import unlinked

Block = dict[str, Any]

SECTION_LIMIT = 2900
ACTION_PREFIX = "leash:"
MAX_BLOCKS = 50  # Slack rejects a message with more blocks than this
REFUSED = "\u274c "  # the ❌ emoji itself: `:x:` would need shortcodes, which people can type


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    """A `plain_text` object: Slack shows it as given (no mrkdwn, mentions, links, shortcodes)."""
    return {"type": "plain_text", "text": _clip(unlinked(text), limit), "emoji": False}


def literal(text: str) -> Block:
    """A section showing `text` exactly as typed."""
    return {"type": "section", "text": plain(text)}


def context(text: str) -> Block:
    """A context line of Leash's own mrkdwn; `text` must already be escaped."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def styled(text: str, *styles: str) -> dict[str, Any]:
    """A rich-text element: `text` shown as given, in Leash's styles (bold, italic, code)."""
    element: dict[str, Any] = {"type": "text", "text": _clip(unlinked(text))}
    if styles:
        element["style"] = dict.fromkeys(styles, True)
    return element


def bold(text: str) -> dict[str, Any]:
    return styled(text, "bold")


def rich(*parts: str | dict[str, Any]) -> Block:
    """A rich_text block of plain strings and `styled` elements, all shown literally."""
    elements = [styled(part) if isinstance(part, str) else part for part in parts]
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [e for e in elements if e["text"]]}],
    }


def button(choice: Choice, index: int) -> dict[str, Any]:
    verb = verb_of(choice.command)
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
    blocks = [literal(reply.text if reply.ok else REFUSED + reply.text)]
    if reply.lines:
        blocks.append(literal("\n".join(reply.lines)))
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
        blocks.append(_section(item))
        if cost == 2:
            blocks.append(actions(item.choices, start=numbered))
            numbered += len(item.choices)
        shown += 1
    if hidden := len(reply.sections) - shown:
        blocks.append(context(_more(hidden, more_hint)))
    if closing:
        blocks.append(actions(reply.choices, start=numbered))
    return blocks


def _section(item: Section) -> Block:
    """One section of a grouped message: its title in bold, then its lines."""
    return rich(bold(item.title), "".join(f"\n{line}" for line in item.lines))


def _more(count: int, hint: str | None) -> str:
    note = f"…and {count} more"
    return f"{note} — type `{escape(hint)}`" if hint else note


def fallback_text(reply: Reply) -> str:
    """The `text` Slack shows in notifications and screen readers: no mentions, no links.

    Post it with `mrkdwn=False` where the API takes it, so its formatting characters stay too.
    """
    return escape(_clip(unlinked(reply.text), 3000))


def outcome_blocks(outcome: Reply, card: Reply) -> list[Block]:
    """A decided or expired card: the outcome first, the original request below, no buttons."""
    return [rich(bold(outcome.text)), *reply_blocks(card, with_buttons=False)]
