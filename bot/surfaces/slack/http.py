"""`POST /slack/events` on Leash's own aiohttp app, dispatched to the bolt AsyncApp."""

from __future__ import annotations

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
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        _repair_slash_command(bolt_request, body)
        return await to_aiohttp_response(await surface.app.async_dispatch(bolt_request))

    return handle


def _repair_slash_command(bolt_request: AsyncBoltRequest, body: str) -> None:
    """Parse a slash command whose text contains the word "payload" (bolt 1.30 drops it)."""
    if bolt_request.body or bolt_request.content_type == "application/json":
        return
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "command" in form and "payload" not in form:
        bolt_request.body = form
        bolt_request.context = build_async_context(AsyncBoltContext({}), form)
