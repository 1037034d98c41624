"""The Slack fakes behave like Slack for slack-sdk's client and slack-bolt's router."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes import slack_signing as slack
from tests.fakes.slack_api import FakeSlackApi, SlackUpload

SECRET = "signing-secret"
TOKEN = "xoxb-test"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as api:
        yield api


@pytest.fixture
def client(fake: FakeSlackApi) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=fake.base_url)


# -- Web API ---------------------------------------------------------------------------------


async def test_post_message_to_a_user_lands_in_the_dm(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(channel="U123", text="hi", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="C9", text="again")

    assert first["channel"] == "D123"
    assert first["message"]["blocks"] == BLOCKS
    assert float(second["ts"]) > float(first["ts"])
    [call, _] = fake.calls_to("chat.postMessage")
    assert call.args == {"channel": "U123", "text": "hi", "blocks": BLOCKS}
    assert call.token == TOKEN


async def test_post_message_without_channel_is_an_api_error(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="", text="hi")
    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "channel_not_found"


async def test_form_encoded_json_fields_are_decoded(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    await client.api_call(
        "chat.postMessage", data={"channel": "C1", "text": "t", "blocks": json.dumps(BLOCKS)}
    )

    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == BLOCKS


async def test_chat_update_is_recorded(fake: FakeSlackApi, client: AsyncWebClient) -> None:
    answer = await client.chat_update(channel="D1", ts="1.000001", text="done", blocks=BLOCKS)

    assert (answer["channel"], answer["ts"], answer["text"]) == ("D1", "1.000001", "done")
    [call] = await fake.wait_for("chat.update")
    assert call.args["blocks"] == BLOCKS


async def test_conversations_open_and_views(fake: FakeSlackApi, client: AsyncWebClient) -> None:
    opened = await client.conversations_open(users="U7")
    view = {"type": "modal", "callback_id": "leash_request", "title": {"type": "plain_text"}}
    modal = await client.views_open(trigger_id="trig-1", view=view)
    updated = await client.views_update(view_id=modal["view"]["id"], view=view)

    assert opened["channel"]["id"] == "D7"
    assert modal["view"]["callback_id"] == "leash_request"
    assert updated["view"]["id"] == modal["view"]["id"]
    assert updated["view"]["hash"] != modal["view"]["hash"]
    assert fake.calls_to("views.open")[0].args["view"] == view


async def test_users_lookup(fake: FakeSlackApi, client: AsyncWebClient) -> None:
    fake.add_user("U42", email="ada@example.com", name="ada")

    found = await client.users_lookupByEmail(email="Ada@example.com")
    info = await client.users_info(user="U42")
    with pytest.raises(SlackApiError) as missing:
        await client.users_lookupByEmail(email="nobody@example.com")
    with pytest.raises(SlackApiError) as unknown:
        await client.users_info(user="U404")

    assert found["user"]["id"] == "U42"
    assert info["user"]["profile"]["email"] == "ada@example.com"
    assert missing.value.response["error"] == "users_not_found"
    assert unknown.value.response["error"] == "user_not_found"


async def test_rate_limit_is_retried_by_the_retry_handler(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    # The handler sleeps Retry-After + random() seconds; 0 keeps the test under a second.
    fake.fail_next("chat.postMessage", retry_after=0)

    answer = await client.chat_postMessage(channel="C1", text="hi")

    assert answer["ok"] is True
    assert len(fake.calls_to("chat.postMessage")) == 2


async def test_rate_limit_without_retry_handler_raises(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="hi")

    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"


async def test_wait_for_times_out_listing_calls(fake: FakeSlackApi, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C1", text="hi")

    with pytest.raises(AssertionError, match=r"(?s)chat\.update.*chat\.postMessage"):
        await fake.wait_for("chat.update", timeout=0.05)


async def test_files_upload_v2_shares_the_bytes_in_a_thread(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    content = bytes(range(256)) * 40  # binary, with every byte value
    posted = await client.chat_postMessage(channel="C1", text="digest")

    answer = await client.files_upload_v2(
        channel="C1",
        thread_ts=posted["ts"],
        file=content,
        filename="trend.png",
        title="Agents per week",
    )

    assert answer["file"]["title"] == "Agents per week"
    [uploaded] = fake.calls_to("upload")
    assert uploaded.args["file_id"] == answer["file"]["id"]
    [asked] = fake.calls_to("files.getUploadURLExternal")
    assert (asked.args["filename"], asked.args["length"]) == ("trend.png", str(len(content)))
    assert [c.method for c in fake.calls[-3:]] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert fake.uploads == [
        SlackUpload("C1", posted["ts"], "trend.png", "Agents per week", content)
    ]


async def test_two_uploads_get_their_own_ids_and_bytes(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    first = await client.files_upload_v2(channel="C1", file=b"one", filename="a.txt", title="A")
    second = await client.files_upload_v2(channel="C2", file=b"two", filename="b.txt")

    assert first["file"]["id"] != second["file"]["id"]
    assert [(u.channel, u.thread_ts, u.title, u.content) for u in fake.uploads] == [
        ("C1", None, "A", b"one"),
        ("C2", None, "b.txt", b"two"),
    ]


async def test_completing_an_upload_whose_bytes_never_arrived_fails(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    issued = await client.files_getUploadURLExternal(filename="x.png", length=3)

    with pytest.raises(SlackApiError) as never_sent:
        await client.files_completeUploadExternal(files=[{"id": issued["file_id"]}])
    with pytest.raises(SlackApiError) as unknown:
        await client.files_completeUploadExternal(files=[{"id": "FNOPE"}])

    assert never_sent.value.response["error"] == unknown.value.response["error"] == "file_not_found"
    assert fake.uploads == []


async def test_a_failing_upload_url_fails_files_upload_v2(
    fake: FakeSlackApi, client: AsyncWebClient
) -> None:
    fake.fail_next("upload", status=500)

    with pytest.raises(SlackRequestError, match="status: 500"):
        await client.files_upload_v2(channel="C1", file=b"png", filename="t.png", title="t")

    assert fake.calls_to("files.completeUploadExternal") == []
    assert fake.uploads == []


# -- Bolt routing ----------------------------------------------------------------------------


def _app(fake: FakeSlackApi, ran: list[str], *, process_before_response: bool) -> AsyncApp:
    app = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=fake.base_url),
        process_before_response=process_before_response,
    )

    @app.command("/leash")
    async def command(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        ran.append(f"command:{command['text']}")
        await respond(text="on it")

    @app.action(re.compile("leash"))
    async def action(ack: AsyncAck, action: dict[str, Any]) -> None:
        await ack()
        ran.append(f"action:{action['value']}")

    @app.view("leash_request")
    async def view(ack: AsyncAck, view: dict[str, Any]) -> None:
        await ack()
        ran.append(f"view:{view['state']['values']['reason']['reason_input']['value']}")

    @app.options("identity_select")
    async def options(ack: AsyncAck, options: dict[str, Any]) -> None:
        ran.append(f"options:{options['value']}")
        await ack(options=[{"text": {"type": "plain_text", "text": "Admin"}, "value": "admin"}])

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        ran.append(f"event:{event['user']}")
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": []})

    return app


async def _dispatch(
    app: AsyncApp, built: tuple[bytes, str], *, secret: str = SECRET, timestamp: int | None = None
) -> BoltResponse:
    body, content_type = built
    headers: dict[str, str | Sequence[str]] = dict(
        slack.sign(secret, body, timestamp, content_type=content_type)
    )
    return await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))


def _cases(fake: FakeSlackApi) -> dict[str, tuple[tuple[bytes, str], str]]:
    reply_to = fake.response_url_base + "commands/1"
    return {
        "command": (
            slack.slash_command("request admin", user_id="U1", response_url=reply_to),
            "command:request admin",
        ),
        "action": (
            slack.block_actions(user_id="U1", action_id="leash_approve", value="req-1"),
            "action:req-1",
        ),
        "view": (
            slack.view_submission(
                user_id="U1",
                callback_id="leash_request",
                values={"reason": {"reason_input": {"type": "plain_text_input", "value": "fix"}}},
            ),
            "view:fix",
        ),
        "options": (
            slack.block_suggestion(user_id="U1", action_id="identity_select", value="adm"),
            "options:adm",
        ),
        "event": (
            slack.event({"type": "app_home_opened", "user": "U1", "tab": "home"}),
            "event:U1",
        ),
    }


@pytest.mark.parametrize("case", ["command", "action", "view", "options", "event"])
async def test_bolt_routes_each_payload_to_its_listener(fake: FakeSlackApi, case: str) -> None:
    ran: list[str] = []
    app = _app(fake, ran, process_before_response=True)
    built, expected = _cases(fake)[case]

    response = await _dispatch(app, built)

    assert response.status == 200
    assert ran == [expected]
    assert len(fake.calls_to("auth.test")) == 1


async def test_options_ack_answers_with_the_options_json(fake: FakeSlackApi) -> None:
    app = _app(fake, [], process_before_response=True)
    built, _ = _cases(fake)["options"]

    response = await _dispatch(app, built)

    assert response.headers["content-type"] == ["application/json;charset=utf-8"]
    assert json.loads(response.body) == {
        "options": [{"text": {"type": "plain_text", "text": "Admin"}, "value": "admin"}]
    }


async def test_respond_posts_to_the_response_url(fake: FakeSlackApi) -> None:
    app = _app(fake, [], process_before_response=True)
    built, _ = _cases(fake)["command"]

    await _dispatch(app, built)

    [reply] = await fake.wait_for("response_url")
    assert reply.args == {"text": "on it", "_path": "commands/1"}


async def test_listeners_run_after_ack_in_default_mode(fake: FakeSlackApi) -> None:
    ran: list[str] = []
    app = _app(fake, ran, process_before_response=False)
    built, _ = _cases(fake)["event"]

    response = await _dispatch(app, built)

    # Events are acked before the listener runs; its Web API calls show up later.
    assert response.status == 200
    [publish] = await fake.wait_for("views.publish")
    assert publish.args["user_id"] == "U1"
    # The per-request client adds the request's team_id to every call.
    assert publish.args["team_id"] == "T0001"


async def test_url_verification_echoes_the_challenge(fake: FakeSlackApi) -> None:
    app = _app(fake, [], process_before_response=True)

    response = await _dispatch(app, slack.url_verification("chal-1"))

    assert response.status == 200
    assert json.loads(response.body) == {"challenge": "chal-1"}


@pytest.mark.parametrize(
    ("secret", "age"),
    [pytest.param("wrong", 0, id="bad-signature"), pytest.param(SECRET, 600, id="stale")],
)
async def test_unverified_requests_are_rejected(fake: FakeSlackApi, secret: str, age: int) -> None:
    ran: list[str] = []
    app = _app(fake, ran, process_before_response=True)
    built, _ = _cases(fake)["action"]

    response = await _dispatch(app, built, secret=secret, timestamp=int(time.time()) - age)

    assert response.status == 401
    assert ran == []
