"""The names a person goes by, in one canonical form each, so that rules compare people.

A handle key is `<kind>:<value>`: `email:carol@example.test`, `slack:U0ADMIN`,
`teams:29:1abc…`, `entra:<object id>`, `name:secops` (a console name or any other plain name),
`agent:<identity id>`. Names in the policy file and in the inventory (owners, admins, bots)
are turned into keys the same way as the handles a surface reports, so `Carol.Owner@Example.test`
in the policy and `carol.owner@example.test` from Slack are one key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from enum import StrEnum


class HandleKind(StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"
    ENTRA = "entra"
    NAME = "name"
    AGENT = "agent"
    SYSTEM = "system"


# Handles that name one human across surfaces: two handles sharing one of these are one person.
ANCHORS = frozenset({HandleKind.EMAIL, HandleKind.ENTRA})

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
_TEAMS_USER = re.compile(r"(?:29|28|8):[\w.:\-]{1,200}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def fold(text: str) -> str:
    """NFKC-normalise, trim and case-fold: a full-width or upper-case e-mail is the plain one."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def key(kind: HandleKind, value: str) -> str:
    """The canonical key of one handle of a known kind."""
    if kind in (HandleKind.SLACK,):
        return f"{kind}:{unicodedata.normalize('NFKC', value).strip().upper()}"
    if kind in (HandleKind.TEAMS, HandleKind.AGENT):
        return f"{kind}:{unicodedata.normalize('NFKC', value).strip()}"
    return f"{kind}:{fold(value)}"


def kind_of(handle_key: str) -> HandleKind:
    return HandleKind(handle_key.partition(":")[0])


def key_for_name(name: str) -> str:
    """The key a name typed by a person or written in the policy file stands for.

    A name with an `@` is an e-mail; `U…`/`W…` a Slack user id; a GUID an Entra object id;
    `29:…` a Teams user id; anything else is a plain name (console users, policy names).
    """
    text = unicodedata.normalize("NFKC", name).strip()
    if _EMAIL.fullmatch(text):
        return key(HandleKind.EMAIL, text)
    if _SLACK_USER.fullmatch(text):
        return key(HandleKind.SLACK, text)
    if _GUID.fullmatch(text):
        return key(HandleKind.ENTRA, text)
    if _TEAMS_USER.fullmatch(text):
        return key(HandleKind.TEAMS, text)
    return key(HandleKind.NAME, text)


def keys_for(names: Iterable[str | None]) -> frozenset[str]:
    """The keys of several names (empty and missing names are skipped)."""
    return frozenset(key_for_name(n) for n in names if n and n.strip())


def anchored(keys: Iterable[str]) -> bool:
    """Say whether these keys include one that ties a person across surfaces."""
    return any(kind_of(k) in ANCHORS for k in keys)


def namespaces(keys: Iterable[str]) -> frozenset[HandleKind]:
    return frozenset(kind_of(k) for k in keys)
