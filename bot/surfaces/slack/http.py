"""`POST /slack/events` on Leash's own aiohttp app, dispatched to the bolt AsyncApp."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.surfaces.slack.surface import SlackSurface


def slack_route(surface: SlackSurface) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler; bolt verifies the signature (and its age) before anything runs."""

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        # A body that is not UTF-8 cannot carry a valid signature; decoding it leniently lets
        # bolt's verification answer 401 instead of the server failing.
        body = raw.decode("utf-8", errors="replace")
        problem = _unreadable(body, request.content_type)
        if problem is not None:
            return web.json_response({"error": "bad_request", "message": problem}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        _repair_slash_command(bolt_request, body)
        return await to_aiohttp_response(await surface.app.async_dispatch(bolt_request))

    return handle


def _unreadable(body: str, content_type: str) -> str | None:
    """Say why bolt could not read this body: it parses before it verifies, and would fail."""
    try:
        # The same choices as bolt's `parse_body`.
        if content_type == "application/json" or body.startswith("{"):
            parsed = json.loads(body) if body else {}
        elif "payload" in body:
            payload = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
            parsed = {} if payload is None else json.loads(payload)
        else:
            return None
    except (ValueError, RecursionError):
        return "The body is not valid JSON, or it is nested too deeply."
    if not isinstance(parsed, dict):
        return "The body is not a Slack request."
    return None


def _repair_slash_command(bolt_request: AsyncBoltRequest, body: str) -> None:
    """Parse a slash command whose text contains the word "payload" (bolt 1.30 drops it)."""
    if bolt_request.body or bolt_request.content_type == "application/json":
        return
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "command" in form and "payload" not in form:
        bolt_request.body = form
        bolt_request.context = build_async_context(AsyncBoltContext({}), form)
