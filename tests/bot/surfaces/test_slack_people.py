"""Slack names people by mentions Leash builds from the user ids Slack signed, never from text.

The approver sees who asks (Slack shows a `user` element as the display name); a `<@U…>` or
`<!channel>` typed in a reason stays text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.app import Leash
from bot.core import notices
from bot.domain.messages import Mention, NoticeKind, Reply
from bot.store.tables import AccessRequest, Identity
from bot.surfaces.slack.render import fallback_text, outcome_blocks, reply_blocks
from tests.bot.surfaces.conftest import DEV, OWNER, SlackClient, post
from tests.bot.surfaces.test_slack import click, request_card
from tests.fakes.slack_api import FakeSlackApi

TYPED = "<@U999> <!channel> <!here> &lt;@U998&gt;"


def elements(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every rich-text element and text object in the blocks."""
    for block in blocks:
        if block.get("text"):
            yield block["text"]
        for element in block.get("elements", []):
            yield from element.get("elements", [element])


def users(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["user_id"] for e in elements(blocks) if e.get("type") == "user"]


def test_a_marked_person_is_a_user_element_and_typed_mentions_stay_text() -> None:
    headline = "UDEV00001 asks to elevate support-triage-agent"
    lines = ("Requester: UDEV00001 (user, via slack)", f"Reason: {TYPED}")
    reply = Reply(
        text=headline,
        lines=lines,
        mentions=(
            Mention("slack:UDEV00001", None, 0, 9),
            Mention("slack:UDEV00001", 0, 11, 20),
        ),
    )
    blocks = reply_blocks(reply)
    assert users(blocks) == ["UDEV00001", "UDEV00001"]
    texts = "".join(e.get("text", "") for e in elements(blocks))
    assert " asks to elevate support-triage-agent" in texts
    assert "UDEV00001" not in texts  # shown as the person, not as the id
    assert f"Reason: {TYPED}" in texts  # literal: no mention, no broadcast
    assert not any(e.get("type") in {"broadcast", "usergroup", "channel"} for e in elements(blocks))
    assert "<@U999>" not in fallback_text(reply)
    assert "&lt;@U999&gt;" in fallback_text(Reply(text=TYPED))


def test_only_slack_user_ids_become_mentions() -> None:
    reply = Reply(
        text="alice@example.com and <@U999> and UABC",
        mentions=(
            Mention("email:alice@example.com", None, 0, 17),  # not a Slack handle
            Mention("slack:<@U999>", None, 22, 29),  # not a Slack user id
        ),
    )
    blocks = reply_blocks(reply)
    assert users(blocks) == []
    assert blocks[0] == {
        "type": "section",
        "text": {"type": "plain_text", "text": reply.text, "emoji": False},
    }


def test_the_outcome_names_the_decider() -> None:
    outcome = Reply(
        text="Request r-1 for x was denied by UOWNERA: <@U999>",
        ok=False,
        mentions=(Mention("slack:UOWNERA", None, 32, 39),),
    )
    (headline, *_) = outcome_blocks(outcome, Reply(text="Request r-1"))
    (section,) = headline["elements"]
    assert section["elements"] == [
        {"type": "text", "text": "Request r-1 for x was denied by ", "style": {"bold": True}},
        {"type": "user", "user_id": "UOWNERA", "style": {"bold": True}},
        {"type": "text", "text": ": <@U999>", "style": {"bold": True}},
    ]


async def test_the_approver_sees_the_requester_as_a_mention_and_the_reason_as_text(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    _, card = await request_card(client, slack_api, reason=TYPED)
    blocks = card.args["blocks"]
    assert users(blocks) == [DEV, DEV]  # "<@UDEV> asks to elevate …" and "Requester: <@UDEV>"
    texts = [e.get("text", "") for e in elements(blocks)]
    assert any(text.startswith(" asks to elevate support-triage-agent") for text in texts)
    # Slack sends a typed mention as `<@U999>`, which Leash reads back as the text "U999";
    # whatever else was typed arrives as the characters typed. All of it stays text.
    assert any("\nReason: U999 <!channel> <!here> <@U998>\n" in text for text in texts)
    assert "U999" not in json.dumps(users(blocks))

    response = await post(client, click(card, "Approve", user=OWNER, fake=slack_api))
    assert response.status == 200
    (update,) = await slack_api.wait_for("chat.update")
    outcome = update.args["blocks"][0]["elements"][0]["elements"]
    assert outcome[0]["text"].endswith(" was approved by ")
    assert outcome[1] == {"type": "user", "user_id": OWNER, "style": {"bold": True}}


def _request(requester: str, origin: str) -> tuple[AccessRequest, Identity]:
    now = datetime.now(UTC)
    identity = Identity(
        id="i-1",
        provider="aws",
        account="123456789012",
        native_id="arn:aws:iam::123456789012:role/support-triage-agent",
        name="support-triage-agent",
        kind="role",
        discovered_at=now,
    )
    request = AccessRequest(
        id="r-1",
        identity_id=identity.id,
        requester=requester,
        requester_kind="user",
        origin=origin,
        actions=["s3:GetObject"],
        duration_seconds=600,
        reason="UOTHER1 <@U999> <!channel>",  # typed: never a mention
        tier="break_glass",
        approvals_required=2,
        created_at=now,
        decide_by=now + timedelta(minutes=20),
        decided_by="UOWNERA",
        state="approved",
    )
    return request, identity


def spans(reply: Reply) -> list[str]:
    """What each mention marks, read back from the text it marks."""
    return [
        (reply.text if m.line is None else reply.lines[m.line])[m.start : m.end]
        for m in reply.mentions
    ]


def test_notices_mark_the_people_they_name_and_only_them() -> None:
    request, identity = _request("UDEV00001", "slack")
    card = notices.approval_needed(request, identity, ("UOWNERA",), NoticeKind.APPROVAL_NEEDED)
    assert spans(card.reply) == ["UDEV00001", "UDEV00001"]
    assert {m.handle for m in card.reply.mentions} == {"slack:UDEV00001"}
    assert spans(notices.decided(request, identity, ()).reply) == ["UOWNERA"]
    waiting = notices.waiting_card(request, identity, ["UOWNERA", "alice@example.com", "UADMIN"])
    assert spans(waiting) == ["UOWNERA", "UADMIN", "UDEV00001"]  # e-mail: no Slack mention
    progress = notices.approval_progress(request, identity, ["UOWNERA", "UADMIN"], ())
    assert spans(progress.reply) == ["UOWNERA", "UADMIN"]
    assert users(reply_blocks(progress.reply)) == ["UOWNERA", "UADMIN"]

    # A requester who came through the console is never a Slack mention, whatever their name.
    console, _ = _request("U999", "console")
    typed = notices.approval_needed(console, identity, ("UOWNERA",), NoticeKind.APPROVAL_NEEDED)
    assert typed.reply.mentions == ()
    assert users(reply_blocks(typed.reply)) == []
