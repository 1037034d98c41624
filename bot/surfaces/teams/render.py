"""Adaptive Cards (1.5, Universal Actions) for Leash's replies and notices; text is escaped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.commands.forms import FormKind, filled, form_for, verb_of
from bot.domain.messages import Choice, ChoiceStyle, Reply, Section
from bot.surfaces.literal import unlinked

Card = dict[str, Any]
Element = dict[str, Any]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# 1.5: the highest Adaptive Card version Teams renders; it has Action.Execute (since 1.4) and
# the filtered choice set of the request form. The tests validate every card against
# Microsoft's 1.5 schema (tests/schemas/adaptive-cards/).
VERSION = "1.5"
REFRESH_VERB = "refresh"
FIELDS = "fields"  # in a form button's data: the ids its inputs were renamed to
MAX_SECTIONS = 25  # keeps a grouped message well under Teams' ~28 KB card limit
TEXT_LIMIT = 2000
# Only what Adaptive Card markdown acts on: emphasis, links (`[..](..)` and `<scheme:..>`),
# code; lists at a line's start.
_MARKDOWN = re.compile(r"([\\`*_\[\]~<])")
_LIST_START = re.compile(r"^(\s*)(-|\d+)(\.?\s)")
_STYLES = {ChoiceStyle.PRIMARY: "positive", ChoiceStyle.DANGER: "destructive"}


def escape(text: str) -> str:
    """Make user text literal in a card's markdown: no emphasis, links, lists or headings.

    Card markdown (TextBlock text, FactSet values) honours backslash escapes, so each character
    it acts on is escaped; bare URLs, which Teams links by itself, are kept from linking.
    """
    clipped = text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
    escaped = _MARKDOWN.sub(r"\\\1", unlinked(clipped))
    return _LIST_START.sub(_unlist, escaped)


def _unlist(found: re.Match[str]) -> str:
    """`- x` and `1. x` at a line's start would become a list: escape the marker."""
    indent, marker, rest = found.groups()
    if marker == "-":
        return f"{indent}\\-{rest}"
    return f"{indent}{marker}\\{rest}" if rest.startswith(".") else found.group(0)


def mark(reply: Reply) -> str:
    """A reply's headline, escaped, marked ✗ when it is a refusal (not only by its colour)."""
    return escape(reply.text) if reply.ok else f"✗ {escape(reply.text)}"


def text_block(text: str, **style: Any) -> Element:
    """A wrapping TextBlock; `text` must already be escaped."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _lines(lines: Iterable[str]) -> list[Element]:
    """Detail lines: runs of `Label: value` become a fact table, the rest plain text."""
    elements: list[Element] = []
    facts: list[dict[str, str]] = []
    for line in lines:
        label, colon, value = line.partition(": ")
        if colon and 0 < len(label) <= 24 and "\n" not in label:
            facts.append({"title": escape(label), "value": escape(value)})
            continue
        if facts:
            elements.append({"type": "FactSet", "facts": facts})
            facts = []
        elements.append(text_block(escape(line), spacing="Small"))
    if facts:
        elements.append({"type": "FactSet", "facts": facts})
    return elements


def action(choice: Choice, *, request_id: str | None = None) -> Element:
    """A button that runs `choice.command` as whoever presses it; asks for input when needed."""
    verb = verb_of(choice.command)
    data: dict[str, str] = {"command": choice.command[:2000]}
    if request_id:
        data["request"] = request_id
    form = _form_for(choice.command)
    if form is not None:
        fields, title = form
        return {
            "type": "Action.ShowCard",
            "title": choice.label[:60],
            "card": {
                "type": "AdaptiveCard",
                "body": fields,
                "actions": [
                    {
                        "type": "Action.Execute",
                        "title": title,
                        "verb": verb,
                        "data": {**data, "form": verb},
                        **_style(choice.style),
                    }
                ],
            },
        }
    return {
        "type": "Action.Execute",
        "title": choice.label[:60],
        "verb": verb,
        "data": data,
        **_style(choice.style),
    }


def _style(style: ChoiceStyle) -> dict[str, str]:
    return {"style": _STYLES[style]} if style in _STYLES else {}


def _form_for(command: str) -> tuple[list[Element], str] | None:
    """The inputs a button needs before its command can run (Slack opens a modal for these)."""
    form = form_for(command)
    if form is None:
        return None
    match form.kind:
        case FormKind.DENY:
            return [_input("reason", "Why deny? (the requester sees this)", multiline=True)], "Deny"
        case FormKind.EXTEND:
            return [
                _input("duration", "How much longer (e.g. 30m, 1h)", required=True),
                _input("reason", "Why does it need longer?", multiline=True),
            ], "Ask to extend"
        case FormKind.ASSIGN:
            return [
                _input("owner", "Owner (e-mail)", required=True),
                _input("backup", "Backup owner (e-mail, optional)", required=False),
                _input("team", "Team (optional)", required=False),
            ], "Assign"


def _input(name: str, label: str, *, multiline: bool = False, required: bool = True) -> Element:
    element: Element = {
        "type": "Input.Text",
        "id": name,
        "label": label,
        "isMultiline": multiline,
        "isRequired": required,
        "maxLength": 500,
    }
    if required:
        element["errorMessage"] = f"{label.split(' (')[0]} is required."
    return element


def command_from_action(data: dict[str, Any]) -> str:
    """The command a pressed button runs, with what its form asked for appended."""
    command = str(data.get("command", "")).strip()
    form = form_for(command) if data.get("form") else None
    if form is None:
        return command
    typed = dict(data)
    renamed = data.get(FIELDS)  # a form whose inputs were numbered (_distinct_inputs)
    if isinstance(renamed, dict):
        for name, ident in renamed.items():
            if isinstance(name, str) and isinstance(ident, str):
                typed[name] = data.get(ident, "")
    # Teams hands inputs over as typed: each is one line of single spaces here.
    return filled(form, {name: " ".join(str(value).split()) for name, value in typed.items()})


def _distinct_inputs(card: Card) -> Card:
    """Number the inputs of a second form on one card (`reason-2`), so every id in the card is
    unique, the cards its buttons open included, as Microsoft's validator requires; the form's
    button says which of its fields were renamed."""
    seen: set[str] = set()
    for shown in _show_cards(card):
        renamed: dict[str, str] = {}
        for element in shown["card"]["body"]:
            name = ident = element["id"]
            number = 1
            while ident in seen:
                number += 1
                ident = f"{name}-{number}"
            seen.add(ident)
            if ident != name:
                element["id"] = renamed[name] = ident
        if renamed:
            for button in shown["card"]["actions"]:
                button["data"][FIELDS] = renamed
    return card


def _show_cards(card: Card) -> list[Element]:
    """The Action.ShowCard buttons of a card: its own and its sections', in order."""
    found: list[Element] = []
    for element in card["body"]:
        for item in element.get("items", ()):
            if item["type"] == "ActionSet":
                found.extend(item["actions"])
    found.extend(card.get("actions", ()))
    return [button for button in found if button["type"] == "Action.ShowCard"]


def _section(item: Section, *, request_id: str | None) -> Element:
    items: list[Element] = [text_block(f"**{escape(item.title)}**"), *_lines(item.lines)]
    if item.choices:
        items.append(
            {
                "type": "ActionSet",
                "actions": [action(choice, request_id=request_id) for choice in item.choices],
            }
        )
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def reply_card(
    reply: Reply,
    *,
    with_actions: bool = True,
    request_id: str | None = None,
    refresh_for: tuple[str, ...] = (),
    more_hint: str | None = None,
) -> Card:
    """Render a reply: headline, details, sections with their buttons, then its buttons.

    `request_id` ties the card to a request so it can be redrawn (`refresh`) for other viewers
    as the request changes.
    """
    headline = text_block(
        mark(reply), weight="Bolder", size="Medium", **({} if reply.ok else {"color": "Attention"})
    )
    body: list[Element] = [headline, *_lines(reply.lines)]
    shown = reply.sections[:MAX_SECTIONS]
    body.extend(_section(item, request_id=request_id) for item in shown)
    if hidden := len(reply.sections) - len(shown):
        more = f"…and {hidden} more" + (f" — type `{escape(more_hint)}`" if more_hint else "")
        body.append(text_block(more, isSubtle=True))
    card: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if with_actions and reply.choices:
        card["actions"] = [action(choice, request_id=request_id) for choice in reply.choices]
    if request_id:
        refresh = {"type": "Action.Execute", "verb": REFRESH_VERB, "data": {"request": request_id}}
        card["refresh"] = {"action": refresh, "userIds": list(refresh_for[:60])}
    return _distinct_inputs(card)


def outcome_card(outcome: Reply, card: Reply) -> Card:
    """A decided or expired request: the outcome and who decided first, no buttons left."""
    rendered = reply_card(card, with_actions=False)
    headline = text_block(
        f"**{escape(outcome.text)}**", color="Good" if outcome.ok else "Attention", size="Medium"
    )
    rendered["body"] = [headline, *rendered["body"]]
    return rendered


def attachment(card: Card) -> dict[str, Any]:
    """A card as a message attachment."""
    return {"contentType": CONTENT_TYPE, "content": card}


def summary(reply: Reply) -> str:
    """The plain text Teams shows in notifications and the activity feed."""
    text = unlinked(reply.text)
    return text if len(text) <= 300 else text[:299] + "…"
