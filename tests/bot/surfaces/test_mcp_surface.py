"""The MCP surface's own rules: the client label owners see, what the tools tell a language
model, the approved answer's propagation advice, and that `leash serve` does not import the SDK."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Leash
from bot.http.server import build_web_app
from bot.surfaces.mcp import answers, tools
from bot.surfaces.mcp.origin import client_label, origin_for, origin_from_headers
from tests.e2e.leash_process import ROOT
from tests.e2e.mcp_world import events
from tests.e2e.mcp_world import token as issue


@pytest.mark.parametrize(
    ("name", "version", "label"),
    [
        ("claude-code", "1.0.43", "claude-code 1.0.43"),
        ("Cursor", None, "Cursor"),
        ("agent\nAPPROVED by admin", "1", None),  # a line break: not shown at all
        ("agent\u202e", "1", None),
        ("", "1", None),
        (42, "1", None),
        ("a" * 40, "9.9", "a" * 25 + "~"),
        ("openai-agents", "0.2.1rc1", "openai-agents 0.2.1rc1"),
        ("Approved by secops", None, None),  # words that read like Leash's own on the card
        ("Approved by owner-a", "1", None),
        ("Approved", "by secops", None),
        ("secops:approved", None, None),
        ("https://evil.example/ok", None, None),
        ("agent", "1.0 (approved)", None),
        ("~agent", "1", None),
    ],
)
def test_client_label_is_short_printable_text(name: object, version: object, label: str) -> None:
    assert client_label(name, version) == label
    assert len(origin_for(label)) <= 32  # AccessRequest.origin and AuditEvent.origin


@pytest.mark.parametrize(
    ("headers", "origin"),
    [
        ({}, "api"),
        ({"X-Leash-Surface": "slack", "X-Leash-Client": "x 1"}, "api"),  # only mcp is known
        ({"X-Leash-Surface": "mcp"}, "mcp"),
        ({"X-Leash-Surface": "MCP", "X-Leash-Client": "langgraph 0.4"}, "mcp (langgraph 0.4)"),
        ({"X-Leash-Surface": "mcp", "X-Leash-Client": "x\x1b[31m"}, "mcp"),
        ({"X-Leash-Surface": "mcp", "X-Leash-Client": "Approved by owner-a"}, "mcp"),
        ({"X-Leash-Surface": "mcp", "X-Leash-Client": "secops:approved 1"}, "mcp"),
        ({"X-Leash-Surface": "mcp", "X-Leash-Client": "a" * 25 + "~"}, "mcp (" + "a" * 25 + "~)"),
    ],
)
def test_an_api_call_claims_the_mcp_surface_only_as_words(
    headers: dict[str, str], origin: str
) -> None:
    assert origin_from_headers(headers, default="api") == origin


async def test_the_agent_api_records_the_surface_it_was_told(leash: Leash) -> None:
    bearer = await issue(leash, "support-triage-agent")
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as client:
        made = []
        for duration, extra in (
            ("10m", {}),
            ("15m", {"X-Leash-Surface": "mcp", "X-Leash-Client": "leash-test 2"}),
        ):
            # Two different requests: the same one again would be answered with the first.
            body = {"permission_set": "s3-read", "duration": duration, "reason": "origin check"}
            headers = {"Authorization": f"Bearer {bearer}", **extra}
            answer = await client.post("/api/v1/requests", json=body, headers=headers)
            assert answer.status == 201, await answer.text()
            made.append((await answer.json())["id"])
    origins = [
        [e.origin for e in await events(leash, event_type="request.created", request_id=made_id)]
        for made_id in made
    ]
    assert origins == [["api"], ["mcp (leash-test 2)"]]


def test_tools_tell_the_model_when_and_how_to_use_them() -> None:
    described = {tool.name: tool.description for tool in tools.TOOLS}
    assert "only" in described["request_access"]
    assert "what the task needs" in described["request_access"]
    assert "reason" in described["request_access"]
    assert "AccessDenied" in described["wait_for_decision"]
    assert "retry" in described["wait_for_decision"]
    assert "done" in described["release_access"]
    for tool in tools.TOOLS:
        schema = tool.input_schema()
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
        assert all("description" in field for name, field in schema["properties"].items()), (
            tool.name
        )


@pytest.mark.parametrize(
    ("cloud", "seconds", "words"),
    [
        ("aws", 10, "~10 s"),
        ("gcp", 120, "2 minutes"),
        ("azure", 600, "10 minutes"),
        (None, 120, "take a moment"),
    ],
)
def test_an_approved_answer_says_when_the_grant_works(
    cloud: str | None, seconds: int, words: str
) -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    request = {
        "id": "r-aaaaaaaa",
        "state": "approved",
        "decided_by": "owner-a",
        "grant": {"id": "g-bbbbbbbb", "state": "active", "expires_at": "2026-12-07T13:00:00+00:00"},
    }
    answer = answers.decided(request, cloud=cloud, now=now)
    assert answer.data["retry_access_denied_for_seconds"] == seconds
    assert words in answer.text
    assert "AccessDenied" in answer.text
    assert "release_access" in answer.text


def test_leash_serve_does_not_import_the_mcp_sdk() -> None:
    """The SDK (and starlette, which it brings) load only when MCP is first used."""
    code = (
        "import sys, bot.cli.main, bot.http.server\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('mcp', 'mcp_types', 'starlette', 'httpx2', 'uvicorn'))\n"
        "print(bad)\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_ingress_does_not_route_mcp() -> None:
    """Agents reach /mcp inside the cluster, as they reach /api/v1: the example Ingress
    (manifests/k8s/ingress.yaml) publishes only Slack's and Teams' endpoints."""
    from bot.http.mcp_route import PATH
    from tests.test_k8s_manifests import _of_kind, _reaches

    (ingress,) = _of_kind("Ingress")
    entries = [entry for rule in ingress["spec"]["rules"] for entry in rule["http"]["paths"]]
    assert entries
    assert not [e["path"] for e in entries if _reaches(e["path"], e["pathType"], PATH)]


@pytest.mark.parametrize(
    ("grant_state", "words"),
    [("applying", "call wait_for_decision again"), ("failed", "could not write it")],
)
def test_an_approval_whose_grant_is_not_active_says_what_to_do(
    grant_state: str, words: str
) -> None:
    request = {
        "id": "r-aaaaaaaa",
        "state": "approved",
        "decided_by": "owner-a",
        "grant": {"id": "g-bbbbbbbb", "state": grant_state, "expires_at": "2026-12-07T13:00:00"},
    }
    answer = answers.decided(request, cloud="aws", now=datetime(2026, 12, 7, tzinfo=UTC))
    assert words in answer.text.lower()
    assert "effective_by" not in answer.data
