"""Build and sign request bodies exactly as Slack sends them to an app's HTTP endpoint."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

API_APP_ID = "A0001"
VERIFICATION_TOKEN = "verification-token"  # legacy field Slack still sends; bolt ignores it

_event_ids = itertools.count(1)


def sign(
    secret: str,
    body: bytes,
    timestamp: int | None = None,
    *,
    content_type: str | None = None,
) -> dict[str, str]:
    """Return the headers Slack sends with body: timestamp, v0 signature, and content type."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def slash_command(
    text: str,
    *,
    user_id: str,
    command: str = "/leash",
    channel_id: str = "C0001",
    response_url: str,
    trigger_id: str = "trig-1",
    team_id: str = "T0001",
    user_name: str | None = None,
) -> tuple[bytes, str]:
    """Build a slash command invocation (form fields, no payload wrapper)."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": "fake",
        "channel_id": channel_id,
        "channel_name": _channel_name(channel_id),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode(), FORM


def block_actions(
    *,
    user_id: str,
    action_id: str,
    value: str,
    block_id: str = "b1",
    channel_id: str | None = "D0001",
    message_ts: str | None = None,
    response_url: str | None = None,
    trigger_id: str = "trig-2",
    view: dict[str, Any] | None = None,
    container_type: str | None = None,
    message: dict[str, Any] | None = None,
    team_id: str = "T0001",
) -> tuple[bytes, str]:
    """Build a button click; container_type defaults to "view" when view is given, else "message".

    A message container carries `message` (given, or a minimal one at message_ts) and
    `response_url`; a view container (modal or App Home) carries `view` and no response_url.
    """
    kind = container_type or ("view" if view is not None else "message")
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if kind == "view":
        view_id = (view or {}).get("id", "V1")
        payload["container"] = {"type": "view", "view_id": view_id}
    else:
        ts = message_ts or (message or {}).get("ts") or "1700000000.000001"
        payload["container"] = {
            "type": kind,
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        payload["message"] = message or {
            "type": "message",
            "user": "UBOT",
            "bot_id": "B0001",
            "text": "",
            "ts": ts,
            "blocks": [],
        }
        payload["state"] = {"values": {}}
    if channel_id is not None:
        payload["channel"] = {"id": channel_id, "name": _channel_name(channel_id)}
    if view is not None:
        payload["view"] = _full_view(view, team_id=team_id)
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": action_id, "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
    ]
    return _interactive(payload)


def view_submission(
    *,
    user_id: str,
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    private_metadata: str = "",
    view_id: str = "V1",
    trigger_id: str = "trig-3",
    team_id: str = "T0001",
) -> tuple[bytes, str]:
    """Build a modal submission; values is state.values: block_id -> action_id -> element state."""
    view = {
        "id": view_id,
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "state": {"values": values},
    }
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": _full_view(view, team_id=team_id),
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }
    return _interactive(payload)


def block_suggestion(
    *,
    user_id: str,
    action_id: str,
    value: str,
    block_id: str = "identity",
    callback_id: str = "leash_request",
    view_id: str = "V1",
    team_id: str = "T0001",
) -> tuple[bytes, str]:
    """Build an external_select options request from a modal; value is what the user typed."""
    view = {"id": view_id, "callback_id": callback_id}
    payload: dict[str, Any] = {
        "type": "block_suggestion",
        "user": _user(user_id, team_id),
        "container": {"type": "view", "view_id": view_id},
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": _full_view(view, team_id=team_id),
    }
    return _interactive(payload)


def event(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    bot_user_id: str = "UBOT",
) -> tuple[bytes, str]:
    """Wrap an Events API event in its event_callback envelope (JSON)."""
    now = int(time.time())
    inner = {"event_ts": f"{now}.000100", **event}
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": inner,
        "type": "event_callback",
        "event_id": f"Ev{next(_event_ids):08d}",
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{team_id}",
    }
    return json.dumps(envelope).encode(), JSON


def url_verification(challenge: str) -> tuple[bytes, str]:
    """Build the handshake Slack sends when the Events request URL is saved."""
    body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return json.dumps(body).encode(), JSON


def _interactive(payload: dict[str, Any]) -> tuple[bytes, str]:
    # Interactivity payloads arrive as one form field, `payload`, holding JSON.
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM


def _user(user_id: str, team_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def _team(team_id: str) -> dict[str, str]:
    return {"id": team_id, "domain": "fake"}


def _channel_name(channel_id: str) -> str:
    return "directmessage" if channel_id.startswith("D") else "general"


def _full_view(view: dict[str, Any], *, team_id: str) -> dict[str, Any]:
    """Complete a partial view with the fields Slack always sends."""
    view_id = view.get("id", "V1")
    return {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": [],
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": "1700000000.h4sh",
        "title": {"type": "plain_text", "text": "Leash"},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": None,
        "submit": None,
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": API_APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": "B0001",
        **view,
    }
