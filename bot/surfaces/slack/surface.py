"""The Slack surface: `/leash`, buttons, modals, App Home, and notices as DMs and cards."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import render
from bot.commands.forms import ButtonForm, FormKind, filled, form_for, request_from_form
from bot.commands.handler import CommandHandler
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Notice, Reply
from bot.domain.states import ActorKind
from bot.lifecycle.service import Lifecycle
from bot.surfaces.slack import forms as views
from bot.surfaces.slack.outbound import PLATFORM, Outbound
from bot.surfaces.slack.pacing import ChannelPacer
from bot.surfaces.slack.people import Directory, plain_text
from bot.surfaces.slack.render import ACTION_PREFIX, fallback_text, reply_blocks
from bot.surfaces.slack.signature import RequestSignature

log = logging.getLogger("leash.slack")


class SlackSurface:
    """Translates Slack events into commands and notices into Slack messages; no domain logic."""

    name = PLATFORM

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        handler: CommandHandler,
        token: str,
        signing_secret: str,
        api_url: str | None = None,
        pace_seconds: float = 1.0,
    ) -> None:
        self._lifecycle = lifecycle
        self._handler = handler
        client = AsyncWebClient(token=token, base_url=api_url or AsyncWebClient.BASE_URL)
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.client = client
        self._directory = Directory(client)
        self._outbound = Outbound(
            lifecycle=lifecycle,
            client=client,
            directory=self._directory,
            pacer=ChannelPacer(pace_seconds),
        )
        self._deliveries: set[asyncio.Task[None]] = set()
        self._inbound: set[asyncio.Task[Any]] = set()
        self.signature = RequestSignature(signing_secret)
        # `slack_route` checks every request's signature before bolt sees it (see there).
        self.app = AsyncApp(
            client=client, signing_secret=signing_secret, request_verification_enabled=False
        )
        self._register()

    def _register(self) -> None:
        app, tracked = self.app, self._tracked
        app.command("/leash")(tracked(self._on_command))
        app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(tracked(self._on_button))
        app.action(re.compile(".*"))(tracked(self._on_unknown_action))
        app.view(views.REQUEST_CALLBACK)(tracked(self._on_request_submitted))
        app.view(views.DENY_CALLBACK)(tracked(self._on_deny_submitted))
        app.view(views.EXTEND_CALLBACK)(tracked(self._on_extend_submitted))
        app.view(views.ASSIGN_CALLBACK)(tracked(self._on_assign_submitted))
        app.options(views.IDENTITY_ACTION)(tracked(self._on_identity_options))
        app.event("app_home_opened")(tracked(self._on_home_opened))
        app.error(self._on_error)

    def _tracked(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """Keep each handler's task (bolt runs it after the ack) so `drain()` can wait for it."""

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inbound.add(task)
            try:
                await listener(**kwargs)
            finally:
                if task is not None:
                    self._inbound.discard(task)

        return run

    # People

    async def actor(self, user_id: str) -> Actor:
        """A Slack user as Leash sees them: their user id, and their e-mail as an alias."""
        email = await self._directory.email_of(user_id)
        return Actor(
            name=user_id, kind=ActorKind.USER, origin=PLATFORM, aliases=(email,) if email else ()
        )

    # Inbound: commands, buttons, modals, options, home

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        text = plain_text(str(body.get("text", ""))).strip()
        user_id = str(body["user_id"])
        if text.lower() == "request":
            await ack()
            await self._open(body, views.request_modal(self._lifecycle.rules))
            return
        await ack()  # within Slack's 3 s; the work (and any cloud call) happens after
        reply = await self._handler.handle_text(text, actor=await self.actor(user_id))
        await respond(
            text=fallback_text(reply), blocks=reply_blocks(reply), response_type="ephemeral"
        )

    async def _on_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        command = str(action.get("value", ""))
        user_id = str(body["user"]["id"])
        form = form_for(command)
        if form is not None:
            await self._open(body, self._modal(form))
            return
        reply = await self._handler.handle_text(command, actor=await self.actor(user_id))
        await self._answer(body, respond, reply)
        if (body.get("container") or {}).get("type") == "view":
            await self.publish_home(user_id)

    def _modal(self, form: ButtonForm) -> dict[str, Any]:
        match form.kind:
            case FormKind.DENY:
                return views.deny_modal(form.subject)
            case FormKind.ASSIGN:
                return views.assign_modal(form.subject)
            case FormKind.EXTEND:
                return views.extend_modal(form.subject, self._lifecycle.rules)

    async def _on_unknown_action(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        await self._answer(body, respond, render.unknown_button())

    async def _answer(self, body: dict[str, Any], respond: AsyncRespond, reply: Reply) -> None:
        """Tell the clicking user privately: in the conversation if there is one, else by DM."""
        if body.get("response_url"):
            await respond(
                text=fallback_text(reply),
                blocks=reply_blocks(reply),
                response_type="ephemeral",
                replace_original=False,
            )
        else:
            await self._outbound.post(str(body["user"]["id"]), reply)

    async def _open(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            await self.client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        except SlackApiError as error:
            log.warning("views.open failed: %s", error.response.get("error"))

    async def _on_request_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        values = _form_values(view)
        user_id = str(body["user"]["id"])
        try:
            request = await self._lifecycle.requests.submit(
                request_from_form(values), actor=await self.actor(user_id)
            )
        except LeashError as error:
            block = views.FIELD_BLOCKS.get(error.field or "", "reason")
            await ack(response_action="errors", errors={block: str(error)[:1900]})
            return
        await ack()
        await self._outbound.post(user_id, render.submitted(request))

    async def _on_deny_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        request_id = str(view.get("private_metadata", ""))
        reason = _form_values(view).get("reason", "")
        actor = await self.actor(str(body["user"]["id"]))
        try:
            await self._lifecycle.requests.deny(request_id, actor=actor, reason=reason)
        except LeashError as error:
            await ack(response_action="errors", errors={"reason": str(error)[:1900]})
            return
        await ack()

    async def _on_extend_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        grant_id = str(view.get("private_metadata", ""))
        values = _form_values(view)
        await ack()
        command = filled(ButtonForm(FormKind.EXTEND, grant_id), values)
        user_id = str(body["user"]["id"])
        reply = await self._handler.handle_text(command, actor=await self.actor(user_id))
        await self._outbound.post(user_id, reply)

    async def _on_assign_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        identity = str(view.get("private_metadata", ""))
        command = filled(ButtonForm(FormKind.ASSIGN, identity), _form_values(view))
        user_id = str(body["user"]["id"])
        reply = await self._handler.handle_text(command, actor=await self.actor(user_id))
        if not reply.ok:
            await ack(response_action="errors", errors={"owner": reply.text[:1900]})
            return
        await ack()
        await self._outbound.post(user_id, reply)

    async def _on_identity_options(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Search the inventory for the request form's identity field."""
        query = str(body.get("value", ""))[:100]
        rows = await self._lifecycle.queries.search(query or None, limit=100)
        options = [
            {
                "text": {
                    "type": "plain_text",
                    "text": f"{identity.name} ({identity.account})"[:75],
                },
                "value": identity.native_id[:150],
            }
            for identity, _ in sorted(rows, key=lambda row: row[0].classification != "ai_agent")
            if identity.present
        ][:100]
        await ack(options=options)

    async def _on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await self.publish_home(str(event["user"]))

    async def publish_home(self, user_id: str) -> None:
        actor = await self.actor(user_id)
        home = await self._lifecycle.queries.home(actor)
        view = views.home_view(
            pending=home.pending, grants=home.grants, owned=home.owned, now=self._lifecycle.now()
        )
        try:
            await self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning("views.publish for %s failed: %s", user_id, error.response.get("error"))

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        correlation = secrets.token_hex(4)
        log.error("slack handler failed [%s]", correlation, exc_info=error)

    # Outbound: notices

    async def notify(self, notice: Notice) -> None:
        """Deliver in the background so no lifecycle step waits on Slack (or its rate limits)."""
        task = asyncio.create_task(self._outbound.deliver(notice))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Track work started for a request already answered, so `drain()` waits for it."""
        self._inbound.add(task)
        task.add_done_callback(self._inbound.discard)

    async def drain(self) -> None:
        """Wait for every handler and delivery in flight (shutdown, tests)."""
        while self._inbound or self._deliveries:
            await asyncio.gather(*self._inbound, *self._deliveries, return_exceptions=True)


def _form_values(view: dict[str, Any]) -> dict[str, str]:
    """Flatten a submitted modal's state into block id -> the value the user gave."""
    flat: dict[str, str] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        for element in elements.values():
            selected = element.get("selected_option") or {}
            value = (
                selected.get("value")
                if selected
                else element.get("selected_user") or element.get("value")
            )
            flat[str(block_id)] = str(value or "").strip()
    return flat
