"""A wire-level fake of the Bot Connector REST API v3 that Teams bots call, served by aiohttp."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from tests.fakes.teams_activities import (
    ADAPTIVE_CARD,
    BOT_ID,
    BOT_NAME,
    TENANT_ID,
    TeamsChannel,
    TeamsUser,
    next_message_id,
)

__all__ = [
    "ADAPTIVE_CARD",
    "BOT_ID",
    "BOT_NAME",
    "TENANT_ID",
    "CallKind",
    "CardCheck",
    "ConnectorCall",
    "FakeBotConnector",
    "TeamsChannel",
    "TeamsUser",
]

JsonDict = dict[str, Any]
CallKind = Literal[
    "send",
    "reply",
    "update",
    "delete",
    "create_conversation",
    "get_member",
    "get_members",
    "unhandled",
]
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CardCheck = Callable[[JsonDict], list[str]]  # a card's problems; empty when it is valid

# The error codes the Bot Connector answers with, for the statuses tests inject.
_ERROR_CODES = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "BotNotInConversationRoster",
    404: "ConversationNotFound",
    412: "PreconditionFailed",
    429: "Throttled",
    500: "ServiceError",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True, slots=True)
class ConnectorCall:
    """One request the fake received, with the status it answered."""

    kind: CallKind
    conversation_id: str | None
    activity_id: str | None
    body: JsonDict
    authorization: str | None
    status: int = 200
    member_id: str | None = None
    method: str = ""
    path: str = ""  # decoded
    answered_id: str | None = None  # the activity id the fake gave a posted activity

    @property
    def ok(self) -> bool:
        """Tell whether the fake answered with success."""
        return self.status < 400

    @property
    def text(self) -> str | None:
        """Return the text of the activity sent, if any."""
        text = self.body.get("text")
        return text if isinstance(text, str) else None

    @property
    def cards(self) -> list[JsonDict]:
        """Return the Adaptive Cards attached to the activity sent, in order."""
        attachments = self.body.get("attachments") or []
        return [
            a["content"]
            for a in attachments
            if isinstance(a, dict)
            and a.get("contentType") == ADAPTIVE_CARD
            and isinstance(a.get("content"), dict)
        ]


@dataclass(slots=True)
class _Fault:
    kind: CallKind | None
    remaining: int
    status: int
    retry_after: int | None


class FakeBotConnector:
    """Answer Bot Connector calls like the Teams channel service does, and record every call."""

    def __init__(self, *, card_check: CardCheck | None = None) -> None:
        """card_check, when given, is run on every Adaptive Card posted or updated; the cards
        it finds problems with are kept in `invalid_cards` (the call is answered as usual)."""
        self.calls: list[ConnectorCall] = []
        self.invalid_cards: list[tuple[CallKind, list[str], JsonDict]] = []
        self.checked_cards = 0
        self._card_check = card_check
        self.fault_count = 0
        self._members: dict[str, TeamsUser] = {}
        self._faults: list[_Fault] = []
        self._holds: list[tuple[CallKind, str, asyncio.Event]] = []
        self._gates: list[asyncio.Event] = []  # every hold's, released at the latest on stop
        self._personal: dict[str, str] = {}  # member id -> conversation created for them
        self._conversation_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application()
        routes: list[tuple[str, str, _Handler]] = [
            ("POST", "/v3/conversations", self._create_conversation),
            ("POST", "/v3/conversations/{conversation}/activities", self._send),
            ("POST", "/v3/conversations/{conversation}/activities/{activity}", self._reply),
            ("PUT", "/v3/conversations/{conversation}/activities/{activity}", self._update),
            ("DELETE", "/v3/conversations/{conversation}/activities/{activity}", self._delete),
            ("GET", "/v3/conversations/{conversation}/members", self._get_members),
            ("GET", "/v3/conversations/{conversation}/members/{member}", self._get_member),
            ("*", "/{tail:.*}", self._unhandled),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving."""
        for gate in self._gates:
            gate.set()  # a test that failed before releasing them must not hang the teardown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotConnector:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def service_url(self) -> str:
        """Return the serviceUrl to put in activities, with its trailing slash as Teams sends it."""
        if self._port is None:
            raise RuntimeError("FakeBotConnector is not started")
        return f"http://127.0.0.1:{self._port}/"

    # -- test controls ---------------------------------------------------------------------

    def add_member(self, user: TeamsUser) -> None:
        """Make a user known to get member (by Teams id or AAD object id), in any conversation."""
        self._members[user.teams_id] = user
        self._members[user.aad_object_id] = user

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        kind: CallKind | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next count calls (of kind, or of any kind) with status and an error body."""
        self._faults.append(_Fault(kind, count, status, retry_after))

    def hold_next(self, kind: CallKind, conversation_id: str) -> asyncio.Event:
        """Keep the next call of kind to a conversation unanswered until the event is set.

        The call is recorded (and answered) only once released, as a slow channel would.
        """
        gate = asyncio.Event()
        self._gates.append(gate)
        self._holds.append((kind, conversation_id, gate))
        return gate

    def reset(self) -> None:
        """Forget the recorded calls, pending faults and the fault count; keep the members."""
        self.calls.clear()
        self._faults.clear()
        self.fault_count = 0

    def calls_to(self, kind: CallKind) -> list[ConnectorCall]:
        """Return every recorded call of one kind, failed ones included, oldest first."""
        return [call for call in self.calls if call.kind == kind]

    def activities(self) -> list[ConnectorCall]:
        """Return the sends and replies that were delivered (answered with success)."""
        return [c for c in self.calls if c.kind in ("send", "reply") and c.ok]

    @property
    def failed_calls(self) -> list[ConnectorCall]:
        """Return the calls answered with an error status, oldest first."""
        return [call for call in self.calls if not call.ok]

    @staticmethod
    def cards(call: ConnectorCall) -> list[JsonDict]:
        """Return the Adaptive Cards attached to a call's activity."""
        return call.cards

    async def wait_for(
        self,
        kind: CallKind,
        *,
        where: Callable[[ConnectorCall], bool] | None = None,
        count: int = 1,
        timeout: float = 15.0,  # noqa: ASYNC109 - a deadline on polling, read by tests as an assertion
        include_failed: bool = False,
    ) -> list[ConnectorCall]:
        """Wait until count matching successful calls (any, with include_failed) and return them."""

        def matching() -> list[ConnectorCall]:
            return [
                c
                for c in self.calls_to(kind)
                if (include_failed or c.ok) and (where is None or where(c))
            ]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := matching()) < count:
            if loop.time() >= deadline:
                seen = "\n  ".join(_describe(c) for c in self.calls) or "(none)"
                raise AssertionError(
                    f"expected {count} {kind} call(s), got {len(found)} in {timeout}s;"
                    f" calls seen:\n  {seen}"
                )
            await asyncio.sleep(0.01)
        return found

    # -- HTTP ------------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        return await self._answer(request, "send", lambda _: {"id": next_message_id()}, status=201)

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._answer(request, "reply", lambda _: {"id": next_message_id()}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        return await self._answer(
            request, "update", lambda _: {"id": request.match_info["activity"]}
        )

    async def _delete(self, request: web.Request) -> web.Response:
        return await self._answer(request, "delete", lambda _: None)

    async def _create_conversation(self, request: web.Request) -> web.Response:
        return await self._answer(
            request, "create_conversation", self._new_conversation, status=201
        )

    async def _get_members(self, request: web.Request) -> web.Response:
        users = {u.teams_id: u for u in self._members.values()}.values()
        members = [u.teams_channel_account() for u in users]
        return await self._answer(request, "get_members", lambda _: members)

    async def _get_member(self, request: web.Request) -> web.Response:
        user = self._members.get(request.match_info["member"])
        if user is None:
            return await self._answer(request, "get_member", lambda _: None, status=404)
        return await self._answer(request, "get_member", lambda _: user.teams_channel_account())

    async def _unhandled(self, request: web.Request) -> web.Response:
        return await self._answer(request, "unhandled", lambda _: None, status=404)

    async def _answer(
        self,
        request: web.Request,
        kind: CallKind,
        respond: Callable[[JsonDict], JsonDict | list[JsonDict] | None],
        *,
        status: int = 200,
    ) -> web.Response:
        """Record the call, then answer with an injected fault, an error or respond(body)."""
        body = await _read_body(request)
        self._check_cards(kind, body)
        for held in self._holds:
            if held[:2] == (kind, request.match_info.get("conversation")):
                self._holds.remove(held)
                await held[2].wait()
                break
        fault = None if kind == "unhandled" else self._take_fault(kind)
        if fault is not None:
            status = fault.status
        answer = respond(body) if status < 400 else None
        answered = answer.get("id") if isinstance(answer, dict) else None
        self.calls.append(
            ConnectorCall(
                kind=kind,
                conversation_id=request.match_info.get("conversation"),
                activity_id=request.match_info.get("activity"),
                body=body,
                authorization=request.headers.get("Authorization"),
                status=status,
                member_id=request.match_info.get("member"),
                method=request.method,
                path=request.path,
                answered_id=answered if isinstance(answered, str) else None,
            )
        )
        if status >= 400:
            headers = {}
            if fault is not None and fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            return web.json_response(
                _error_body(kind, status, request), status=status, headers=headers
            )
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    def _check_cards(self, kind: CallKind, body: JsonDict) -> None:
        """Run card_check on the cards of a posted activity (or of a new conversation's)."""
        if self._card_check is None:
            return
        activity = body.get("activity") if kind == "create_conversation" else body
        attachments = activity.get("attachments") if isinstance(activity, dict) else None
        for attachment in attachments if isinstance(attachments, list) else []:
            if isinstance(attachment, dict) and attachment.get("contentType") == ADAPTIVE_CARD:
                card = attachment.get("content")
                problems = self._card_check(card) if isinstance(card, dict) else ["not an object"]
                self.checked_cards += 1
                if problems:
                    self.invalid_cards.append((kind, problems, attachment))

    def _take_fault(self, kind: CallKind) -> _Fault | None:
        for fault in self._faults:
            if fault.kind is None or fault.kind == kind:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                self.fault_count += 1
                return fault
        return None

    def _new_conversation(self, body: JsonDict) -> JsonDict:
        """Answer ConversationParameters: a channel post, or the 1:1 chat with the first member."""
        activity_id = next_message_id() if isinstance(body.get("activity"), dict) else None
        channel_data = body.get("channelData") or {}
        channel = channel_data.get("channel") if isinstance(channel_data, dict) else None
        if isinstance(channel, dict) and channel.get("id"):
            activity_id = activity_id or next_message_id()
            conversation_id = f"{channel['id']};messageid={activity_id}"
        else:
            members = body.get("members") or []
            member = members[0].get("id", "") if members and isinstance(members[0], dict) else ""
            conversation_id = self._personal.get(member) or f"a:new-{next(self._conversation_ids)}"
            self._personal[member] = conversation_id
        answer: JsonDict = {"id": conversation_id, "serviceUrl": self.service_url}
        if activity_id is not None:
            answer["activityId"] = activity_id
        return answer


def _error_body(kind: CallKind, status: int, request: web.Request) -> JsonDict:
    if kind == "get_member" and status == 404:
        code, message = "MemberNotFoundInConversation", "The member was not found."
    elif kind == "unhandled":
        code, message = "NotFound", f"The fake does not serve {request.method} {request.path}."
    else:
        code, message = _ERROR_CODES.get(status, "ServiceError"), f"Injected fault ({status})."
    return {"error": {"code": code, "message": message}}


async def _read_body(request: web.Request) -> JsonDict:
    if not request.can_read_body:
        return {}
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_json": parsed}


def _describe(call: ConnectorCall) -> str:
    if call.kind == "unhandled":
        return f"unhandled [{call.status}] {call.method} {call.path}"
    where = call.conversation_id or ""
    if call.activity_id or call.member_id:
        where += f" / {call.activity_id or call.member_id}"
    summary = call.text if call.text is not None else json.dumps(call.body)[:200]
    return f"{call.kind} [{call.status}] {where}: {summary}"
