"""The least-privilege commands parse into the right Command, and bad text is refused."""

from __future__ import annotations

import pytest

from bot.commands.grammar.access import USAGE, UsageError, parse
from bot.commands.grammar.posture import (
    DigestCommand,
    DisownCommand,
    GuardrailCommand,
    KeepCommand,
    QuarantineCommand,
    ReleaseCommand,
    RestrictCommand,
    ScanCommand,
    UnrestrictCommand,
    UnusedCommand,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scan now", ScanCommand(None)),
        ("/leash scan now forecast-agent", ScanCommand("forecast-agent")),
        ("unused forecast-agent", UnusedCommand("forecast-agent")),
        ("restrict forecast-agent", RestrictCommand("forecast-agent")),
        (
            "restrict forecast-agent confirm 0a1b2c3d4e5f",
            RestrictCommand("forecast-agent", "0a1b2c3d4e5f"),
        ),
        ("unrestrict forecast-agent", UnrestrictCommand("forecast-agent")),
        (
            "quarantine forecast-agent because it leaked a key",
            QuarantineCommand("forecast-agent", "it leaked a key"),
        ),
        ("QUARANTINE a BECAUSE b", QuarantineCommand("a", "b")),
        ("release forecast-agent", ReleaseCommand("forecast-agent")),
        ("keep forecast-agent", KeepCommand("forecast-agent")),
        ("disown forecast-agent", DisownCommand("forecast-agent")),
        ("guardrail show forecast-agent", GuardrailCommand("show", "forecast-agent")),
        ("guardrail apply", GuardrailCommand("apply", None)),
        ("guardrail apply dry-run", GuardrailCommand("apply", None, True)),
        ("guardrail apply x --dry-run", GuardrailCommand("apply", "x", True)),
        ("digest now ml-platform", DigestCommand("ml-platform")),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("scan", "scan now"),
        ("scan later x", "scan now"),
        ("scan now a b", "scan now"),
        ("unused", "one identity"),
        ("unused a b", "one identity"),
        ("restrict a b", "one identity"),
        ("restrict a confirm", "one identity"),
        ("quarantine forecast-agent", "because"),
        ("quarantine forecast-agent because", "because"),
        ("quarantine a b because c", "one identity"),
        ("release", "one identity"),
        ("guardrail", "show"),
        ("guardrail show", "show"),
        ("guardrail apply a b", "show"),
        ("digest ml-platform", "digest now"),
    ],
)
def test_bad_text_gets_the_usage(text: str, hint: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse(text)
    assert hint in str(raised.value)
    assert "Usage:" in str(raised.value)


def test_help_lists_the_new_commands() -> None:
    for verb in (
        "scan",
        "unused",
        "restrict",
        "unrestrict",
        "quarantine",
        "release",
        "guardrail",
        "digest",
    ):
        assert verb in USAGE
