"""Tests for parsing and printing durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidDurationError, InvalidInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("45m", timedelta(minutes=45), id="minutes"),
        pytest.param("2h", timedelta(hours=2), id="hours"),
        pytest.param("1d", timedelta(days=1), id="days"),
        pytest.param("1h30m", timedelta(minutes=90), id="hours-and-minutes"),
        pytest.param("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), id="all-units"),
        pytest.param("90m", timedelta(minutes=90), id="minutes-over-an-hour"),
        pytest.param("1H30M", timedelta(minutes=90), id="upper-case"),
        pytest.param("  15m  ", timedelta(minutes=15), id="surrounding-spaces"),
        pytest.param("1h 30m", timedelta(minutes=90), id="space-between-parts"),
        pytest.param("1 h", timedelta(hours=1), id="space-before-unit"),
        pytest.param("007m", timedelta(minutes=7), id="leading-zeros"),
        pytest.param("366d", timedelta(days=366), id="exactly-the-maximum"),
        pytest.param("8784h", timedelta(days=366), id="maximum-in-hours"),
        pytest.param("1s", timedelta(seconds=1), id="smallest"),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "is not a duration", id="empty"),
        pytest.param("   ", "is not a duration", id="blank"),
        pytest.param("1", "is not a duration", id="no-unit"),
        pytest.param("h", "is not a duration", id="no-number"),
        pytest.param("1w", "is not a duration", id="unknown-unit"),
        pytest.param("1.5h", "is not a duration", id="decimal"),
        pytest.param("-1h", "is not a duration", id="negative"),
        pytest.param("+1h", "is not a duration", id="plus-sign"),
        pytest.param("1hour", "is not a duration", id="spelt-unit"),
        pytest.param("soon", "is not a duration", id="word"),
        pytest.param("1h-30m", "is not a duration", id="punctuation-between-parts"),
        pytest.param("1000000m", "is not a duration", id="seven-digits"),
        pytest.param("1m" * 17, "is not a duration", id="longer-than-32-chars"),
        pytest.param("0m", "longer than zero", id="zero"),
        pytest.param("0h0m0s", "longer than zero", id="zero-in-parts"),
        pytest.param("367d", "longer than a year", id="over-a-year"),
        pytest.param("8785h", "longer than a year", id="over-a-year-in-hours"),
        pytest.param("366d1s", "longer than a year", id="one-second-over"),
    ],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidDurationError, match=message) as caught:
        parse_duration(text)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.code == "invalid_duration"


def test_parse_duration_error_quotes_at_most_40_characters() -> None:
    text = "z" * 100
    with pytest.raises(InvalidDurationError) as caught:
        parse_duration(text)
    assert f"'{'z' * 40}' is not a duration" in str(caught.value)
    assert "z" * 41 not in str(caught.value)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        pytest.param(timedelta(seconds=20), "20s", id="seconds"),
        pytest.param(timedelta(minutes=45), "45m", id="minutes"),
        pytest.param(timedelta(hours=8), "8h", id="hours"),
        pytest.param(timedelta(minutes=90), "1h30m", id="hours-and-minutes"),
        pytest.param(timedelta(days=2), "2d", id="days"),
        pytest.param(timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s", id="all-units"),
        pytest.param(timedelta(hours=1, seconds=5), "1h5s", id="gap-in-units"),
        pytest.param(timedelta(seconds=61, milliseconds=900), "1m1s", id="fraction-dropped"),
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(milliseconds=500), "0s", id="under-a-second"),
        pytest.param(timedelta(minutes=-5), "0s", id="negative"),
    ],
)
def test_format_duration(duration: timedelta, expected: str) -> None:
    assert format_duration(duration) == expected


@pytest.mark.parametrize(
    "duration",
    [
        timedelta(seconds=1),
        timedelta(minutes=5),
        timedelta(minutes=90),
        timedelta(hours=25, seconds=7),
        timedelta(days=366),
    ],
    ids=["1s", "5m", "90m", "25h7s", "366d"],
)
def test_format_then_parse_round_trips(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration
