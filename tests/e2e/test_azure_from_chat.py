"""Azure from chat: PIM schedules that end by themselves, even with Leash stopped, and plain
role assignments (no PIM licence) that Leash's sweep removes after a restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState
from bot.inventory.ownership import OwnerChange
from cloud.sandbox import Sandbox
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.azure.seed import ETL, TRIAGE
from tests.conftest import make_rules
from tests.e2e.helpers import eventually, grant
from tests.fakes.notifier import RecordingNotifier

OWNER = Actor("alice@example.com", ActorKind.USER, "test")
ADMIN = Actor("secops", ActorKind.USER, "test")
DEV = Actor("dev", ActorKind.USER, "test")
BLOB_READER = "Storage Blob Data Reader"


def _leash(database_url: str, sandbox: Sandbox, notifier: RecordingNotifier) -> Leash:
    return build(
        Settings(database_url=database_url, sweep_seconds=0.5),
        sandbox=sandbox,
        notifiers=[notifier],
        rules=make_rules(admins=["secops"]),
    )


def _grants_of(emulator: AzureEmulator, principal: str) -> list[dict[str, object]]:
    return [
        a
        for a in emulator.role_assignments()
        if a["principalId"] == principal and a["roleName"] == BLOB_READER
    ]


async def _approved(leash: Leash, identity: str, duration: str, approver: Actor) -> str:
    reply = await leash.handler.handle_text(
        f"request {identity} s3-read for {duration} because reading the blobs", actor=DEV
    )
    assert reply.ok, reply.text
    approved = await leash.handler.handle_text(f"approve {reply.text.split()[1]}", actor=approver)
    assert approved.ok, approved.text
    return next(word for word in approved.text.split() if word.startswith("g-"))


async def test_a_pim_grant_ends_by_itself_even_with_leash_stopped(
    database_url: str, azure_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    emulator = azure_sandbox.azure
    assert emulator is not None
    leash = _leash(database_url, azure_sandbox, notifier)
    await leash.start()
    try:
        grant_id = await _approved(leash, "support-triage-az-agent", "10m", OWNER)
        (card,) = notifier.of_kind(NoticeKind.APPROVAL_NEEDED)
        assert "Why: expiry: Azure ends it by itself (a PIM schedule with an expiration)" in (
            card.reply.lines
        )
        (assignment,) = _grants_of(emulator, TRIAGE)
        assert assignment["viaPim"] is True
        record = await grant(leash, grant_id)
        assert record.mechanism == "azure-pim-schedule"
    finally:
        await leash.close()  # Leash is gone; only Azure's own schedule is left to end it

    emulator.set_now(record.expires_at + timedelta(seconds=1))
    assert _grants_of(emulator, TRIAGE) == []


async def test_without_pim_the_plain_assignment_is_removed_by_the_sweep_after_a_restart(
    database_url: str, azure_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    emulator = azure_sandbox.azure
    assert emulator is not None
    first = _leash(database_url, azure_sandbox, notifier)
    await first.start()
    await first.lifecycle.owners.set("etl-runner-sp", OwnerChange(OWNER.name), actor=ADMIN)
    try:
        grant_id = await _approved(first, "etl-runner-sp", "2s", OWNER)
        (card,) = notifier.of_kind(NoticeKind.APPROVAL_NEEDED)
        assert any("Leash ends it (a plain role assignment" in line for line in card.reply.lines)
        (assignment,) = _grants_of(emulator, ETL)
        assert assignment["viaPim"] is False
    finally:
        # Killed before the expiry: nothing revokes it now, and its scheduler lock goes with it.
        await first.leadership.stop()
        await first.engine.dispose()

    await asyncio.sleep(2.2)  # past the grant's expiry, with no Leash running
    assert len(_grants_of(emulator, ETL)) == 1  # Azure does not end a plain assignment

    second = _leash(database_url, azure_sandbox, notifier)
    await second.start()
    try:

        async def revoked() -> bool:
            return (await grant(second, grant_id)).state == GrantState.REVOKED

        assert await eventually(revoked, within=15)
        assert _grants_of(emulator, ETL) == []
    finally:
        await second.close()
