"""`HttpDesk`: the agent API over HTTP, for `leash mcp` (stdio).

The process an agent runtime launches holds only the agent's token (LEASH_TOKEN) and Leash's
URL: every operation is an agent API call, authenticated and decided by the running Leash. Each
call says it came through MCP (X-Leash-Surface) and names the MCP client (X-Leash-Client), so
owners see who asked; Leash keeps those as words, never as authority.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.domain.errors import LeashError
from bot.surfaces.mcp.desk import Json
from bot.surfaces.mcp.origin import CLIENT_HEADER, SURFACE, SURFACE_HEADER, client_label

API = "/api/v1"
# A wait asks the API for up to 60 s; the HTTP call is given that and some slack.
TIMEOUT_SLACK_SECONDS = 15


class ApiError(LeashError):
    """An error the agent API answered with: its status, code and sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HttpDesk:
    """The agent API's operations for the identity `token` is bound to, over HTTP."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, token: str, *, client: str | None
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + API
        self._headers = {"Authorization": f"Bearer {token}", SURFACE_HEADER: SURFACE}
        label = client_label(client) if client else None
        if label:
            self._headers[CLIENT_HEADER] = label

    async def _call(
        self, method: str, path: str, *, body: Json | None = None, wait: float = 0
    ) -> Json:
        timeout = aiohttp.ClientTimeout(total=wait + TIMEOUT_SLACK_SECONDS)
        try:
            async with self._http.request(
                method,
                self._base + path,
                json=body,
                params={"wait": f"{wait:g}"} if wait else None,
                headers=self._headers,
                timeout=timeout,
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ApiError(
                503, "unreachable", f"Leash did not answer at {self._base}: {error or 'timeout'}"
            ) from None
        return _answer(status, text)

    async def me(self) -> Json:
        return await self._call("GET", "/me")

    async def ask(self, body: Json) -> Json:
        return await self._call("POST", "/requests", body=body)

    async def request(self, request_id: str, *, wait: float) -> Json:
        return await self._call("GET", f"/requests/{quote(request_id, safe='')}", wait=wait)

    async def release(self, grant_id: str) -> Json:
        return await self._call("POST", f"/grants/{quote(grant_id, safe='')}/release")

    async def extend(self, grant_id: str, body: Json) -> Json:
        return await self._call("POST", f"/grants/{quote(grant_id, safe='')}/extend", body=body)


def _answer(status: int, text: str) -> Json:
    """The JSON of a 2xx answer; an ApiError carrying the API's own sentence otherwise."""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if 200 <= status < 300 and isinstance(parsed, dict):
        return parsed
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        raise ApiError(status, str(parsed.get("error", "error")), parsed["message"])
    raise ApiError(status, "error", f"Leash answered HTTP {status} without a message.")
