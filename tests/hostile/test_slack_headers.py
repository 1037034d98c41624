"""Malformed Slack signature headers and unsigned bodies: a 401, nothing done, nothing logged."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import unquote_plus

import pytest

from bot.app import Leash
from tests.bot.surfaces.conftest import DEV, SECRET, SlackClient
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.slack_signing import sign, slash_command
from tests.hostile.world import rows

FORGED = (
    "x\n2024-05-01 12:00:00 INFO leash.requests request r-12345678 approved by secops@example.com"
)


def _broken(body: bytes, now: int, signature: str) -> dict[str, dict[str, str | None]]:
    """Each way of breaking Slack's headers for `body`: the headers it replaces (None: drops)."""
    return {
        "timestamp not a number": {"X-Slack-Request-Timestamp": "abc"},
        "timestamp a float": {"X-Slack-Request-Timestamp": f"{now}.5"},
        "timestamp of 5,000 digits": {"X-Slack-Request-Timestamp": "9" * 5000},
        "timestamp negative": {"X-Slack-Request-Timestamp": f"-{now}"},
        "timestamp empty": {"X-Slack-Request-Timestamp": ""},
        "timestamp with a plus sign": {"X-Slack-Request-Timestamp": f"+{now}"},
        "timestamp in non-ASCII digits": {
            "X-Slack-Request-Timestamp": "\u0661\u0667" + "\u0660" * 8
        },
        "timestamp missing": {"X-Slack-Request-Timestamp": None},
        "signature missing": {"X-Slack-Signature": None},
        "signature empty": {"X-Slack-Signature": ""},
        "signature without prefix": {"X-Slack-Signature": signature.removeprefix("v0=")},
        "signature with another prefix": {"X-Slack-Signature": "v1=" + signature[3:]},
        "signature too short": {"X-Slack-Signature": signature[:-1]},
        "signature too long": {"X-Slack-Signature": signature + "0"},
        "signature not hex": {"X-Slack-Signature": "v0=" + "g" * 64},
        "signature in upper case": {"X-Slack-Signature": signature.upper()},
        "signature non-ASCII": {"X-Slack-Signature": "v0=" + "é" * 64},
        "both missing": {"X-Slack-Request-Timestamp": None, "X-Slack-Signature": None},
        "signed for another timestamp": {"X-Slack-Request-Timestamp": str(now - 1)},
        "timestamp from the future": {
            "X-Slack-Request-Timestamp": str(now + 3600),
            "X-Slack-Signature": sign(SECRET, body, now + 3600)["X-Slack-Signature"],
        },
    }


CASES = list(_broken(b"", 0, "v0="))


def _headers(body: bytes, case: str) -> dict[str, str]:
    """Slack's headers for `body`, then broken as `case` says."""
    now = int(time.time())
    signed = sign(SECRET, body, now, content_type="application/x-www-form-urlencoded")
    headers: dict[str, str | None] = dict(signed)
    headers |= _broken(body, now, signed["X-Slack-Signature"])[case]
    return {name: value for name, value in headers.items() if value is not None}


@pytest.fixture
async def settled(slack_leash: Leash) -> Leash:
    """Leash on Slack once what start-up sent (unowned alerts) is out: not our concern here."""
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()
    return slack_leash


@pytest.mark.parametrize("case", CASES)
async def test_malformed_signature_headers_are_401_and_change_nothing(
    settled: Leash,
    client: SlackClient,
    slack_api: FakeSlackApi,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    posted_before = len(slack_api.calls_to("chat.postMessage"))
    before = await rows(settled)
    body, _ = slash_command(
        "request support-triage-agent s3-read for 10m because x",
        user_id=DEV,
        response_url=f"{slack_api.response_url_base}headers",
    )
    caplog.set_level(logging.DEBUG)
    response = await client.post("/slack/events", data=body, headers=_headers(body, case))
    assert response.status == 401, (response.status, await response.text())
    assert (await response.json())["error"] == "invalid_signature"
    await asyncio.sleep(0.1)
    assert settled.slack is not None
    await settled.slack.drain()
    assert slack_api.calls_to("response_url") == []
    assert len(slack_api.calls_to("chat.postMessage")) == posted_before
    assert await rows(settled) == before
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    "case", ["signature missing", "signature not hex", "signed for another timestamp"]
)
async def test_an_unsigned_body_leaves_no_trace_of_itself_in_the_log(
    settled: Leash, client: SlackClient, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    body, _ = slash_command(FORGED, user_id=DEV, response_url="https://evil.example/hook")
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    response = await client.post("/slack/events", data=body, headers=_headers(body, case))
    assert response.status == 401
    await asyncio.sleep(0.1)
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    assert f"{len(body)} bytes" in logged  # its size and why it was refused, and nothing else
    fragments = [
        unquote_plus(part.decode()) for field in body.split(b"&") for part in field.split(b"=")
    ]
    fragments += [line for line in FORGED.splitlines() if line]
    fragments += ["approved by secops", "evil.example", body.decode()[:40]]
    assert [f for f in fragments if len(f) >= 6 and f in logged] == []
