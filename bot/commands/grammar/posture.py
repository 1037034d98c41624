"""Least-privilege commands: scans, unused permissions, restrict, quarantine, guardrails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from bot.commands.usage_error import UsageError, usage_error

USAGE = {
    "scan": "scan now [<identity>]",
    "unused": "unused <identity>",
    "restrict": "restrict <identity>  (shows what would be denied, then Confirm)",
    "unrestrict": "unrestrict <identity>",
    "quarantine": "quarantine <identity> because <reason>",
    "release": "release <identity>",
    "keep": "keep <identity>  (silence its findings for 30 days)",
    "disown": "disown <identity>  (not mine)",
    "guardrail": "guardrail show <identity>  |  guardrail apply [<identity>] [dry-run]",
    "digest": "digest now <team>",
}


@dataclass(frozen=True, slots=True)
class ScanCommand:
    identity: str | None


@dataclass(frozen=True, slots=True)
class UnusedCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class RestrictCommand:
    identity: str
    confirm: str | None = None


@dataclass(frozen=True, slots=True)
class UnrestrictCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class QuarantineCommand:
    identity: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class KeepCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class DisownCommand:
    identity: str


@dataclass(frozen=True, slots=True)
class GuardrailCommand:
    action: str
    identity: str | None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DigestCommand:
    team: str


LeastPrivilegeCommand = (
    ScanCommand
    | UnusedCommand
    | RestrictCommand
    | UnrestrictCommand
    | QuarantineCommand
    | ReleaseCommand
    | KeepCommand
    | DisownCommand
    | GuardrailCommand
    | DigestCommand
)

LEAST_PRIVILEGE_COMMANDS = get_args(LeastPrivilegeCommand)


def _error(verb: str, problem: str) -> UsageError:
    return usage_error(USAGE[verb], problem)


def _identity(verb: str, rest: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise _error(verb, "Name exactly one identity.")
    return words[0]


def _scan(rest: str) -> ScanCommand:
    words = rest.split()
    if not words or words[0].lower() != "now" or len(words) > 2:
        raise _error("scan", "Say `scan now`, optionally with one identity.")
    return ScanCommand(words[1] if len(words) == 2 else None)


def _restrict(rest: str) -> RestrictCommand:
    words = rest.split()
    if len(words) == 1:
        return RestrictCommand(words[0])
    if len(words) == 3 and words[1].lower() == "confirm":
        return RestrictCommand(words[0], words[2])
    raise _error("restrict", "Name exactly one identity.")


def _quarantine(rest: str) -> QuarantineCommand:
    words = rest.split(" ")
    lowered = [word.lower() for word in words]
    if "because" not in lowered:
        raise _error("quarantine", "Say why (because …).")
    at = lowered.index("because")
    head, reason = [w for w in words[:at] if w], " ".join(words[at + 1 :]).strip()
    if len(head) != 1:
        raise _error("quarantine", "Name exactly one identity.")
    if not reason:
        raise _error("quarantine", "Say why (because …).")
    return QuarantineCommand(head[0], reason)


def _guardrail(rest: str) -> GuardrailCommand:
    words = rest.split()
    action = words[0].lower() if words else ""
    if action == "show" and len(words) == 2:
        return GuardrailCommand("show", words[1])
    if action == "apply" and len(words) <= 3:
        options = [w for w in words[1:] if w.lower() in ("dry-run", "--dry-run")]
        targets = [w for w in words[1:] if w not in options]
        if len(targets) <= 1:
            return GuardrailCommand("apply", targets[0] if targets else None, bool(options))
    raise _error("guardrail", "Say `show <identity>` or `apply [<identity>] [dry-run]`.")


def _digest(rest: str) -> DigestCommand:
    words = rest.split()
    if len(words) != 2 or words[0].lower() != "now":
        raise _error("digest", "Say `digest now` and the team.")
    return DigestCommand(words[1])


PARSERS: dict[str, Callable[[str], LeastPrivilegeCommand]] = {
    "scan": _scan,
    "unused": lambda rest: UnusedCommand(_identity("unused", rest)),
    "restrict": _restrict,
    "unrestrict": lambda rest: UnrestrictCommand(_identity("unrestrict", rest)),
    "quarantine": _quarantine,
    "release": lambda rest: ReleaseCommand(_identity("release", rest)),
    "keep": lambda rest: KeepCommand(_identity("keep", rest)),
    "disown": lambda rest: DisownCommand(_identity("disown", rest)),
    "guardrail": _guardrail,
    "digest": _digest,
}
