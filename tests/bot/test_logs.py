"""Logs: JSON or text lines naming the request, grant, identity and HTTP request they are about."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot import logs
from bot.app import Leash
from bot.config import ConfigError, load_settings
from bot.domain import log_context
from bot.domain.actors import Actor
from bot.domain.states import LIVE_GRANT_STATES, ActorKind, GrantState
from bot.http.server import REQUEST_ID_HEADER, build_web_app
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, eventually, grant

DEV = Actor("dev", ActorKind.USER, "console")
# Long enough to be applied before it expires on a loaded machine (a 2 s grant was not).
GRANT_SECONDS = 5
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
OWNER_B = Actor("owner-b", ActorKind.USER, "console")


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as JSON (a line that is not fails the test)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.fixture
def probe() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing JSON to a buffer."""
    buffer = io.StringIO()
    logger = logging.getLogger("leash.test-logs")
    handler = logs.handler("json", buffer)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything Leash logs at INFO and above, as `leash serve` with LEASH_LOG_FORMAT=json."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure(level="info", fmt="json", stream=buffer)
    yield buffer
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_a_json_line_has_time_level_logger_message_and_only_the_ids_bound(
    probe: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = probe
    logger.warning("before %s", "anything")
    with (
        log_context.http_request("lb-77"),
        log_context.about(request_id="r-abc", identity="arn:aws:iam::1:role/a"),
    ):
        log_context.add(grant_id="g-def")
        logger.info("inside")
    logger.info("after")

    before, inside, after = _lines(buffer)
    assert before == {
        "timestamp": before["timestamp"],
        "level": "WARNING",
        "logger": "leash.test-logs",
        "message": "before anything",
    }
    assert datetime.fromisoformat(before["timestamp"]).utcoffset() == timedelta(0)
    assert inside["request_id"] == "r-abc"
    assert inside["grant_id"] == "g-def"
    assert inside["identity"] == "arn:aws:iam::1:role/a"
    assert inside["http_request_id"] == "lb-77"
    assert set(after) == {"timestamp", "level", "logger", "message"}


def test_an_exception_stays_inside_its_json_line(
    probe: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = probe
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("it failed")
    (line,) = _lines(buffer)
    assert line["level"] == "ERROR"
    assert "RuntimeError: boom" in line["exc_info"]


def test_a_text_line_names_the_bound_ids_after_the_message() -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("leash.test-logs.text")
    handler = logs.handler("text", buffer)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("plain")
        with log_context.about(request_id="r-123", grant_id="g-456"):
            logger.warning("bound")
    finally:
        logger.removeHandler(handler)
    plain, bound = buffer.getvalue().splitlines()
    assert plain.endswith(" WARNING leash.test-logs.text plain")
    assert bound.endswith(" WARNING leash.test-logs.text bound [request=r-123 grant=g-456]")


async def test_work_ids_stay_with_their_work() -> None:
    with log_context.about(grant_id="g-outer", request_id="r-outer"):
        with log_context.about(grant_id="g-inner"):
            # The outer request is another piece of work: not this grant's.
            assert log_context.current() == {"grant_id": "g-inner"}
            log_context.add(request_id="r-inner")
            assert log_context.current() == {"grant_id": "g-inner", "request_id": "r-inner"}
        assert log_context.current() == {"grant_id": "g-outer", "request_id": "r-outer"}
        assert log_context.detached(log_context.current) == {}
        child = asyncio.create_task(asyncio.sleep(0, log_context.current()))
    assert await child == {"grant_id": "g-outer", "request_id": "r-outer"}
    assert log_context.current() == {}
    log_context.add(grant_id="g-stray")  # outside any work: ignored, it would never be undone
    assert log_context.current() == {}


def test_log_format_is_read_from_leash_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format == "text"
    monkeypatch.setenv("LEASH_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("LEASH_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LEASH_LOG_FORMAT"):
        load_settings()


async def _approved(leash: Leash, identity: str, owner: Actor) -> tuple[str, str]:
    """Ask as dev and approve as the owner: (request id, grant id)."""
    asked = await leash.handler.handle_text(
        f"request {identity} s3-read for {GRANT_SECONDS}s because checking logs", actor=DEV
    )
    request_match = REQUEST_ID.search(asked.text)
    assert request_match, asked.text
    approved = await leash.handler.handle_text(f"approve {request_match[1]}", actor=owner)
    grant_match = GRANT_ID.search(approved.text)
    assert grant_match, approved.text
    return request_match[1], grant_match[1]


async def test_each_grants_lines_carry_its_ids_through_apply_and_the_timers_revoke(
    leash: Leash, captured: io.StringIO
) -> None:
    await leash.runner.start(leash.lifecycle)
    first = await _approved(leash, "support-triage-agent", OWNER_A)
    second = await _approved(leash, "code-review-agent", OWNER_B)

    async def states() -> list[str]:
        return [(await grant(leash, grant_id)).state for _, grant_id in (first, second)]

    async def both_ended() -> bool:
        return all(state not in LIVE_GRANT_STATES for state in await states())

    async def both_revokes_logged() -> bool:  # each is logged just after its commit
        written = captured.getvalue()
        return all(f"grant {grant_id} revoked from" in written for _, grant_id in (first, second))

    # Generous bounds: on a loaded machine the timers run late, not wrong.
    assert await eventually(both_ended, within=60)
    assert await states() == [GrantState.REVOKED, GrantState.REVOKED]
    assert await eventually(both_revokes_logged, within=10)
    lines = _lines(captured)
    for request_id, grant_id in (first, second):
        about_grant = [line for line in lines if grant_id in line["message"]]
        applied = next(line for line in about_grant if " applied to " in line["message"])
        revoked = next(line for line in about_grant if " revoked from " in line["message"])
        for line in (applied, revoked):
            assert line["grant_id"] == grant_id
            assert line["request_id"] == request_id
            assert line["identity"].startswith("arn:aws:iam::")
            assert line["logger"] == "leash.grants"
        assert "(expired, by leash)" in revoked["message"]
        approved = next(line for line in lines if f"{request_id} approved" in line["message"])
        assert approved["grant_id"] == grant_id
        # No line about this grant is labelled with the other grant's ids (timers copy context).
        assert all(line.get("grant_id") in (None, grant_id) for line in about_grant)
    grant_ids = {line["grant_id"] for line in lines if "grant_id" in line}
    assert grant_ids == {first[1], second[1]}
    assert all("http_request_id" not in line for line in lines)  # nothing came over HTTP


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[TestClient[Request, Application]]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_lines_logged_while_answering_http_carry_its_request_id(
    leash: Leash, client: TestClient[Request, Application], captured: io.StringIO
) -> None:
    issued = await leash.lifecycle.tokens.issue("support-triage-agent", actor=OWNER_A)
    headers = {"Authorization": f"Bearer {issued.token}"}
    created = await client.post(
        "/api/v1/requests",
        json={"permission_set": "s3-read", "duration": "10m", "reason": "summarise ticket 42"},
        headers=headers | {REQUEST_ID_HEADER: "agent-create-1"},
    )
    assert created.status == 201, await created.text()
    request_id = (await created.json())["id"]
    result = await leash.lifecycle.approve(request_id, actor=OWNER_A)
    assert result.grant is not None
    grant_id = result.grant.id

    released = await client.post(
        f"/api/v1/grants/{grant_id}/release",
        headers=headers | {REQUEST_ID_HEADER: "agent-release-9"},
    )
    assert released.status == 200
    assert released.headers[REQUEST_ID_HEADER] == "agent-release-9"
    lines = _lines(captured)
    applied = next(line for line in lines if f"grant {grant_id} applied" in line["message"])
    revoked = next(line for line in lines if f"grant {grant_id} revoked" in line["message"])
    assert "http_request_id" not in applied  # approved in chat, not over HTTP
    assert revoked["http_request_id"] == "agent-release-9"
    assert (revoked["grant_id"], revoked["request_id"]) == (grant_id, request_id)


# JSON mode as an operator's log pipeline sees a run: only JSON, sentences with ids as fields
# (never Python object dumps), libraries only at WARNING, every access line named.

DUMPS = ("Notice(", "<NoticeKind", "Reply(", "Actor(", "object at 0x")


def _objects(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each one JSON object (a line that is not fails the test)."""
    parsed = _lines(buffer)
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


async def test_a_run_logs_only_json_lines_with_no_object_dumps(
    captured: io.StringIO, leash: Leash, client: TestClient[Request, Application]
) -> None:
    asked = await leash.handler.handle_text(
        "request support-triage-agent s3-read for 10m because reading logs", actor=DEV
    )
    found = REQUEST_ID.search(asked.text)
    assert found, asked.text
    await leash.handler.handle_text(f"approve {found[1]}", actor=OWNER_A)
    assert (await client.get("/api/v1/no-such-thing")).status in (401, 404)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)

    lines = _objects(captured)
    assert len(lines) > 5
    chatty = [
        line
        for line in lines
        if line["logger"].split(".")[0] in logs.LIBRARIES and line["level"] in ("DEBUG", "INFO")
    ]
    assert chatty == []
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line)
        dumped = [dump for dump in DUMPS if dump in json.dumps(line)]
        assert dumped == [], line
    # The notices the log notifier writes: a sentence, with the kind and ids as fields.
    notices = [line for line in lines if line["logger"] == "leash.app" and "notice" in line]
    approval = next(line for line in notices if line["notice"] == "approval_needed")
    assert approval["request_id"] == found[1]
    assert approval["recipients"] == ["owner-a"]
    assert approval["message"].startswith("approval_needed notice for owner-a: ")
    assert any(line["notice"] == "grant_active" and "grant_id" in line for line in notices)
    warned = next(line for line in lines if line["logger"] == "py.warnings")
    assert "a library's deprecation" in warned["message"]


@pytest.mark.parametrize("name", ["azure.core.pipeline.policies.http_logging_policy", "botocore"])
def test_library_info_is_dropped_and_their_warnings_kept(captured: io.StringIO, name: str) -> None:
    library = logging.getLogger(name)
    library.info("Request URL: 'https://management.azure.com/'; Authorization: REDACTED")
    library.warning("the library retried")
    (line,) = _objects(captured)
    assert (line["logger"], line["level"], line["message"]) == (
        name,
        "WARNING",
        "the library retried",
    )


def test_libraries_speak_at_their_own_level_and_never_below_leashs(
    captured: io.StringIO,
) -> None:
    library = logging.getLogger("botocore.credentials")
    logs.configure(level="info", fmt="json", stream=captured, libraries="info")
    library.info("Found credentials in environment variables.")
    logs.configure(level="warning", fmt="json", stream=captured, libraries="info")
    library.info("not shown: Leash itself logs warnings only")
    logs.configure(level="info", fmt="json", stream=captured)
    library.info("not shown: libraries back at WARNING")
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.configure(level="loud", fmt="text", stream=io.StringIO())
    library.warning("still JSON, still here: the bad call changed nothing")

    first, last = _objects(captured)
    assert first["message"] == "Found credentials in environment variables."
    assert last["message"].startswith("still JSON")


def test_the_libraries_level_is_read_from_leash_log_libraries_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().log_libraries_level == "WARNING"
    monkeypatch.setenv("LEASH_LOG_LIBRARIES_LEVEL", "info")
    assert load_settings().log_libraries_level == "INFO"
    monkeypatch.setenv("LEASH_LOG_LIBRARIES_LEVEL", "chatty")
    with pytest.raises(ConfigError, match="LEASH_LOG_LIBRARIES_LEVEL"):
        load_settings()


async def test_every_access_line_names_its_http_request(
    captured: io.StringIO, client: TestClient[Request, Application]
) -> None:
    given = await client.post(
        "/api/v1/requests", json={}, headers={REQUEST_ID_HEADER: "lb-7f3e-given"}
    )
    made = await client.post("/api/v1/requests", json={})
    probe = await client.get("/healthz", headers={REQUEST_ID_HEADER: "probe-1"})
    assert probe.status == 200
    generated = made.headers[REQUEST_ID_HEADER]

    access = [line for line in _objects(captured) if line["logger"] == "leash.access"]
    by_id = {line["http_request_id"]: line for line in access}
    assert all("http_request_id" in line for line in access)
    assert set(by_id) == {"lb-7f3e-given", generated}  # probes log at DEBUG: not here
    line = by_id["lb-7f3e-given"]
    assert given.status == 401  # no agent token
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/v1/requests", 401)
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("POST /api/v1/requests answered 401 in ")
    assert not any(line["logger"] == "aiohttp.access" for line in _objects(captured))
