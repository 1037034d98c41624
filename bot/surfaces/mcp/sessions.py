"""Which identity holds which open MCP session on /mcp, so no identity can hold too many.

The SDK's session manager limits sessions server-wide only: one token looping `initialize`
could take every slot and shut all other agents out. `SessionBook` keeps, per session, the
identity and the token (a hash of it) that opened it, when it was last used and how many of its
requests are in flight. An identity at its cap that opens another session has its least
recently used idle session ended (an agent that lost its session ids, after a crash or a token
rotation, gets back in at once, and a loop of `initialize` only churns its own sessions); when
all of them are busy the new one is refused (`SessionsBusy`). Sessions a token opened can be
looked up by that token, to end them when it no longer authenticates. Pure bookkeeping: ending
a session in the SDK is the caller's (bot.surfaces.mcp.remote).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass


def token_key(token: str) -> str:
    """What the book keeps of a bearer token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionsBusy(Exception):
    """The identity holds its cap of sessions and every one of them is serving a request."""


@dataclass(slots=True)
class _Session:
    principal: str
    token: str
    used: float
    busy: int = 0


class SessionBook:
    """Open MCP sessions per identity; see the module."""

    def __init__(
        self,
        per_identity: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_identity < 1:
            raise ValueError("per_identity must be at least 1")
        self.per_identity = per_identity
        self._idle = idle_seconds
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, int] = {}  # identity -> openings not answered yet

    def admit(self, principal: str) -> str | None:
        """Count an opening for `principal`; the session to end first to make room, if any.

        Raises SessionsBusy (nothing counted) when the identity is at its cap and none of its
        sessions is idle. Call `opened` once the opening is answered, whatever the answer."""
        self._forget_expired()
        mine = [(sid, s) for sid, s in self._sessions.items() if s.principal == principal]
        held = len(mine) + self._opening.get(principal, 0)
        victim = None
        if held >= self.per_identity:
            idle = [(s.used, sid) for sid, s in mine if s.busy == 0]
            if not idle:
                raise SessionsBusy(principal)
            victim = min(idle)[1]
            del self._sessions[victim]
        self._opening[principal] = self._opening.get(principal, 0) + 1
        return victim

    def opened(self, principal: str, session_id: str | None, token: str) -> None:
        """The opening `admit` counted was answered: with a new session's id, or None."""
        left = self._opening.get(principal, 1) - 1
        if left > 0:
            self._opening[principal] = left
        else:
            self._opening.pop(principal, None)
        if session_id:
            self._sessions[session_id] = _Session(principal, token, self._clock())

    def begin(self, session_id: str) -> bool:
        """A request for a known session starts; False when the book does not know it."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        session.busy += 1
        return True

    def finish(self, session_id: str, *, gone: bool) -> None:
        """A request `begin` counted is answered; `gone`: the session no longer exists."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        session.busy = max(0, session.busy - 1)
        session.used = self._clock()
        if gone:
            del self._sessions[session_id]

    def forget_token(self, token: str) -> list[tuple[str, str]]:
        """Forget every session `token` opened; their (session id, identity) pairs."""
        ended = [(sid, s.principal) for sid, s in self._sessions.items() if s.token == token]
        for sid, _ in ended:
            del self._sessions[sid]
        return ended

    def count(self, principal: str) -> int:
        """How many sessions the book holds open for `principal`."""
        self._forget_expired()
        return sum(1 for s in self._sessions.values() if s.principal == principal)

    def _forget_expired(self) -> None:
        """Drop sessions idle past the idle timeout: the SDK has ended them by now."""
        limit = self._clock() - self._idle
        for sid in [sid for sid, s in self._sessions.items() if s.busy == 0 and s.used < limit]:
            del self._sessions[sid]
