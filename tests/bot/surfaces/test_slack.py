"""Slack, end to end: signed requests to the real app, a fake Slack Web API, the moto server."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, GrantState
from bot.inventory import registry
from bot.store.tables import AccessRequest, AuditEvent, Grant
from bot.surfaces.literal import WORD_JOINER
from cloud.sandbox import Sandbox
from tests.bot.surfaces.conftest import (
    ADMIN,
    BACKUP,
    DEV,
    OWNER,
    STRANGER,
    SlackClient,
    block_text,
    buttons,
    is_request_card,
    post,
)
from tests.e2e.helpers import REQUEST_ID, eventually, inline_policy
from tests.fakes.slack_api import FakeSlackApi, SlackCall
from tests.fakes.slack_signing import (
    block_actions,
    block_suggestion,
    event,
    slash_command,
    view_submission,
)


def shown(call_args: dict[str, Any]) -> str:
    """The blocks' text as a person reads it, a mentioned user as `<@U…>`."""
    said = []
    for block in call_args.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            said.append(block["text"]["text"])
        for section in block.get("elements", []) if block["type"] == "rich_text" else []:
            said.append(
                "".join(
                    f"<@{e['user_id']}>" if e["type"] == "user" else e.get("text", "")
                    for e in section["elements"]
                )
            )
    return "\n".join(said)


def response_url(fake: FakeSlackApi, name: str) -> str:
    return f"{fake.response_url_base}{name}"


async def command(client: SlackClient, fake: FakeSlackApi, text: str, *, user: str = DEV) -> str:
    """Run `/leash <text>` and return what Leash answered on the response_url."""
    tag = f"cmd-{time.monotonic_ns()}"
    response = await post(
        client, slash_command(text, user_id=user, response_url=response_url(fake, tag))
    )
    assert response.status == 200
    answered = await fake.wait_for("response_url", where=lambda c: c.args["_path"] == tag)
    return block_text(answered[0].args) + str(answered[0].args.get("text", ""))


async def request_card(
    client: SlackClient, fake: FakeSlackApi, reason: str = "triage"
) -> tuple[str, SlackCall]:
    said = await command(
        client, fake, f"request support-triage-agent s3-read for 10m because {reason}"
    )
    found = REQUEST_ID.search(said)
    assert found, said
    cards = await fake.wait_for(
        "chat.postMessage",
        where=lambda c: found.group(1) in block_text(c.args) and is_request_card(c),
    )
    return found.group(1), cards[0]


def click(
    card: SlackCall, label: str, *, user: str, fake: FakeSlackApi, channel: str = "DOWNERA"
) -> tuple[bytes, str]:
    button = next(b for b in buttons(card.args) if b["text"]["text"] == label)
    return block_actions(
        user_id=user,
        action_id=button["action_id"],
        value=button["value"],
        channel_id=channel,
        message_ts="1700000000.000001",
        response_url=response_url(fake, f"click-{user}-{time.monotonic_ns()}"),
    )


async def test_slash_request_owner_approves_in_dm_grant_applied_and_cards_updated(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi, fresh_sandbox: Sandbox
) -> None:
    request_id, card = await request_card(client, slack_api)
    # The owner was registered by e-mail: Leash looked her up and DMed her user id.
    assert card.args["channel"] == OWNER
    assert slack_api.calls_to("users.lookupByEmail")[0].args["email"] == "alice@example.com"
    assert {b["text"]["text"] for b in buttons(card.args)} == {"Approve", "Deny"}
    assert "Why: alice@example.com owns support-triage-agent" in block_text(card.args)

    response = await post(client, click(card, "Approve", user=OWNER, fake=slack_api))
    assert response.status == 200
    updates = await slack_api.wait_for("chat.update")
    assert "approved by <@UOWNERA>" in shown(updates[0].args)
    assert buttons(updates[0].args) == []
    active = await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "is active on" in block_text(c.args),
    )
    assert {b["text"]["text"] for b in buttons(active[0].args)} == {"Revoke now", "Extend"}
    async with slack_leash.context.sessions() as session:
        grant = (await session.exec(select(Grant).where(col(Grant.request_id) == request_id))).one()
    assert grant.state == GrantState.ACTIVE
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant.id}")

    revoke = await post(
        client, click(active[0], "Revoke now", user=DEV, fake=slack_api, channel="DDEV")
    )
    assert revoke.status == 200
    await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "was revoked by <@UDEV>" in shown(c.args),
    )
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant.id}") is None


async def test_replayed_clicks_and_a_second_owner_make_one_grant(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi, fresh_sandbox: Sandbox
) -> None:
    _request_id, card = await request_card(client, slack_api)
    same_click = click(card, "Approve", user=OWNER, fake=slack_api)
    responses = await asyncio.gather(
        *(post(client, same_click) for _ in range(10)),
        post(client, click(card, "Approve", user=BACKUP, fake=slack_api)),
    )
    assert [r.status for r in responses] == [200] * 11

    async def settled() -> bool:
        """Ten clicks refused and the winner's grant applied (both happen after the acks)."""
        async with slack_leash.context.sessions() as session:
            counts = {
                kind: (
                    await session.exec(
                        select(func.count())
                        .select_from(AuditEvent)
                        .where(col(AuditEvent.event_type) == kind)
                    )
                ).one()
                for kind in ("request.approve_refused", "grant.applied")
            }
            return counts == {"request.approve_refused": 10, "grant.applied": 1}

    assert await eventually(settled, within=10)
    async with slack_leash.context.sessions() as session:
        grants = (await session.exec(select(Grant))).all()
        applied = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "grant.applied")
            )
        ).all()
    assert len(grants) == 1
    assert len(applied) == 1
    names = [n for n in _policy_names(fresh_sandbox) if n.startswith("leash-grant-")]
    assert names == [f"leash-grant-{grants[0].id}"]


def _policy_names(sandbox: Sandbox) -> list[str]:
    iam = sandbox.session().client("iam", endpoint_url=sandbox.endpoint_url)
    return list(iam.list_role_policies(RoleName="support-triage-agent")["PolicyNames"])


async def test_user_text_is_shown_literally(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    # Typed in Slack: Slack sends the user's own < > & escaped; Leash stores them literally.
    _, _typed = await request_card(
        client, slack_api, reason="&lt;!channel&gt; &lt;https://x|Approve&gt; &amp; co"
    )
    # Posted by an agent on the API (or typed in the console): raw text. (For 20 minutes: the
    # same request as one already waiting would be answered with that one.)
    await slack_leash.lifecycle.requests.submit(
        RequestInput(
            identity="support-triage-agent",
            permission_set="s3-read",
            duration=timedelta(minutes=20),
            reason="<!channel> <https://x|Approve> & co",
        ),
        actor=Actor(DEV, ActorKind.USER, "console"),
    )
    cards = await slack_api.wait_for("chat.postMessage", count=2, where=is_request_card)
    async with slack_leash.context.sessions() as session:
        reasons = {r.reason for r in (await session.exec(select(AccessRequest))).all()}
    assert reasons == {"<!channel> <https://x|Approve> & co"}
    for card in cards:
        # In plain_text, which Slack shows as given: no mention, no link, nothing to escape.
        [details] = [b["text"] for b in card.args["blocks"] if "Reason:" in str(b)]
        assert details["type"] == "plain_text"
        assert details["emoji"] is False
        shown = details["text"].replace(WORD_JOINER, "")
        assert "Reason: <!channel> <https://x|Approve> & co" in shown
        assert "https://" not in details["text"]  # reads as typed, cannot link
        assert "mrkdwn" not in block_text(card.args)
        # The notification text is escaped: no mention, no link.
        assert "<" not in card.args["text"]


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "five minutes old", "one byte changed", "not utf-8"],
)
async def test_bad_signatures_are_401_and_do_nothing(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi, tamper: str
) -> None:
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()  # what start-up sent (unowned alerts) is not our concern
    posted_before = len(slack_api.calls_to("chat.postMessage"))
    built = slash_command(
        "request support-triage-agent s3-read for 10m because x",
        user_id=DEV,
        response_url=response_url(slack_api, "bad"),
    )
    if tamper == "wrong secret":
        response = await post(client, built, secret="not-the-secret")
    elif tamper == "five minutes old":
        response = await post(client, built, timestamp=int(time.time()) - 301)
    elif tamper == "one byte changed":
        response = await post(client, built, body=built[0].replace(b"10m", b"11m"))
    else:
        response = await post(client, built, body=built[0] + b"\xff\xfe")
    assert response.status == 401
    await asyncio.sleep(0.2)
    assert slack_api.calls_to("response_url") == []
    assert len(slack_api.calls_to("chat.postMessage")) == posted_before
    async with slack_leash.context.sessions() as session:
        assert (await session.exec(select(AccessRequest))).all() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate now", "is not a Leash command"),
        ("request support-triage-agent s3-read for ever because x", "is not a duration"),
        ("approve r-zzzzzzzz", "There is no request"),
        ("request support-triage-agent s3-read for 9h because x", "longer than the 8h allowed"),
        ("deploy payload-service", "is not a Leash command"),
    ],
    ids=[
        "unknown command",
        "malformed duration",
        "request that does not exist",
        "over tier max",
        "text containing the word payload",
    ],
)
async def test_bad_commands_get_a_clear_answer(
    client: SlackClient, slack_api: FakeSlackApi, text: str, expected: str
) -> None:
    assert expected in await command(client, slack_api, text)


async def test_unknown_button_and_stale_request_get_a_clear_answer(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    stale = block_actions(
        user_id=OWNER,
        action_id="leash:approve:0",
        value="approve r-zzzzzzzz",
        response_url=response_url(slack_api, "stale"),
    )
    unknown = block_actions(
        user_id=OWNER,
        action_id="mystery",
        value="x",
        response_url=response_url(slack_api, "unknown"),
    )
    assert (await post(client, stale)).status == 200
    assert (await post(client, unknown)).status == 200
    answers = await slack_api.wait_for("response_url", count=2)
    by_path = {a.args["_path"]: block_text(a.args) for a in answers}
    assert "There is no request" in by_path["stale"]
    assert "not one Leash knows" in by_path["unknown"]
    async with slack_leash.context.sessions() as session:
        refusals = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "request.approve_refused")
            )
        ).all()
    assert [r.request_id for r in refusals] == ["r-zzzzzzzz"]


async def test_stranger_is_told_why(client: SlackClient, slack_api: FakeSlackApi) -> None:
    _, card = await request_card(client, slack_api)
    await post(client, click(card, "Approve", user=STRANGER, fake=slack_api))
    answer = await slack_api.wait_for(
        "response_url", where=lambda c: "click-USTRANGER" in c.args["_path"]
    )
    assert "You are not an approver of this request" in block_text(answer[0].args)


class SlowProvider:
    """The real provider behind 2 s of injected cloud latency (a port-level wrapper)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.finished = asyncio.Event()

    async def grant(self, identity: Any, spec: Any) -> Any:
        await asyncio.sleep(2)
        result = await self._inner.grant(identity, spec)
        self.finished.set()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("how", ["button", "slash command"])
async def test_ack_comes_before_a_slow_cloud(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi, how: str
) -> None:
    slow = SlowProvider(slack_leash.providers["aws"])
    slack_leash.context.providers = {"aws": slow}
    request_id, card = await request_card(client, slack_api)
    if how == "button":
        response = await post(client, click(card, "Approve", user=OWNER, fake=slack_api))
    else:
        response = await post(
            client,
            slash_command(
                f"approve {request_id}", user_id=OWNER, response_url=response_url(slack_api, "slow")
            ),
        )
    assert response.status == 200
    assert not slow.finished.is_set(), "Slack got its answer only after the cloud call"
    await asyncio.wait_for(slow.finished.wait(), timeout=10)


async def test_request_modal_searches_the_inventory_and_submits(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    await post(
        client, slash_command("request", user_id=DEV, response_url=response_url(slack_api, "m"))
    )
    opened = await slack_api.wait_for("views.open")
    assert opened[0].args["view"]["callback_id"] == "leash_request"
    durations = next(b for b in opened[0].args["view"]["blocks"] if b["block_id"] == "duration")
    assert [o["value"] for o in durations["element"]["options"]] == [
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "8h",
    ]

    options = await post(
        client, block_suggestion(user_id=DEV, action_id="identity_select", value="triage")
    )
    listed = (await options.json())["options"]
    assert [o["text"]["text"].split(" ")[0] for o in listed] == ["support-triage-agent"]
    arn = listed[0]["value"]

    def values(**overrides: str) -> dict[str, dict[str, dict[str, Any]]]:
        given = {
            "identity": arn,
            "permission_set": "s3-read",
            "actions": "",
            "resources": "",
            "duration": "1h",
            "reason": "from the form",
        } | overrides
        selects = {
            "identity": "identity_select",
            "permission_set": "permission_set",
            "duration": "duration",
        }
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for block, value in given.items():
            if block in selects:
                out[block] = {
                    selects[block]: {
                        "type": "static_select",
                        "selected_option": {"value": value} if value else None,
                    }
                }
            else:
                out[block] = {block: {"type": "plain_text_input", "value": value}}
        return out

    bad = await post(
        client,
        view_submission(
            user_id=DEV,
            callback_id="leash_request",
            values=values(duration="8h", permission_set="pass-role"),
        ),
    )
    assert await bad.json() == {
        "response_action": "errors",
        "errors": {"duration": "8h is longer than the 1h allowed for this tier; ask for less."},
    }
    both = await post(
        client,
        view_submission(
            user_id=DEV, callback_id="leash_request", values=values(actions="s3:GetObject")
        ),
    )
    assert (await both.json())["errors"] == {
        "actions": "Choose a permission set or type actions, not both."
    }
    bad_arn = await post(
        client,
        view_submission(
            user_id=DEV, callback_id="leash_request", values=values(resources="not-an-arn")
        ),
    )
    assert "Not a resource ARN" in (await bad_arn.json())["errors"]["resources"]
    async with slack_leash.context.sessions() as session:
        assert (await session.exec(select(AccessRequest))).all() == []

    good = await post(
        client, view_submission(user_id=DEV, callback_id="leash_request", values=values())
    )
    assert good.status == 200
    await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == DEV and "is waiting for approval" in block_text(c.args)
        ),
    )
    async with slack_leash.context.sessions() as session:
        request = (await session.exec(select(AccessRequest))).one()
    assert (request.requester, request.origin, request.reason) == (DEV, "slack", "from the form")


async def test_deny_asks_for_a_reason_and_closes_every_card(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    request_id, card = await request_card(client, slack_api)
    await post(client, click(card, "Deny", user=OWNER, fake=slack_api))
    opened = await slack_api.wait_for("views.open")
    assert opened[0].args["view"]["private_metadata"] == request_id
    empty = await post(
        client,
        view_submission(
            user_id=OWNER,
            callback_id="leash_deny",
            private_metadata=request_id,
            values={"reason": {"reason": {"type": "plain_text_input", "value": " "}}},
        ),
    )
    assert "reason" in (await empty.json())["errors"]
    done = await post(
        client,
        view_submission(
            user_id=OWNER,
            callback_id="leash_deny",
            private_metadata=request_id,
            values={"reason": {"reason": {"type": "plain_text_input", "value": "not today"}}},
        ),
    )
    assert done.status == 200
    update = await slack_api.wait_for("chat.update")
    assert "denied by <@UOWNERA>: not today" in shown(update[0].args)
    await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "not today" in block_text(c.args),
    )


async def test_a_card_still_on_its_way_when_the_request_is_decided_is_closed_too(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    # Slack is slow to take the owner's card; she decides by command before it is posted.
    gate = slack_api.hold_next(
        "chat.postMessage", lambda args: args.get("channel") == OWNER and "Approve" in str(args)
    )
    said = await command(
        client, slack_api, "request support-triage-agent s3-read for 10m because triage"
    )
    found = REQUEST_ID.search(said)
    assert found, said
    request_id = found.group(1)
    denied = await command(client, slack_api, f"deny {request_id} because not today", user=OWNER)
    assert f"Denied {request_id}" in denied
    await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "not today" in block_text(c.args),
    )
    assert not slack_api.calls_to("chat.update")  # no card was recorded yet to close

    gate.set()
    await slack_api.wait_for("chat.postMessage", where=is_request_card)
    card = next(m for m in slack_api.messages if m["channel"] == "DOWNERA" and request_id in str(m))
    update = await slack_api.wait_for("chat.update", where=lambda c: c.args["ts"] == card["ts"])
    assert "denied by <@UOWNERA>: not today" in shown(update[0].args)
    assert buttons(update[0].args) == []


@pytest.mark.parametrize(
    "slack_rules", [{"admins": [ADMIN], "requests": {"decide_within": "1s"}}], indirect=True
)
async def test_expired_request_closes_its_cards(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    request_id, _ = await request_card(client, slack_api)
    await asyncio.sleep(1.1)
    assert await slack_leash.lifecycle.deadlines.expire_due() == 1
    update = await slack_api.wait_for("chat.update")
    assert f"Request {request_id} for support-triage-agent expired" in block_text(update[0].args)
    assert buttons(update[0].args) == []


async def test_app_home_lists_pending_grants_and_owned_agents(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    await request_card(client, slack_api)
    assert (
        await post(client, event({"type": "app_home_opened", "user": OWNER, "tab": "home"}))
    ).status == 200
    published = await slack_api.wait_for("views.publish")
    home = block_text(published[0].args["view"])
    assert published[0].args["user_id"] == OWNER
    assert "support-triage-agent" in home
    assert "Approve" in home


async def test_rate_limited_post_is_retried(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()  # start-up's messages are out of the way
    slack_api.fail_next("chat.postMessage", status=429, retry_after=0)
    await request_card(client, slack_api)
    both = await slack_api.wait_for("chat.postMessage", count=2, where=is_request_card)
    assert both[0].args == both[1].args  # the same card, sent again after Retry-After


async def test_admin_escalation_goes_to_slack_admin(
    slack_leash: Leash, slack_api: FakeSlackApi
) -> None:
    await slack_leash.lifecycle.requests.submit(
        RequestInput(
            identity="support-triage-agent",
            permission_set="pass-role",
            duration=timedelta(minutes=30),
            reason="deploy",
        ),
        actor=Actor(DEV, ActorKind.USER, "slack"),
    )
    cards = await slack_api.wait_for("chat.postMessage", where=is_request_card)
    assert cards[0].args["channel"] == ADMIN
    assert re.search(r"Flagged: iam:PassRole \(escalation\)", block_text(cards[0].args))


@pytest.mark.parametrize(
    "slack_rules",
    [{"requests": {"remind_after": "1s", "escalate_after": "1s"}}],
    indirect=True,
    ids=["fast nudges"],
)
async def test_reminder_then_escalation_and_every_card_closes_on_decision(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    request_id, _ = await request_card(client, slack_api)
    deadlines = slack_leash.lifecycle.deadlines
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    cards = await slack_api.wait_for("chat.postMessage", count=3, where=is_request_card)
    assert [c.args["channel"] for c in cards] == [OWNER, OWNER, BACKUP]
    assert "Reminder: request" in block_text(cards[1].args)
    assert "Escalated to you" in block_text(cards[2].args)

    await post(client, click(cards[2], "Approve", user=BACKUP, fake=slack_api, channel="DOWNERB"))
    updates = await slack_api.wait_for("chat.update", count=3)
    assert {u.args["channel"] for u in updates} == {"DOWNERA", "DOWNERB"}
    assert all("approved by <@UOWNERB>" in shown(u.args) for u in updates)
    assert all(buttons(u.args) == [] for u in updates)
    assert request_id in block_text(updates[0].args)


async def test_card_for_an_owner_not_on_slack_goes_to_the_admins(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    # knowledge-base-agent's owner comes from a tag ("owner-a"), which is no Slack user.
    said = await command(
        client, slack_api, "request knowledge-base-agent s3-read for 10m because x"
    )
    assert REQUEST_ID.search(said)
    cards = await slack_api.wait_for("chat.postMessage", where=is_request_card)
    assert cards[0].args["channel"] == ADMIN


async def test_extend_button_asks_how_long_and_files_an_extension(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    _, card = await request_card(client, slack_api)
    await post(client, click(card, "Approve", user=OWNER, fake=slack_api))
    active = await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == DEV and "is active on" in block_text(c.args),
    )
    await post(client, click(active[0], "Extend", user=DEV, fake=slack_api, channel="DDEV"))
    opened = await slack_api.wait_for("views.open")
    grant_id = opened[0].args["view"]["private_metadata"]
    assert opened[0].args["view"]["callback_id"] == "leash_extend"
    values: dict[str, dict[str, dict[str, Any]]] = {
        "duration": {"duration": {"type": "static_select", "selected_option": {"value": "30m"}}},
        "reason": {"reason": {"type": "plain_text_input", "value": "job is slow"}},
    }
    done = await post(
        client,
        view_submission(
            user_id=DEV, callback_id="leash_extend", private_metadata=grant_id, values=values
        ),
    )
    assert done.status == 200
    extension_cards = await slack_api.wait_for(
        "chat.postMessage", where=lambda c: f"Extends grant {grant_id}" in block_text(c.args)
    )
    assert extension_cards[0].args["channel"] == OWNER


async def test_drain_waits_for_clicks_still_working_after_the_ack(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    slow = SlowProvider(slack_leash.providers["aws"])
    slack_leash.context.providers = {"aws": slow}
    request_id, card = await request_card(client, slack_api)
    assert (await post(client, click(card, "Approve", user=OWNER, fake=slack_api))).status == 200
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()
    assert slow.finished.is_set()
    async with slack_leash.context.sessions() as session:
        grant = (await session.exec(select(Grant).where(col(Grant.request_id) == request_id))).one()
    assert grant.state == GrantState.ACTIVE


@pytest.mark.parametrize(
    "slack_rules",
    [{"ownership": {"security_channel": "C0SEC"}}],
    indirect=True,
    ids=["security channel"],
)
async def test_unowned_agent_alert_with_claim_and_assign_once(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi
) -> None:
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()  # alerts went out at start, paced one per second
    alerts = await slack_api.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == "C0SEC" and "forecast-agent has no owner" in block_text(c.args)
        ),
    )
    assert len(alerts) == 1
    assert [b["text"]["text"] for b in buttons(alerts[0].args)] == ["Claim", "Assign to…"]
    before = len(slack_api.calls_to("chat.postMessage"))
    await slack_leash.discover()  # the next discovery: nothing changed, no new alert
    await slack_leash.slack.drain()
    assert len(slack_api.calls_to("chat.postMessage")) == before

    await post(client, click(alerts[0], "Assign to…", user=ADMIN, fake=slack_api, channel="C0SEC"))
    opened = await slack_api.wait_for("views.open")
    assert opened[0].args["view"]["callback_id"] == "leash_assign"
    values: dict[str, dict[str, dict[str, Any]]] = {
        "owner": {"owner": {"type": "users_select", "selected_user": OWNER}},
        "backup": {"backup": {"type": "users_select", "selected_user": None}},
        "team": {"team": {"type": "plain_text_input", "value": "forecasting"}},
    }
    done = await post(
        client,
        view_submission(
            user_id=ADMIN,
            callback_id="leash_assign",
            private_metadata=opened[0].args["view"]["private_metadata"],
            values=values,
        ),
    )
    assert done.status == 200
    await slack_leash.slack.drain()
    async with slack_leash.context.sessions() as session:
        owned = await registry.owned_by(OWNER, session=session)
    assert [(i.name, o.team) for i, o in owned] == [("forecast-agent", "forecasting")]
