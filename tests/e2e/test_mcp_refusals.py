"""What MCP refuses: a bad, revoked or other identity's token (every tool, over stdio and over
/mcp), and tool inputs that break their schema or carry control characters. Nothing changes;
what an identity was refused is audited."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import ClientSession, MCPError

from bot.app import Leash
from bot.domain.states import Outcome
from cloud.sandbox import Sandbox
from tests.e2e.mcp_world import (
    INITIALIZE,
    OWNER,
    ask,
    base_url,
    data,
    events,
    over_http,
    over_stdio,
    text,
)
from tests.e2e.mcp_world import token as issue
from tests.hostile.world import cloud_writes, rows

AGENT = "support-triage-agent"
OTHER = "knowledge-base-agent"  # also owner-a's
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("request_access", {"permission_set": "s3-read", "duration": "10m", "reason": "probe"}),
    ("wait_for_decision", {"request_id": "r-aaaaaaaa", "wait_seconds": 0}),
    ("list_my_access", {}),
    ("release_access", {"grant_id": "g-aaaaaaaa"}),
    ("extend_access", {"grant_id": "g-aaaaaaaa", "duration": "5m", "reason": "probe"}),
]
BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "request_access",
        {"permission_set": "s3-read", "duration": "10m", "reason": "ok\u202eevil"},
        "request_access: reason contains a control or text-direction character (U+202E)",
    ),
    (
        "request_access",
        {"permission_set": "s3-read", "duration": "10m", "reason": "ring\x07"},
        "request_access: reason contains a control or text-direction character (U+0007)",
    ),
    (
        "request_access",
        {"permission_set": "s3-read", "actions": ["s3:GetObject"], "duration": "1h", "reason": "x"},
        "request_access: give either permission_set or actions",
    ),
    (
        "request_access",
        {"permission_set": "s3-read", "duration": "10m", "reason": "x", "identity": OTHER},
        "request_access: identity: Extra inputs are not permitted",
    ),
    (
        "request_access",
        {"actions": ["s3:GetObject\x1b[31m"], "duration": "10m", "reason": "x"},
        "request_access: actions contains a control",
    ),
    ("request_access", {"permission_set": "s3-read", "reason": "x"}, "duration: Field required"),
    (
        "wait_for_decision",
        {"request_id": "r-aaaaaaaa", "wait_seconds": 600},
        "wait_seconds: Input should be less than or equal to 60",
    ),
    ("release_access", {"grant_id": "../../etc"}, "grant_id: String should match pattern"),
    ("extend_access", {"grant_id": "g-aaaaaaaa", "reason": "x"}, "duration: Field required"),
    ("no_such_tool", {}, "There is no tool 'no_such_tool'"),
]


async def _every_tool_refused(mcp: ClientSession, sentence: str) -> None:
    for name, arguments in CALLS:
        result = await mcp.call_tool(name, arguments)
        assert result.is_error, (name, text(result))
        assert sentence in text(result), (name, text(result))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_and_revoked_tokens_are_refused_over_stdio(
    leash: Leash, base_url: str, fresh_sandbox: Sandbox
) -> None:
    before, mark = await rows(leash), len(fresh_sandbox.moto.calls())
    async with over_stdio(base_url, "lsh_not-a-token") as mcp:
        await _every_tool_refused(mcp, "The token is unknown or revoked.")
    bearer = await issue(leash, AGENT)
    await leash.lifecycle.tokens.revoke(AGENT, actor=OWNER)
    async with over_stdio(base_url, bearer) as mcp:
        await _every_tool_refused(mcp, "The token is unknown or revoked.")
    assert (await rows(leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox, since=mark) == []


async def test_bad_and_revoked_tokens_are_refused_at_mcp(leash: Leash, base_url: str) -> None:
    before = await rows(leash)
    bearer = await issue(leash, AGENT)
    async with httpx2.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer lsh_not-a-token"}):
            answer = await http.post(f"{base_url}/mcp", json=INITIALIZE, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"] == "unauthorized"
        # Revoked while a session is open: its next call is refused, before any tool runs.
        async with over_http(base_url, bearer) as mcp:
            assert not (await mcp.call_tool("list_my_access", {})).is_error
            await leash.lifecycle.tokens.revoke(AGENT, actor=OWNER)
            with pytest.raises(MCPError):  # the HTTP 401, as the SDK's client reports it
                await mcp.call_tool("request_access", CALLS[0][1])
    assert (await rows(leash)).changes == before.changes


async def test_another_identitys_token_touches_nothing_of_ours(
    leash: Leash, base_url: str, fresh_sandbox: Sandbox
) -> None:
    async with over_http(base_url, await issue(leash, AGENT)) as mine:
        asked = await ask(mine, "ticket 9")
    await leash.lifecycle.approve(asked["id"], actor=OWNER)
    before, mark = await rows(leash), len(fresh_sandbox.moto.calls())
    async with over_http(base_url, await issue(leash, OTHER)) as other:
        waited = await other.call_tool(
            "wait_for_decision", {"request_id": asked["id"], "wait_seconds": 0}
        )
        assert waited.is_error
        assert f"There is no request '{asked['id']}' for this identity." in text(waited)
        _, theirs = await leash.lifecycle.queries.own_request(
            asked["id"], identity_id=asked["identity_id"]
        )
        assert theirs is not None
        released = await other.call_tool("release_access", {"grant_id": theirs.id})
        assert "An agent token can release only its own grants." in text(released)
        extended = await other.call_tool(
            "extend_access", {"grant_id": theirs.id, "duration": "5m", "reason": "mine now"}
        )
        assert "An agent token can extend only its own grants." in text(extended)
        assert data(await other.call_tool("list_my_access", {}))["grants"] == []
    assert (await rows(leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox, since=mark) == []
    refused = await events(leash, grant_id=theirs.id, outcome=Outcome.FAILURE)
    assert {(e.event_type, e.origin) for e in refused} == {
        ("grant.revoke_refused", "mcp (leash-test-agent 1.0)"),
        ("request.refused", "mcp (leash-test-agent 1.0)"),
    }


@pytest.mark.parametrize(("tool", "arguments", "sentence"), BAD_INPUTS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_tool_input_is_refused_with_a_clear_error(
    leash: Leash, base_url: str, tool: str, arguments: dict[str, Any], sentence: str
) -> None:
    before = await rows(leash)
    async with over_http(base_url, await issue(leash, AGENT)) as mcp:
        result = await mcp.call_tool(tool, arguments)
    assert result.is_error
    assert sentence in text(result)
    assert (await rows(leash)).changes == before.changes


__all__ = ["base_url"]  # the fixture, imported


async def test_domain_refusals_come_back_as_the_chat_surfaces_say_them(
    leash: Leash, base_url: str
) -> None:
    """Unknown permission set, over the tier's maximum, quarantined identity: tool errors with
    Leash's own sentences, and each refusal is in the audit trail."""
    async with over_http(base_url, await issue(leash, AGENT)) as mcp:
        unknown = await mcp.call_tool(
            "request_access", {"permission_set": "root", "duration": "10m", "reason": "x"}
        )
        assert unknown.is_error
        assert "There is no permission set 'root' (known: " in text(unknown)
        too_long = await mcp.call_tool(
            "request_access", {"permission_set": "s3-read", "duration": "30d", "reason": "x"}
        )
        assert too_long.is_error
        assert "30d is longer than the 8h allowed for this tier" in text(too_long)
        await leash.lifecycle.least_privilege.quarantine(AGENT, actor=OWNER, reason="drill")
        quarantined = await mcp.call_tool(
            "request_access", {"permission_set": "s3-read", "duration": "10m", "reason": "x"}
        )
        assert quarantined.is_error
        assert f"{AGENT} is quarantined: no access can be granted" in text(quarantined)
    refused = await events(leash, event_type="request.refused")
    assert [e.origin for e in refused] == ["mcp (leash-test-agent 1.0)"] * 3


async def test_a_session_answers_only_the_identity_that_opened_it(
    leash: Leash, base_url: str
) -> None:
    """Another identity's token cannot ride an open MCP session (the session id is not a
    credential): the SDK binds the session to the identity Leash authenticated."""
    mine, theirs = await issue(leash, AGENT), await issue(leash, OTHER)
    accept = {"Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    call["params"] = {"name": "list_my_access", "arguments": {}}
    async with httpx2.AsyncClient(base_url=base_url, headers=accept) as http:
        opened = await http.post(
            "/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {mine}"}
        )
        assert opened.status_code == 200, opened.text
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        ridden = await http.post(
            "/mcp", json=call, headers={"Authorization": f"Bearer {theirs}", **session}
        )
        assert ridden.status_code == 404
        assert "Session not found" in ridden.text
