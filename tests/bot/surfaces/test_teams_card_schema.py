"""Every kind of Adaptive Card Leash sends on Teams is valid for the version it declares.

The cards are drawn from what a real Leash says (its notices and its replies to commands), the
way the Teams surface draws them, and checked against Microsoft's 1.5 schema (tests/schemas/).
The Teams tests also check every card the fake Bot Connector receives (teams_world.py).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import Choice, ChoiceStyle, NoticeKind, Reply, Section
from bot.domain.states import ActorKind
from bot.surfaces.teams import render
from bot.surfaces.teams.forms import request_form
from bot.surfaces.teams.outbound import CARD_KINDS, MORE_HINTS, closed_card
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.notifier import RecordingNotifier
from tests.schemas.validation import CARD_VERSION, card_problems, missing_choice_styles

DEV = Actor("dev", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
ADMIN = Actor("secops", ActorKind.USER, "console")
REQUEST = "request support-triage-agent s3-read for 10m because checking tickets"
HOSTILE = "*bold* [link](https://evil.example) <at>x</at> `code`\n- item\n1. one _x_ ~y~ \\"
COMMANDS = (
    "help",
    "help request",
    "identities",
    "grants all",
    "requests",
    "whoami",
    "owns owner-a",
    "owner show support-triage-agent",
    "unused data-pipeline-agent",
    "guardrail show data-pipeline-agent",
    "not-a-command at all",
    f"request support-triage-agent s3-read for 10m because {HOSTILE}",
)
EXPECTED_NOTICES = {
    NoticeKind.APPROVAL_NEEDED,
    NoticeKind.DECIDED,
    NoticeKind.GRANT_ACTIVE,
    NoticeKind.REVOKED,
    NoticeKind.UNOWNED,
    NoticeKind.SCAN_FINDINGS,
    NoticeKind.DIGEST,
}

Card = dict[str, Any]


def problems_of(cards: dict[str, Card]) -> dict[str, list[str]]:
    return {name: found for name, card in cards.items() if (found := card_problems(card))}


def request_id(reply: Reply) -> str:
    found = re.search(r"\br-[a-z0-9]{8}\b", reply.text)
    assert found, reply.text
    return found.group(0)


async def test_every_notice_and_reply_of_a_working_day_is_a_valid_card(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    handler = leash.handler
    cards: dict[str, Card] = {}
    first = await handler.handle_text(REQUEST, actor=DEV)
    approved = await handler.handle_text(f"approve {request_id(first)} fine", actor=OWNER_A)
    assert approved.ok, approved.text
    grant = re.search(r"\bg-[a-z0-9]{8}\b", approved.text)
    assert grant, approved.text
    second = await handler.handle_text(REQUEST, actor=DEV)
    await handler.handle_text(f"deny {request_id(second)} because {HOSTILE}", actor=OWNER_A)
    third = await handler.handle_text(REQUEST, actor=DEV)  # left open
    await handler.handle_text(f"revoke {grant.group(0)}", actor=DEV)
    await handler.handle_text("scan now", actor=ADMIN)
    await leash.lifecycle.least_privilege.digests.send("ml-platform")
    for number, text in enumerate(COMMANDS):
        cards[f"reply {number}: {text[:30]}"] = render.reply_card(
            await handler.handle_text(text, actor=DEV)
        )

    for number, notice in enumerate(notifier.notices):
        tied = notice.kind in CARD_KINDS and notice.request_id is not None
        cards[f"notice {number}: {notice.kind}"] = render.reply_card(
            notice.reply,
            request_id=notice.request_id if tied else None,
            refresh_for=("29:1owner-a",) if tied else (),
            more_hint=MORE_HINTS.get(notice.kind),
        )
    for found in (first, second, third):
        current = await closed_card(leash.lifecycle, request_id(found))
        assert current is not None
        cards[f"card of {request_id(found)}"] = current

    assert {notice.kind for notice in notifier.notices} >= EXPECTED_NOTICES
    assert len(cards) > len(COMMANDS) + len(EXPECTED_NOTICES)
    assert problems_of(cards) == {}


async def test_the_request_form_is_valid_empty_and_redrawn(leash: Leash) -> None:
    rows = await leash.lifecycle.queries.search(None, limit=500)
    identities = [(f"{i.name} ({i.account})", i.native_id) for i, _ in rows]
    assert identities
    rules = leash.lifecycle.rules
    no_sets = rules.model_copy(update={"permission_sets": {}})
    typed = {"identity": identities[0][1], "actions": HOSTILE, "duration": "2h", "reason": "x"}
    cards = {
        "empty": request_form(rules, identities),
        "redrawn": request_form(rules, identities, values=typed, error=f"No: {HOSTILE}"),
        "many identities": request_form(rules, identities * 60),
        "no permission sets": request_form(no_sets, identities),
        "no identities": request_form(rules, []),
    }
    assert problems_of(cards) == {}
    identity = cards["empty"]["body"][1]
    assert identity["style"] == "filtered"  # 1.5: why Leash declares 1.5
    assert cards["empty"]["version"] == CARD_VERSION
    # Nothing to choose from: the identity is typed, and no empty permission-set list is shown.
    assert cards["no identities"]["body"][1]["type"] == "Input.Text"
    ids = [element.get("id") for element in cards["no permission sets"]["body"]]
    assert "permission_set" not in ids
    assert "permission_set" in [element.get("id") for element in cards["empty"]["body"]]


def test_every_button_kind_section_and_overflow_is_valid() -> None:
    commands = (
        ("Approve", "approve r-aaaaaaaa"),
        ("Deny", "deny r-aaaaaaaa"),  # asks why on the card
        ("Extend", "extend g-aaaaaaaa"),  # asks how long and why
        ("Assign to…", "owner assign forecast-agent"),  # asks who
        ("Revoke now", "revoke g-aaaaaaaa"),
    )
    styles = list(ChoiceStyle)
    buttons = tuple(
        Choice(label, command, styles[n % len(styles)])
        for n, (label, command) in enumerate(commands)
    )
    sections = tuple(
        Section(f"agent-{n} {HOSTILE}", (f"Unused: s3:Get{n}", HOSTILE), buttons[n % 2 :])
        for n in range(render.MAX_SECTIONS + 3)
    )
    reply = Reply(HOSTILE, (f"Label: {HOSTILE}", HOSTILE), buttons, True, sections)
    refused = Reply("You may not.", ("Why: not yours",), ok=False)
    cards = {
        "everything": render.reply_card(reply, request_id="r-aaaaaaaa", refresh_for=("29:1",)),
        "overflow with hint": render.reply_card(reply, more_hint="unused"),
        "refusal": render.reply_card(refused),
        "closed": render.outcome_card(Reply("Approved by owner-a"), reply),
        "closed after refusal": render.outcome_card(refused, reply),
    }
    assert problems_of(cards) == {}
    assert [render.action(b)["type"] for b in buttons].count("Action.ShowCard") == 3


def test_a_second_form_on_a_card_reads_its_own_numbered_inputs() -> None:
    sections = tuple(
        Section(f"grant {n}", choices=(Choice("Extend", f"extend g-aaaaaaa{n}"),)) for n in (1, 2)
    )
    card = render.reply_card(Reply("Your grants", sections=sections))
    assert card_problems(card) == []
    forms = [item["actions"][0]["card"] for item in (s["items"][-1] for s in card["body"][1:])]
    assert [[i["id"] for i in form["body"]] for form in forms] == [
        ["duration", "reason"],
        ["duration-2", "reason-2"],
    ]
    # Teams merges every input of the card and the cards above it into the pressed button's data.
    typed = {"duration": "5m", "reason": "first", "duration-2": "1h", "reason-2": "second one"}
    pressed = [{**form["actions"][0]["data"], **typed} for form in forms]
    assert [render.command_from_action(data) for data in pressed] == [
        "extend g-aaaaaaa1 5m because first",
        "extend g-aaaaaaa2 1h because second one",
    ]
    # A card posted before the inputs were numbered still works.
    old = {"command": "extend g-aaaaaaa2", "form": "extend", "duration": "2h", "reason": "old"}
    assert render.command_from_action(old) == "extend g-aaaaaaa2 2h because old"


def valid_card() -> Card:
    return render.reply_card(
        Reply("Hello", choices=(Choice("Deny", "deny r-aaaaaaaa", ChoiceStyle.DANGER),))
    )


def deny_input(card: Card) -> Card:
    shown: Card = card["actions"][0]["card"]["body"][0]
    return shown


def older(card: Card) -> None:
    card["version"] = "1.4"


def unknown_property(card: Card) -> None:
    card["body"][0]["colour"] = "Good"


def newer_feature(card: Card) -> None:
    card["body"].append(
        {"type": "Input.ChoiceSet", "id": "who", "choices.data": {"type": "Data.Query"}}
    )


def no_error_message(card: Card) -> None:
    deny_input(card).pop("errorMessage", None)
    deny_input(card)["isRequired"] = True


def no_label(card: Card) -> None:
    deny_input(card)["isRequired"] = True
    deny_input(card)["errorMessage"] = "Say why."
    deny_input(card).pop("label")


def same_id_twice(card: Card) -> None:
    shown = card["actions"][0]["card"]["body"]
    shown.append(copy.deepcopy(shown[0]))


def same_id_in_two_forms(card: Card) -> None:
    """Two Deny buttons' cards each with input `reason`: Microsoft's validator counts ids
    across the whole card, the cards its buttons open included."""
    card["actions"].append(copy.deepcopy(card["actions"][0]))


def too_many_buttons(card: Card) -> None:
    card["actions"] = [render.action(Choice(f"Do {n}", f"revoke g-aaaaaaa{n}")) for n in range(6)]


def no_choices(card: Card) -> None:
    card["body"].append({"type": "Input.ChoiceSet", "id": "who", "choices": []})


def bad_style(card: Card) -> None:
    card["actions"][0]["style"] = "danger"  # Slack's word; Teams says destructive


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (older, "'1.4' is not '1.5'"),
        (unknown_property, "$.body[0]"),
        (newer_feature, "$.body[1]"),
        (no_error_message, "has no errorMessage"),
        (no_label, "has no label"),
        (same_id_twice, "is used twice"),
        (same_id_in_two_forms, "is used twice"),
        (too_many_buttons, "6 actions, more than 5"),
        (no_choices, "has no choices"),
        (bad_style, "$.actions[0]"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_the_check_refuses_what_teams_and_microsofts_validator_would(
    spoil: Any, expected: str
) -> None:
    card = valid_card()
    assert card_problems(card) == []
    spoil(card)
    found = card_problems(card)
    assert any(expected in problem for problem in found), found


async def test_the_fake_connector_keeps_every_invalid_card_it_is_sent() -> None:
    spoiled = valid_card()
    older(spoiled)
    async with FakeBotConnector(card_check=card_problems) as fake, ClientSession() as http:
        for card in (valid_card(), spoiled):
            activity = {"type": "message", "attachments": [render.attachment(card)]}
            url = f"{fake.service_url}v3/conversations/a:1/activities"
            async with http.post(url, json=activity) as response:
                assert response.status == 201
    assert fake.checked_cards == 2
    assert [(kind, problems) for kind, problems, _ in fake.invalid_cards] == [
        ("send", ["$.version: '1.4' is not '1.5'"])
    ]


def test_the_compiled_1_5_schema_still_lacks_only_the_filtered_style() -> None:
    """Microsoft's typed schema dates `filtered` 1.5; the compiled 1.5.0 file leaves it out, so
    tests/schemas/validation.py adds it. When Microsoft fixes the file this fails: drop that."""
    assert missing_choice_styles() == ["filtered"]
