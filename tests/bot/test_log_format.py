"""LEASH_LOG_FORMAT=json as an operator's log pipeline sees a run: every line is JSON, messages
are sentences with ids as fields (never Python object dumps), libraries speak only at WARNING,
and every access line names its HTTP request."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot import logs
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.http.server import REQUEST_ID_HEADER, build_web_app
from tests.e2e.helpers import REQUEST_ID

Client = TestClient[Request, Application]
DEV = Actor("dev", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
DUMPS = ("Notice(", "<NoticeKind", "Reply(", "Actor(", "object at 0x")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above, as `leash serve` with LEASH_LOG_FORMAT=json."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure(level="info", fmt="json", stream=buffer)
    yield buffer
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[Client]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object (a line that is not fails the test)."""
    parsed = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


async def test_a_run_logs_only_json_lines_with_no_object_dumps(
    captured: io.StringIO, leash: Leash, client: Client
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

    lines = _lines(captured)
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
    (line,) = _lines(captured)
    assert (line["logger"], line["level"], line["message"]) == (
        name,
        "WARNING",
        "the library retried",
    )


def test_libraries_can_be_let_through_by_configure() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        logs.configure(level="info", fmt="json", stream=buffer, libraries="info")
        logging.getLogger("botocore.credentials").info("Found credentials")
    finally:
        logs.configure(level=level, fmt="json", stream=io.StringIO())  # libraries back to WARNING
        for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
    (line,) = [json.loads(text) for text in buffer.getvalue().splitlines()]
    assert line["logger"] == "botocore.credentials"
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING


async def test_every_access_line_names_its_http_request(
    captured: io.StringIO, client: Client
) -> None:
    given = await client.post(
        "/api/v1/requests", json={}, headers={REQUEST_ID_HEADER: "lb-7f3e-given"}
    )
    made = await client.post("/api/v1/requests", json={})
    probe = await client.get("/healthz", headers={REQUEST_ID_HEADER: "probe-1"})
    assert probe.status == 200
    generated = made.headers[REQUEST_ID_HEADER]

    access = [line for line in _lines(captured) if line["logger"] == "leash.access"]
    by_id = {line["http_request_id"]: line for line in access}
    assert all("http_request_id" in line for line in access)
    assert set(by_id) == {"lb-7f3e-given", generated}  # probes log at DEBUG: not here
    line = by_id["lb-7f3e-given"]
    assert given.status == 401  # no agent token
    assert (line["method"], line["path"], line["status"]) == ("POST", "/api/v1/requests", 401)
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("POST /api/v1/requests answered 401 in ")
    assert not any(line["logger"] == "aiohttp.access" for line in _lines(captured))
