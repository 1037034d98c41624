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

People are the one exception, and they are not text: where a Reply marks a person Leash
recorded under a Slack user id (a `Mention`: the id came from Slack's signed payload), the span
becomes a rich-text `user` element, which Slack shows as the person's display name. A `<@U…>`
or `<!channel>` typed in a reason is text like any other and stays literal.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby
from typing import Any

from bot.commands.forms import verb_of
from bot.domain import handles
from bot.domain.handles import HandleKind
from bot.domain.messages import Choice, ChoiceStyle, Mention, Reply, Section
from bot.surfaces.literal import unlinked
from bot.surfaces.slack.people import USER_ID

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
    return _rich_elements([e for e in elements if e["text"]])


def slack_user(mention: Mention) -> str | None:
    """The Slack user id a mention names, if its handle is one (never taken from typed text)."""
    if handles.kind_of(mention.handle) is not HandleKind.SLACK:
        return None
    user = mention.handle.partition(":")[2]
    return user if USER_ID.fullmatch(user) else None


def _people(text: str, mentions: list[Mention], *styles: str) -> list[dict[str, Any]]:
    """`text` as rich-text elements: each mentioned Slack user a `user` element, the rest text."""
    elements: list[dict[str, Any]] = []
    at = 0
    for mention in sorted(mentions, key=lambda m: m.start):
        user = slack_user(mention)
        if user is None or mention.start < at or mention.end > len(text):
            continue
        elements.append(styled(text[at : mention.start], *styles))
        person: dict[str, Any] = {"type": "user", "user_id": user}
        if styles:
            person["style"] = dict.fromkeys(styles, True)
        elements.append(person)
        at = mention.end
    elements.append(styled(text[at:], *styles))
    return [e for e in elements if e["type"] == "user" or e["text"]]


def _mentions_in(reply: Reply, line: int | None) -> list[Mention]:
    return [m for m in reply.mentions if m.line == line and slack_user(m) is not None]


def _headline(reply: Reply, *styles: str) -> Block:
    """The reply's text: plain as typed, with the people it names as Slack mentions."""
    text = reply.text if reply.ok else REFUSED + reply.text
    mentions = _mentions_in(reply, None)
    if not mentions and not styles:
        return literal(text)
    shift = len(text) - len(reply.text)
    moved = [Mention(m.handle, None, m.start + shift, m.end + shift) for m in mentions]
    return _rich_elements(_people(text, moved, *styles))


def _lines(reply: Reply) -> list[Block]:
    """The reply's lines: runs naming people in rich text, the others in plain text as ever."""
    runs = groupby(range(len(reply.lines)), key=lambda index: bool(_mentions_in(reply, index)))
    return [_run(reply, list(indices)) for _, indices in runs]


def _run(reply: Reply, indices: list[int]) -> Block:
    if not _mentions_in(reply, indices[0]):
        return literal("\n".join(reply.lines[i] for i in indices))
    elements: list[dict[str, Any]] = []
    for index in indices:
        if index != indices[0]:
            elements.append(styled("\n"))
        elements.extend(_people(reply.lines[index], _mentions_in(reply, index)))
    return _rich_elements(elements)


def _rich_elements(elements: list[dict[str, Any]]) -> Block:
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": elements}],
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
    blocks = [_headline(reply)]
    blocks.extend(_lines(reply))
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
    shown = replace(outcome, ok=True)  # the outcome is bold, never marked refused
    return [_headline(shown, "bold"), *reply_blocks(card, with_buttons=False)]
