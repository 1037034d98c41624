"""The MCP session book's own rules, with a clock the test moves: who is ended at the cap, that
a busy session never is, that the idle timeout frees a slot, and what a dead token ends."""

from __future__ import annotations

import pytest

from bot.surfaces.mcp.sessions import SessionBook, SessionsBusy, token_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def opened(book: SessionBook, principal: str, session_id: str, token: str = "t") -> str | None:  # noqa: S107
    victim = book.admit(principal)
    book.opened(principal, session_id, token_key(token))
    return victim


def test_at_the_cap_the_least_recently_used_idle_session_makes_room() -> None:
    clock = Clock()
    book = SessionBook(per_identity=2, idle_seconds=300, clock=clock)
    assert opened(book, "a", "s1") is None
    clock.now = 1
    assert opened(book, "a", "s2") is None
    clock.now = 2
    assert book.begin("s1")
    book.finish("s1", gone=False)  # s1 used last: s2 is the least recently used
    assert opened(book, "a", "s3") == "s2"
    assert opened(book, "b", "s4") is None  # another identity has its own cap
    assert (book.count("a"), book.count("b")) == (2, 1)


def test_busy_sessions_are_never_ended_to_make_room() -> None:
    book = SessionBook(per_identity=1, idle_seconds=300, clock=Clock())
    opened(book, "a", "s1")
    assert book.begin("s1")
    with pytest.raises(SessionsBusy):
        book.admit("a")
    assert book.count("a") == 1
    book.finish("s1", gone=False)
    assert book.admit("a") == "s1"


def test_openings_in_flight_count_against_the_cap() -> None:
    book = SessionBook(per_identity=1, idle_seconds=300, clock=Clock())
    assert book.admit("a") is None
    with pytest.raises(SessionsBusy):  # the first opening is not answered yet
        book.admit("a")
    book.opened("a", None, token_key("t"))  # refused by the SDK: nothing opened
    assert book.admit("a") is None


def test_the_idle_timeout_frees_a_slot_and_a_dead_token_ends_only_its_sessions() -> None:
    clock = Clock()
    book = SessionBook(per_identity=3, idle_seconds=300, clock=clock)
    opened(book, "a", "s1", token="old")
    opened(book, "a", "s2", token="new")
    opened(book, "b", "s3", token="theirs")
    assert book.forget_token(token_key("old")) == [("s1", "a")]
    assert book.begin("s1") is False
    clock.now = 301
    assert (book.count("a"), book.count("b")) == (0, 0)
