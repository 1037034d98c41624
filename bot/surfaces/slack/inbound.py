"""`POST /slack/events` on Leash's own aiohttp app, dispatched to the bolt AsyncApp."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.surfaces.slack.surface import SlackSurface

log = logging.getLogger("leash.slack")

# How many answered requests' work runs at once. The cloud calls beneath it share the default
# thread pool (6 workers on 2 cores) anyway; more in flight only crowded the event loop, and the
# next acknowledgements waited behind it (bench/slack_ack: p99 113 ms unbounded, 44 ms at 8).
WORK_IN_PARALLEL = 8


def slack_route(surface: SlackSurface) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler: the signature (and its age) is checked before anything reads the body.

    Leash checks it here, on the exact bytes, instead of in bolt: bolt's check raised on a
    malformed timestamp (a 500) and logged the body of every refused request, so an unsigned
    body could write any line it liked into the log. Nothing of a refused request is logged
    beyond its size and why it was refused.
    """
    # Work for answered requests runs a few at a time: the rest wait without touching the event
    # loop, which then stays free for the next acknowledgements.
    slots = asyncio.Semaphore(WORK_IN_PARALLEL)

    async def later(bolt_request: AsyncBoltRequest) -> None:
        async with slots:
            await surface.app.async_dispatch(bolt_request)

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        refusal = surface.signature.refusal(raw, request.headers)
        if refusal is not None:
            log.info("refused a Slack request of %d bytes: %s", len(raw), refusal)
            return web.json_response(
                {"error": "invalid_signature", "message": "The request is not signed by Slack."},
                status=401,
            )
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response(
                {"error": "bad_request", "message": "The body is not UTF-8."}, status=400
            )
        problem = _unreadable(body, request.content_type)
        if problem is not None:
            return web.json_response({"error": "bad_request", "message": problem}, status=400)
        bolt_request = AsyncBoltRequest(
            body=body, query=request.query_string, headers=dict(request.headers)
        )
        _repair_slash_command(bolt_request, body)
        if _acked_empty(bolt_request):
            # Verified, and its listener's ack carries nothing: answer now, work after. Bolt's
            # dispatch (middleware, listener lookup, its 10 ms ack poll) runs on the event loop
            # behind whatever else is there; Slack needs only the empty 200.
            surface.keep(asyncio.create_task(later(bolt_request)))
            return web.Response(status=200)
        return await to_aiohttp_response(await surface.app.async_dispatch(bolt_request))

    return handle


def _acked_empty(bolt_request: AsyncBoltRequest) -> bool:
    """Say whether this request's listener acks with an empty body: `/leash` or a button.

    Modal submissions and option lists answer in the ack itself (errors, options), and a
    request no listener takes gets bolt's 404, so those still wait for bolt.
    """
    body = bolt_request.body
    if body.get("command") == "/leash":
        return True
    return body.get("type") == "block_actions"


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
