"""Text people type reaches Slack and Teams as literal text: no mentions, links or formatting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot.app import Leash
from bot.surfaces.literal import WORD_JOINER
from tests.bot.surfaces.chat_drivers import card_words
from tests.bot.surfaces.conftest import DEV, OWNER, SlackClient, buttons, post
from tests.bot.surfaces.teams_world import DEV as TEAMS_DEV
from tests.bot.surfaces.teams_world import OWNER as TEAMS_OWNER
from tests.bot.surfaces.teams_world import TeamsClient, actions_of, install, say
from tests.bot.surfaces.teams_world import post as teams_post
from tests.e2e.helpers import REQUEST_ID
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi, SlackCall
from tests.fakes.slack_signing import block_actions, slash_command, view_submission
from tests.fakes.teams_activities import card_action

HOSTILE = "<!channel> *APPROVED BY SECOPS* <https://evil.example|click> https://evil.example"
TYPED = "triage _now_ ~please~ `x` https://evil.example/card"  # a request's reason, as typed


def _texts(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Slack text object and rich-text element under `node`, with its kind."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text", "text") and "text" in node:
            yield str(node["type"]), node
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _shown(text: str) -> str:
    """What a reader sees: the word joiners that stop auto-linking are invisible."""
    return text.replace(WORD_JOINER, "")


def assert_literal_on_slack(call: SlackCall) -> None:
    """The hostile reason is in `call` only where Slack shows text exactly as given."""
    # The fallback (notifications, screen readers): escaped, so no mention or link, and sent
    # with mrkdwn off, so its asterisks stay asterisks.
    fallback = str(call.args["text"])
    assert call.args["mrkdwn"] is False
    assert "<" not in fallback
    assert not re.search(r"https?://", fallback), fallback
    assert _shown(fallback).replace("&lt;", "<").replace("&gt;", ">").endswith(HOSTILE)
    # The blocks: only in plain_text objects (shortcodes off) or rich-text elements, never in
    # mrkdwn, and with its URLs unable to link.
    texts = list(_texts(call.args["blocks"]))
    holding = [node for _, node in texts if "APPROVED BY SECOPS" in node["text"]]
    assert holding, texts
    for node in holding:
        assert node["type"] in ("plain_text", "text"), node
        assert node.get("emoji", False) is False
        assert HOSTILE in _shown(node["text"])
        assert not re.search(r"https?://", node["text"]), node
    mrkdwn = " ".join(node["text"] for kind, node in texts if kind == "mrkdwn")
    assert not re.search(r"channel|APPROVED|evil", mrkdwn), mrkdwn


async def test_a_deny_reason_reaches_the_requester_on_slack_as_literal_text(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    said = await post(
        client,
        slash_command(
            f"request support-triage-agent s3-read for 10m because {TYPED}",
            user_id=DEV,
            response_url=f"{slack_api.response_url_base}request",
        ),
    )
    assert said.status == 200
    answer = await slack_api.wait_for("response_url", where=lambda c: c.args["_path"] == "request")
    request_id = REQUEST_ID.search(str(answer[0].args["text"]))
    assert request_id
    card = (
        await slack_api.wait_for(
            "chat.postMessage",
            where=lambda c: c.args["channel"] == OWNER and bool(buttons(c.args)),
        )
    )[0]
    # The request's own reason, on the owner's card, is literal too.
    reasons = [node for _, node in _texts(card.args["blocks"]) if "Reason:" in node["text"]]
    assert [(n["type"], n["emoji"]) for n in reasons] == [("plain_text", False)]
    assert f"Reason: {TYPED}" in _shown(reasons[0]["text"])
    deny = next(b for b in buttons(card.args) if b["text"]["text"] == "Deny")
    await post(
        client,
        block_actions(
            user_id=OWNER,
            action_id=deny["action_id"],
            value=deny["value"],
            response_url=f"{slack_api.response_url_base}deny",
        ),
    )
    await slack_api.wait_for("views.open")
    denied = await post(
        client,
        view_submission(
            user_id=OWNER,
            callback_id="leash_deny",
            private_metadata=request_id.group(1),
            values={"reason": {"reason": {"type": "plain_text_input", "value": HOSTILE}}},
        ),
    )
    assert denied.status == 200
    told = await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "denied" in str(c.args["text"]),
    )
    assert_literal_on_slack(told[0])
    updated = await slack_api.wait_for("chat.update")
    assert_literal_on_slack(updated[0])


async def test_a_deny_reason_reaches_the_requester_on_teams_as_literal_text(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, TEAMS_OWNER, TEAMS_DEV)
    said = await say(
        teams_client, connector, TEAMS_DEV, "request support-triage-agent s3-read for 10m because x"
    )
    found = REQUEST_ID.search(card_words(said.cards[0]))
    assert found
    request_id = found.group(1)
    # The owner presses Deny on the card and types the reason into its form.
    pressed = card_action(
        "deny",
        {"command": f"deny {request_id}", "request": request_id, "form": "deny", "reason": HOSTILE},
        user=TEAMS_OWNER,
        service_url=connector.service_url,
        conversation_id=TEAMS_OWNER.personal_conversation_id,
    )
    assert (await teams_post(teams_client, pressed)).status == 200
    told = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == TEAMS_DEV.personal_conversation_id
            and "denied" in card_words(c.cards[0])
        ),
    )
    card = told[0].cards[0]
    assert actions_of(card) == []
    texts = [
        *(str(e["text"]) for e in _card_elements(card) if e.get("type") == "TextBlock"),
        *(str(f["value"]) for e in _card_elements(card) for f in e.get("facts") or []),
    ]
    holding = [text for text in texts if "APPROVED BY SECOPS" in text]
    assert holding, texts
    for text in holding:
        # Every character card markdown acts on is backslash-escaped; no URL can link.
        assert "\\<!channel>" in text
        assert "\\*APPROVED BY SECOPS\\*" in text
        assert "\\<https:" in text
        assert not re.search(r"(?<!\\)[*<\[]|https?://", text), text
    assert HOSTILE in _shown(card_words(card))
    assert not re.search(r"https?://", str(told[0].body.get("summary", "")))


def _card_elements(card: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every element of a card's body, containers' items included."""
    for element in card.get("body") or []:
        yield element
        yield from _card_elements({"body": element.get("items") or []})
