"""A wire-level fake of the Slack Web API and of response_url, served by aiohttp on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

JsonDict = dict[str, Any]

# Form fields whose value Slack expects as a JSON string; the fake decodes them for assertions.
_JSON_FIELDS = frozenset(
    {
        "attachments",
        "blocks",
        "chunks",
        "dialog",
        "files",
        "metadata",
        "option_groups",
        "options",
        "unfurls",
        "user_auth_blocks",
        "view",
    }
)


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One request the fake received."""

    method: str
    args: JsonDict
    token: str | None


@dataclass(frozen=True, slots=True)
class SlackUpload:
    """One file shared with files.completeUploadExternal, with the bytes sent to its URL."""

    channel: str | None
    thread_ts: str | None
    filename: str
    title: str
    content: bytes


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    retry_after: int
    error: str


@dataclass(slots=True)
class _User:
    user_id: str
    email: str | None
    name: str
    is_bot: bool


class FakeSlackApi:
    """Answer Slack Web API calls like Slack does, and record every call."""

    def __init__(self, *, bot_user_id: str = "UBOT", team_id: str = "T0001") -> None:
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.calls: list[SlackCall] = []
        self._users: dict[str, _User] = {}
        self._failures: defaultdict[str, deque[_Failure]] = defaultdict(deque)
        self._holds: list[tuple[str, Callable[[JsonDict], bool], asyncio.Event]] = []
        self._gates: list[asyncio.Event] = []  # every hold's, released at the latest on stop
        self.messages: list[JsonDict] = []  # as posted: channel (the DM for a user), ts, blocks
        self.uploads: list[SlackUpload] = []
        self._files: dict[str, tuple[str, bytes | None]] = {}  # file id -> (filename, bytes)
        self._ts_counter = 0
        self._view_counter = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.open": self._conversations_open,
            "views.open": self._view_with_trigger,
            "views.push": self._view_with_trigger,
            "views.update": self._view,
            "views.publish": self._view,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{tail:.*}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
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

    async def __aenter__(self) -> FakeSlackApi:
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
    def base_url(self) -> str:
        """Return the Web API root, for `AsyncWebClient(base_url=...)`."""
        return f"{self._root()}/api/"

    @property
    def response_url_base(self) -> str:
        """Return the prefix under which tests build response_url values."""
        return f"{self._root()}/response/"

    def _root(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeSlackApi is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- test controls ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        """Return the recorded calls to one method, oldest first."""
        return [call for call in self.calls if call.method == method]

    def add_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        is_bot: bool = False,
    ) -> None:
        """Make a user known to users.info and users.lookupByEmail."""
        self._users[user_id] = _User(user_id, email, name or user_id.lower(), is_bot)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str = "ratelimited",
    ) -> None:
        """Make the next call to method (or "upload", to a file's upload URL) fail; they stack."""
        self._failures[method].append(_Failure(status, retry_after, error))

    def hold_next(self, method: str, where: Callable[[JsonDict], bool]) -> asyncio.Event:
        """Keep the next call to method whose arguments match unanswered until the event is set.

        The call is recorded (and answered) only once released, as a slow Slack would.
        """
        gate = asyncio.Event()
        self._gates.append(gate)
        self._holds.append((method, where, gate))
        return gate

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 15.0,  # noqa: ASYNC109 - a deadline on polling, read by tests as an assertion
        where: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Wait until at least count matching calls were recorded, and return them."""

        def matching() -> list[SlackCall]:
            return [c for c in self.calls_to(method) if where is None or where(c)]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := matching()) < count:
            if loop.time() >= deadline:
                seen = "\n  ".join(f"{c.method} {c.args!r}" for c in self.calls) or "(none)"
                raise AssertionError(
                    f"expected {count} call(s) to {method}, got {len(found)} in {timeout}s;"
                    f" calls seen:\n  {seen}"
                )
            await asyncio.sleep(0.01)
        return found

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token = await _read_args(request)
        for held in self._holds:
            if held[0] == method and held[1](args):
                self._holds.remove(held)
                await held[2].wait()
                break
        self.calls.append(SlackCall(method=method, args=args, token=token))
        failures = self._failures.get(method)
        if failures:
            failure = failures.popleft()
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )
        if token is None and method != "api.test":
            return web.json_response({"ok": False, "error": "not_authed"})
        handler = self._handlers.get(method)
        return web.json_response(handler(args) if handler else {"ok": True})

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            args: JsonDict = await request.json()
        else:
            args = _decode_form(dict(await request.post()))
        args["_path"] = request.match_info["tail"]
        self.calls.append(SlackCall(method="response_url", args=args, token=None))
        return web.Response(text="ok", content_type="text/plain")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal hands out: it takes the raw bytes."""
        file_id, content = request.match_info["file_id"], await request.read()
        self.calls.append(SlackCall(method="upload", args={"file_id": file_id}, token=None))
        if failures := self._failures.get("upload"):
            return web.Response(status=failures.popleft().status, text="failed")
        if file_id not in self._files:
            return web.Response(status=404, text="unknown upload")
        self._files[file_id] = (self._files[file_id][0], content)
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    # -- methods ---------------------------------------------------------------------------

    def _auth_test(self, _args: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "leash",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0001",
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = args.get("channel")
        if not channel:
            return _error("channel_not_found")
        if not any(args.get(k) for k in ("text", "blocks", "attachments")):
            return _error("no_text")
        ts, posted_to = self._next_ts(), _dm_channel(str(channel))
        message = self._message(args, ts)
        self.messages.append(message | {"channel": posted_to})
        return {"ok": True, "channel": posted_to, "ts": ts, "message": message}

    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return _error("channel_not_found")
        if not ts:
            return _error("message_not_found")
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": args.get("text", ""),
            "message": self._message(args, str(ts)),
        }

    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        if not args.get("channel"):
            return _error("channel_not_found")
        if not args.get("user"):
            return _error("user_not_in_channel")
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_open(self, args: JsonDict) -> JsonDict:
        if channel := args.get("channel"):
            return {"ok": True, "channel": {"id": channel}}
        users = args.get("users")
        ids = users if isinstance(users, list) else str(users or "").split(",")
        ids = [u.strip() for u in ids if u.strip()]
        if not ids:
            return _error("users_list_not_supplied")
        channel_id = _dm_channel(ids[0]) if len(ids) == 1 else "G" + "".join(i[1:] for i in ids)
        return {"ok": True, "no_op": False, "already_open": False, "channel": {"id": channel_id}}

    def _view_with_trigger(self, args: JsonDict) -> JsonDict:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return _error("invalid_arguments")
        return self._view(args)

    def _view(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        if not isinstance(view, dict):
            return _error("invalid_arguments")
        self._view_counter += 1
        n = self._view_counter
        view_id = str(args.get("view_id") or f"V{n}")
        return {
            "ok": True,
            "view": {
                "team_id": self.team_id,
                "private_metadata": "",
                "callback_id": "",
                "external_id": args.get("external_id", ""),
                "state": {"values": {}},
                "previous_view_id": None,
                "root_view_id": view_id,
                "app_id": "A0001",
                "bot_id": "B0001",
                **view,
                "id": view_id,
                "hash": f"h{n}",
            },
        }

    def _users_lookup_by_email(self, args: JsonDict) -> JsonDict:
        email = str(args.get("email", "")).lower()
        for user in self._users.values():
            if user.email is not None and user.email.lower() == email:
                return {"ok": True, "user": self._user_object(user)}
        return _error("users_not_found")

    def _users_info(self, args: JsonDict) -> JsonDict:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            return _error("user_not_found")
        return {"ok": True, "user": self._user_object(user)}

    def _files_get_upload_url(self, args: JsonDict) -> JsonDict:
        if not args.get("filename") or not str(args.get("length", "")).isdigit():
            return _error("invalid_arguments")
        file_id = f"F{len(self._files) + 1:08d}"
        self._files[file_id] = (str(args["filename"]), None)
        return {"ok": True, "upload_url": f"{self._root()}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: JsonDict) -> JsonDict:
        files = args.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
            return _error("invalid_arguments")
        if any(self._files.get(str(f.get("id")), ("", None))[1] is None for f in files):
            return _error("file_not_found")  # never issued, or its bytes never arrived
        channel, thread_ts = args.get("channel_id") or args.get("channels"), args.get("thread_ts")
        shared: list[JsonDict] = []
        for item in files:
            filename, content = self._files[str(item["id"])]
            title = str(item.get("title") or filename)
            self.uploads.append(SlackUpload(channel, thread_ts, filename, title, content or b""))
            shared.append({"id": item["id"], "name": filename, "title": title})
        return {"ok": True, "files": shared}

    # -- helpers ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        self._ts_counter += 1
        seconds, micros = divmod(self._ts_counter, 1_000_000)
        return f"{1_700_000_000 + seconds}.{micros:06d}"

    def _message(self, args: JsonDict, ts: str) -> JsonDict:
        message: JsonDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": "B0001",
            "team": self.team_id,
            "text": args.get("text", ""),
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        return message

    def _user_object(self, user: _User) -> JsonDict:
        profile: JsonDict = {"real_name": user.name, "display_name": user.name}
        if user.email is not None:
            profile["email"] = user.email
        return {
            "id": user.user_id,
            "team_id": self.team_id,
            "name": user.name,
            "real_name": user.name,
            "deleted": False,
            "is_bot": user.is_bot,
            "profile": profile,
        }


async def _read_args(request: web.Request) -> tuple[JsonDict, str | None]:
    """Merge query string and body (JSON or form) the way Slack reads them; pop the token."""
    args: JsonDict = _decode_form(dict(request.query))
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update(_decode_form(dict(await request.post())))
    token: str | None = None
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ")
    form_token = args.pop("token", None)
    if token is None and isinstance(form_token, str):
        token = form_token
    return args, token


def _decode_form(fields: dict[str, Any]) -> JsonDict:
    decoded: JsonDict = {}
    for key, value in fields.items():
        if isinstance(value, web.FileField):
            decoded[key] = value.filename
        elif key in _JSON_FIELDS and isinstance(value, str):
            try:
                decoded[key] = json.loads(value)
            except json.JSONDecodeError:
                decoded[key] = value
        else:
            decoded[key] = value
    return decoded


def _dm_channel(channel: str) -> str:
    """Posting to a user id lands in the DM with that user, as Slack does."""
    return "D" + channel[1:] if channel[:1] in ("U", "W") else channel


def _error(error: str) -> JsonDict:
    # Slack answers API errors with HTTP 200 and ok: false.
    return {"ok": False, "error": error}
