"""The Bot Framework edge: authentication, the CloudAdapter, retries, and `POST /api/messages`."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticationConfiguration,
    BotFrameworkAuthenticationFactory,
    ClaimsIdentity,
    PasswordServiceClientCredentialFactory,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from bot.surfaces.teams.tenants import Tenants, shown

log = logging.getLogger("leash.teams")

T = TypeVar("T")
# The Bot Connector asks clients to retry these (throttled, precondition race, gateway errors).
RETRY_STATUSES = frozenset({412, 429, 502, 504})
MAX_RETRY_AFTER = 60.0
# Bot Framework tokens live about an hour; one good for longer than a day is as bad as none.
MAX_TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class TeamsAuth:
    """The bot's registration; no app id means authentication is off (local tries only)."""

    app_id: str = ""
    app_password: str = ""
    tenant_id: str = ""
    # Overrides of the Bot Framework's public-cloud endpoints (sovereign clouds, tests).
    openid_metadata_url: str | None = None
    token_issuer: str | None = None
    # The tenants whose activities are served (SingleTenant: the app's; no list: any).
    tenants: Tenants = field(default_factory=Tenants)

    @property
    def enabled(self) -> bool:
        return bool(self.app_id)


def build_adapter(auth: TeamsAuth) -> CloudAdapter:
    """A CloudAdapter that validates inbound tokens (issuer, audience, keys, serviceUrl claim)."""
    credentials = PasswordServiceClientCredentialFactory(
        auth.app_id or None, auth.app_password or None, auth.tenant_id or None
    )
    overrides: dict[str, Any] = {}
    if auth.openid_metadata_url or auth.token_issuer:
        # The parameterized authentication checks exactly these; the channel is otherwise
        # the public cloud's, with its login and scope.
        overrides = {
            "to_bot_from_channel_open_id_metadata_url": auth.openid_metadata_url,
            "to_bot_from_channel_token_issuer": auth.token_issuer or "https://api.botframework.com",
            "to_channel_from_bot_login_url": "https://login.microsoftonline.com/botframework.com",
            "to_channel_from_bot_oauth_scope": "https://api.botframework.com",
            "to_bot_from_emulator_open_id_metadata_url": auth.openid_metadata_url,
        }
    authentication = BotFrameworkAuthenticationFactory.create(
        credential_factory=credentials,
        auth_configuration=AuthenticationConfiguration(),
        **overrides,
    )
    return CloudAdapter(authentication)


def status_of(error: BaseException) -> int | None:
    """The HTTP status of a Bot Connector error, if it carries one."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def _retry_after(error: BaseException | None) -> float:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return min(float(headers.get("Retry-After", 0)), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return 0.0


def _retryable(error: BaseException) -> bool:
    return status_of(error) in RETRY_STATUSES


class ConnectorRetry:
    """Retries a Bot Connector call on 429/412/502/504 with backoff, honouring Retry-After."""

    def __init__(self, *, base_seconds: float = 1.0, attempts: int = 4) -> None:
        self._exponential = wait_exponential(multiplier=base_seconds, max=MAX_RETRY_AFTER)
        self._attempts = attempts

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return max(self._exponential(state), _retry_after(error))

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self._attempts),
            before_sleep=_log_retry,
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable: tenacity re-raises the last error")


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    status = status_of(error) if error else None
    log.info("Bot Connector answered %s; retrying (attempt %d)", status, state.attempt_number + 1)


Turn = Callable[[TurnContext], Awaitable[None]]


def _problem(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def _unauthorized(why: object) -> web.Response:
    log.warning("rejected a Bot Framework request: %s", why)
    return _problem(401, "unauthorized", "The request is not from the Bot Framework.")


def _unexpiring(claims: ClaimsIdentity) -> str | None:
    """Say what is wrong with a token's lifetime, or None if it expires, and soon enough.

    botframework-connector has PyJWT check `exp` (and `nbf`, `iat`) only when the token
    carries it, so a signed token without `exp` would be good forever.
    """
    exp = (claims.claims or {}).get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return "the token has no expiry (exp)"
    if exp - time.time() > MAX_TOKEN_SECONDS:
        return "the token is valid for more than a day"
    return None


def messages_route(
    adapter: CloudAdapter, logic: Turn, *, auth: TeamsAuth
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`POST /api/messages`: authenticate, check the tenant, run the turn, answer invokes."""

    async def handle(request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return _problem(415, "unsupported_media_type", "Send a JSON Bot Framework activity.")
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return _problem(400, "bad_request", "The body is not JSON (or is nested too deeply).")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return _problem(400, "bad_request", "The body is not a Bot Framework activity.")
        try:
            activity = Activity().deserialize(body)
        except Exception:
            return _problem(400, "bad_request", "The activity could not be read.")
        if not activity.service_url or not activity.conversation:
            return _problem(400, "bad_request", "The activity has no serviceUrl or conversation.")
        header = request.headers.get("Authorization")
        try:
            authenticated = await adapter.bot_framework_authentication.authenticate_request(
                activity, header
            )
        except Exception as error:
            # PermissionError, or the JWT library's own errors for a bad signature or expiry
            return _unauthorized(error)
        lifetime = _unexpiring(authenticated.claims_identity) if auth.enabled else None
        if lifetime is not None:
            return _unauthorized(lifetime)
        # Before the turn runs: nothing is stored, run or answered for another tenant.
        refused = auth.tenants.refusal(body)
        if refused is not None:
            log.warning(
                "refused a Teams %s activity with %s (conversation.tenantId %s, "
                "channelData.tenant.id %s)",
                shown(activity.type),
                refused.reason,
                refused.conversation,
                refused.channel_data,
            )
            return _problem(403, "forbidden", "This bot does not serve that Microsoft 365 tenant.")
        response = await adapter.process_activity(authenticated, activity, logic)
        if isinstance(response, InvokeResponse):
            # The SDK would serialise a dict body a second time (invokes fail with 500).
            payload = response.body
            if payload is not None and not isinstance(payload, dict | list):
                payload = serializer_helper(payload)
            return web.json_response(payload, status=response.status or 200)
        return web.Response(status=201)

    return handle


def on_turn_error(adapter: CloudAdapter) -> None:
    """Log a failed turn with a correlation id, and tell the user that much."""

    async def handle(context: TurnContext, error: Exception) -> None:
        correlation = secrets.token_hex(4)
        log.error("Teams turn failed [%s]", correlation, exc_info=error)
        if context.activity.type == "message":
            try:
                await context.send_activity(
                    f"Something went wrong on our side (reference {correlation}). "
                    "Nothing was changed unless a later message says so."
                )
            except Exception:
                log.exception("could not tell the user about [%s]", correlation)

    adapter.on_turn_error = handle
