"""Property tests: the grammar and durations answer any text with a result or a clear error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.grammar.access import MAX_COMMAND, USAGE, parse
from bot.domain.durations import format_duration, parse_duration
from bot.domain.errors import InvalidDurationError, InvalidInputError

PROPERTIES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words that steer the parser into each branch, mixed with hostile text.
KEYWORDS = [*USAGE, "for", "because", "on", "set", "show", "backup", "team", "issue", "/leash"]
HOSTILE = [
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "\n",
    "\t",
    "\u00a0",
    "İ",
    "ﬀ",
    "\U0001d7d9h",
    "٣m",
]
piece = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(HOSTILE),
    st.from_regex(r"\d{1,8}[smhdSMHD]", fullmatch=True),
    st.text(max_size=12),
)
command_like = st.lists(piece, max_size=12).map(" ".join)


@PROPERTIES
@given(st.one_of(st.text(max_size=120), command_like))
def test_any_text_parses_or_raises_a_clear_input_error(text: str) -> None:
    try:
        parse(text)
    except InvalidInputError as error:
        message = str(error)
        assert message.strip(), "an input error must say what is wrong"
        assert len(message) < 1000, "the message must not echo unbounded input"


@PROPERTIES
@given(st.text(min_size=1, max_size=50).map(lambda s: s * (MAX_COMMAND // len(s) + 1)))
def test_text_over_the_limit_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(InvalidInputError, match="longer than 4000 characters"):
        parse(text)


durations = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=366)).map(
    lambda d: timedelta(seconds=int(d.total_seconds()) or 1)
)


@PROPERTIES
@given(durations)
def test_format_then_parse_gives_the_same_duration(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration


@PROPERTIES
@given(st.integers(min_value=1, max_value=999_999))  # the grammar takes up to six digits
def test_parse_then_format_is_canonical(seconds: int) -> None:
    text = f"{seconds}s"
    parsed = parse_duration(text)
    assert parsed == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parsed)) == parsed


@PROPERTIES
@given(st.integers(min_value=1, max_value=999_999), st.sampled_from("smhd"))
def test_negative_and_over_a_year_are_refused(number: int, unit: str) -> None:
    with pytest.raises(InvalidDurationError):
        parse_duration(f"-{number}{unit}")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if number * scale > 366 * 86400:
        with pytest.raises(InvalidDurationError, match="longer than a year"):
            parse_duration(f"{number}{unit}")


@pytest.mark.parametrize(
    "text",
    [
        "0m",
        "0s0m",
        "00h",
        "9999999h",
        "1" * 40 + "s",
        "1h1h",
        "1.5h",
        "1 h 1",
        "٣m",
        "\U0001d7d9h",
        "",
    ],
    ids=[
        "zero",
        "zero parts",
        "zero padded",
        "overflow digits",
        "over 32 characters",
        "repeated unit",
        "fraction",
        "dangling number",
        "arabic-indic digit",
        "mathematical digit",
        "empty",
    ],
)
def test_garbage_durations_are_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidDurationError) as refused:
        parse_duration(text)
    assert "duration" in str(refused.value) or "unit" in str(refused.value)


@PROPERTIES
@given(st.text(max_size=64))
def test_any_duration_text_parses_within_bounds_or_is_refused(text: str) -> None:
    try:
        parsed = parse_duration(text)
    except InvalidDurationError as error:
        message = str(error)
        assert message
    else:
        assert timedelta(0) < parsed <= timedelta(days=366)
