"""What Leash says to people, independent of the chat platform that shows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ChoiceStyle(StrEnum):
    PRIMARY = "primary"
    DANGER = "danger"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: pressing it runs `command` (same grammar as typed commands) as the presser."""

    label: str
    command: str
    style: ChoiceStyle = ChoiceStyle.DEFAULT


@dataclass(frozen=True, slots=True)
class Section:
    """One item of a grouped message (e.g. one agent): a title, detail lines, its own buttons."""

    title: str
    lines: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a message, e.g. the digest's chart (PNG bytes)."""

    filename: str
    content: bytes
    title: str
    mime: str = "image/png"


@dataclass(frozen=True, slots=True)
class Mention:
    """Where a reply names a person by a handle Leash recorded for them, never by typed text.

    The person's name stands as plain text at [start, end) of the reply's `text` (`line` None)
    or of `lines[line]`; every surface can show it as it is. `handle` is its canonical key
    (bot.domain.handles, e.g. `slack:U0123ABCD`): a surface whose own handle it is may lay the
    span out as a mention of that person (Slack: a user element, shown as the display name).
    """

    handle: str
    line: int | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Reply:
    """A message: a headline, detail lines, grouped sections, buttons and attached files.

    Surfaces show `sections` after `lines`, each with its own buttons, and `choices` last.
    `mentions` mark the people it names in `text` and `lines` (see Mention).
    """

    text: str
    lines: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    ok: bool = True
    sections: tuple[Section, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[Mention, ...] = ()


class NoticeKind(StrEnum):
    APPROVAL_NEEDED = "approval_needed"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    APPROVAL_PROGRESS = "approval_progress"
    # A request's card as it now stands: surfaces that can redraw their posted copies in place
    # do (and post nothing); others show it to its recipients again.
    CARD_UPDATED = "card_updated"
    DECIDED = "decided"
    REQUEST_EXPIRED = "request_expired"
    GRANT_ACTIVE = "grant_active"
    GRANT_FAILED = "grant_failed"
    EXPIRING_SOON = "expiring_soon"
    REVOKED = "revoked"
    IRREVOCABLE = "irrevocable"
    UNOWNED = "unowned"
    ATTESTATION = "attestation"
    ATTESTATION_OVERDUE = "attestation_overdue"
    SCAN_FINDINGS = "scan_findings"
    ENFORCEMENT = "enforcement"
    DIGEST = "digest"
    UNDELIVERED = "undelivered"


@dataclass(frozen=True, slots=True)
class Notice:
    """A message Leash sends on its own initiative to one or more people."""

    kind: NoticeKind
    recipients: tuple[str, ...]
    reply: Reply
    request_id: str | None = None
    grant_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Set when only one chat platform may deliver it (a team's digest goes to its own channel).
    platform: str | None = None
