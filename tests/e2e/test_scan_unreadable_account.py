"""A scan that cannot read an account says so once, in words, not once per identity.

The account here is one the database remembers and the organisation no longer has (as a
database kept from a sandbox with other account ids did): Leash's AssumeRole into it is denied.
"""

from __future__ import annotations

import logging

import pytest

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from tests.e2e.remembered import remember_roles

ADMIN = Actor("secops", ActorKind.USER, "console")
GONE = "999988887777"


async def test_an_unreadable_account_is_one_line_of_the_reply_and_one_warning(
    leash: Leash, caplog: pytest.LogCaptureFixture
) -> None:
    await remember_roles(leash, GONE, "old-agent-1", "old-agent-2", "old-agent-3")
    caplog.set_level(logging.DEBUG, logger="leash.scan")

    reply = await leash.handler.handle_text("scan now", actor=ADMIN)

    about_gone = [line for line in reply.lines if GONE in line]
    assert about_gone == [
        f"Could not read account {GONE} (aws, 3 identities): access denied: Leash's role "
        "there is missing, does not trust Leash, or lacks a permission (AccessDenied)."
    ], reply.lines
    assert not [line for line in reply.lines if "old-agent" in line], reply.lines
    assert not [line for line in reply.lines if "arn:aws" in line], reply.lines
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings if GONE in r.getMessage()] == [
        f"usage scan: could not read account {GONE} in aws (3 identities): access denied: "
        "Leash's role there is missing, does not trust Leash, or lacks a permission "
        "(AccessDenied)"
    ]
    assert not [r for r in warnings if "AssumeRole" in r.getMessage()]
    details = [
        r for r in caplog.records if r.levelno == logging.DEBUG and "old-agent" in r.msg % r.args
    ]
    assert len(details) == 3


async def test_an_identity_gone_from_a_readable_account_is_a_line_of_its_own(
    leash: Leash,
) -> None:
    platform = leash.sandbox.account("platform").id if leash.sandbox else ""
    await remember_roles(leash, platform, "deleted-agent")

    reply = await leash.handler.handle_text("scan now", actor=ADMIN)

    assert [line for line in reply.lines if "deleted-agent" in line] == [
        "Could not read the usage of deleted-agent: not found: it no longer exists in the "
        "cloud (NoSuchEntity)."
    ], reply.lines
    assert not [line for line in reply.lines if line.startswith("Could not read account")]
