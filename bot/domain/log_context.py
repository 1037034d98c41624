"""The ids a log line is about (request, grant, identity, HTTP request), held in contextvars.

The domain binds them where it works on a request or grant; `bot.logs` puts them on every
record. Nothing here imports a logging library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_REQUEST_ID: ContextVar[str | None] = ContextVar("leash_request_id", default=None)
_GRANT_ID: ContextVar[str | None] = ContextVar("leash_grant_id", default=None)
_IDENTITY: ContextVar[str | None] = ContextVar("leash_identity", default=None)
_HTTP_REQUEST_ID: ContextVar[str | None] = ContextVar("leash_http_request_id", default=None)
_IN_WORK: ContextVar[bool] = ContextVar("leash_in_work", default=False)

_WORK = {"request_id": _REQUEST_ID, "grant_id": _GRANT_ID, "identity": _IDENTITY}
_ALL = {**_WORK, "http_request_id": _HTTP_REQUEST_ID}


@contextmanager
def about(
    *, request_id: str | None = None, grant_id: str | None = None, identity: str | None = None
) -> Iterator[None]:
    """Log the block as work on this request / grant / identity, and on nothing else.

    Ids the caller's context held for other work are hidden for the block (so a timer that
    inherited another grant's context cannot mislabel this one); the HTTP request id stays.
    Everything, ids `add`ed inside included, is restored when the block ends.
    """
    given = {"request_id": request_id, "grant_id": grant_id, "identity": identity}
    tokens = [(var, var.set(given[name])) for name, var in _WORK.items()]
    inside = _IN_WORK.set(True)
    try:
        yield
    finally:
        _IN_WORK.reset(inside)
        for var, token in reversed(tokens):
            var.reset(token)


def add(
    *, request_id: str | None = None, grant_id: str | None = None, identity: str | None = None
) -> None:
    """Name ids learnt while working inside an `about` block (which takes them off again).

    Outside one it does nothing: an id set there would stay on the task for good.
    """
    if not _IN_WORK.get():
        return
    given = {"request_id": request_id, "grant_id": grant_id, "identity": identity}
    for name, value in given.items():
        if value is not None:
            _WORK[name].set(value)


@contextmanager
def http_request(http_request_id: str) -> Iterator[None]:
    """Log the block as part of handling one HTTP request."""
    token = _HTTP_REQUEST_ID.set(http_request_id)
    try:
        yield
    finally:
        _HTTP_REQUEST_ID.reset(token)


def current() -> dict[str, str]:
    """The ids bound now, by field name (`request_id`, `grant_id`, ...); unbound ones left out."""
    return {name: value for name, var in _ALL.items() if (value := var.get()) is not None}


def detached(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `function` with no ids bound, e.g. to arm a timer that outlives this work.

    Timers and tasks keep a copy of the context they were created in; without this a revoke
    timer armed while applying grant A could log its own lines as grant A's.
    """
    context = copy_context()

    def unbound() -> T:
        for var in _ALL.values():
            var.set(None)
        _IN_WORK.set(False)
        return function(*args, **kwargs)

    return context.run(unbound)
