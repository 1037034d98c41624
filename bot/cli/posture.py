"""`leash scan`, `leash digest` and `leash guardrail`: least privilege from the command line."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click
from sqlmodel import col, func, select

from bot.app import Leash, build
from bot.cli import database, progress
from bot.cli.columns import SCAN, ScanRow
from bot.cli.exit_codes import FINDINGS
from bot.cli.help import LeashGroup
from bot.cli.listing import format_option, output_width, render
from bot.config import ConfigError, Settings, load_settings
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.findings import Risk
from bot.domain.messages import Reply
from bot.domain.rules import GuardrailMode
from bot.domain.states import ActorKind
from bot.posture.usage_scan import ScanSummary
from bot.store.engine import migrate
from bot.store.tables import Identity, UsageScan
from bot.surfaces.console import format_reply

T = TypeVar("T")
CLI_ACTOR = Actor(name="cli", kind=ActorKind.SYSTEM, origin="cli")


async def _with_leash(work: Callable[[Leash], Awaitable[T]], *, existing: bool = False) -> T:
    """Run `work` on a started-up Leash; `existing`: only on a database already there (a dry
    run must not leave a new one behind)."""
    try:
        settings: Settings = load_settings()
        if existing:
            database.require_existing(settings)
        leash = build(settings)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    try:
        await migrate(leash.engine)
        return await work(leash)
    except LeashError as error:
        raise click.ClickException(str(error)) from None
    finally:
        await leash.close()


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """What `leash scan` says after its rows: the counts, messages sent, and each failure."""

    summary: ScanSummary
    undiscovered: dict[str, str]  # discovery: scope (account, project) -> why
    told: int | None

    @property
    def failed(self) -> bool:
        return bool(self.summary.failures or self.undiscovered)

    def lines(self) -> list[str]:
        """The counts, then one `failed:` line per account or identity that was not read."""
        done = self.summary
        lines = [
            f"{done.scanned} scanned, {done.unused_total} unused permissions, "
            f"{done.inactive} inactive, usage unknown for {done.unknown}."
        ]
        if self.told is not None:
            lines.append(f"{self.told} owner message(s) sent.")
        lines += [f"failed: could not discover {s}: {why}" for s, why in self.undiscovered.items()]
        lines += [
            f"failed: could not read {account.scope} ({account.provider}, "
            f"{_identities(len(account.identities))}): {account.reason}"
            for account in done.unreadable
        ]
        lines += [f"failed: {name}: {why}" for name, why in done.failed_elsewhere.items()]
        return lines


def _identities(count: int) -> str:
    return f"{count} identit{'y' if count == 1 else 'ies'}"


def _needs_action(scan: UsageScan, identity: Identity | None, now: datetime) -> bool:
    """Unused permissions or inactivity (risk above low), unless the owner chose to keep it."""
    kept = identity is not None and identity.keep_until is not None and identity.keep_until > now
    return scan.risk != Risk.LOW and not kept


async def _scan_ids(leash: Leash) -> int:
    """The newest stored scan's id: rows above it are this run's."""
    async with leash.context.sessions() as session:
        newest = (await session.exec(select(func.max(UsageScan.id)))).one()
    return int(newest or 0)


async def _present(leash: Leash) -> int:
    async with leash.context.sessions() as session:
        query = select(func.count()).select_from(Identity).where(col(Identity.present))
        return int((await session.exec(query)).one())


async def _scan(
    leash: Leash, reference: str | None, *, notify: bool
) -> tuple[list[ScanRow], ScanOutcome]:
    """Discover, scan (all, or the identity `reference` names), and tabulate this run."""
    least_privilege = leash.lifecycle.least_privilege
    report = await progress.discover(leash)
    ids: list[str] | None = None
    if reference is not None:
        ids = [(await leash.lifecycle.queries.resolve(reference)).id]
    before = await _scan_ids(leash)
    total = len(ids) if ids is not None else await _present(leash)

    async def scanned() -> int:
        return await _scan_ids(leash) - before

    summary = await progress.track(
        least_privilege.scan(ids), "Scanning usage", total=total, completed=scanned
    )
    told = await least_privilege.notify_owners() if notify else None
    table = await leash.lifecycle.queries.scan_table(ids)
    now = leash.context.clock.now()
    rows = [
        ScanRow(identity_id, identity, row, _needs_action(row, identity, now))
        for identity_id, row in table.scans.items()
        if (row.id or 0) > before
        for identity in [table.identities[identity_id]]
    ]
    rows.sort(key=_scan_order)
    return rows, ScanOutcome(summary, dict(report.failures), told)


def _scan_order(row: ScanRow) -> tuple[int, str, str]:
    """Most unused first, then by name and account."""
    name = row.identity.name if row.identity else row.identity_id
    return (-row.scan.unused_count, name, row.identity.account if row.identity else "")


@click.command()
@click.option("--identity", "reference", default=None, help="Scan one identity (ARN or name).")
@click.option("--notify/--no-notify", default=False, help="Send the owners' nightly messages.")
@format_option()
def scan(reference: str | None, notify: bool, fmt: str) -> None:
    """Discover, then compare granted with used permissions: the nightly scan, now.

    One row per identity scanned, with its account and ARN (role names repeat across
    accounts). Exit status 1 when a row needs action (unused permissions or inactive, and not
    kept by its owner) or anything could not be read; each failure is one `failed:` line.
    """

    async def work(leash: Leash) -> tuple[list[ScanRow], ScanOutcome]:
        with progress.failures_said_once():
            return await _scan(leash, reference, notify=notify)

    rows, outcome = asyncio.run(_with_leash(work))
    click.echo(render(SCAN, rows, fmt, width=output_width()))
    # After a table, for people; after json or csv, on stderr, so stdout stays parseable.
    for line in outcome.lines():
        click.echo(line, err=fmt != "table")
    if outcome.failed or any(row.needs_action for row in rows):
        sys.exit(FINDINGS)


@click.command()
@click.option("--team", required=True, help="The team (as in the policy file's [teams]).")
@click.option("--dry-run", is_flag=True, help="Print the digest instead of posting it.")
def digest(team: str, dry_run: bool) -> None:
    """Build a team's weekly digest; post it to the team's channel unless --dry-run."""

    async def work(leash: Leash) -> Reply:
        return await leash.lifecycle.least_privilege.digest(team, post=not dry_run)

    reply = asyncio.run(_with_leash(work))
    saved = []  # the chart is written first, so the digest names where it is
    for attachment in reply.attachments:
        path = Path(tempfile.gettempdir()) / attachment.filename
        path.write_bytes(attachment.content)
        saved.append(path)
    click.echo(format_reply(reply, saved=saved))
    where = " (its chart is the file named above)" if saved else ""
    click.echo(
        f"Dry run: not posted to the team's channel{where}."
        if dry_run
        else "Posted to the team's channel."
    )


@click.group(cls=LeashGroup)
def guardrail() -> None:
    """The default-deny of privileged actions on agents."""


@guardrail.command()
@click.option("--identity", "reference", default=None, help="One identity (default: all agents).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def apply(reference: str | None, dry_run: bool) -> None:
    """Write each agent's guardrail (as the policy file's mode says), or show the changes."""

    async def work(leash: Leash) -> tuple[str, bool]:
        mode = leash.rules.least_privilege.guardrail
        if mode is GuardrailMode.OFF and not dry_run:
            raise click.ClickException("least_privilege.guardrail is off in the policy file.")
        run, _ = await leash.lifecycle.least_privilege.apply_guardrails(
            reference, actor=CLI_ACTOR, mode=mode, dry_run=dry_run
        )
        verb = "would change" if dry_run or mode is not GuardrailMode.ENFORCE else "written"
        lines = [f"{verb}: {name}" for name in (*run.written, *run.reported)]
        lines += [f"failed: {failure}" for failure in run.failures]
        lines.append(
            f"{len(run.written) + len(run.reported)} {verb}, {run.unchanged} unchanged, "
            f"{len(run.failures)} failed."
        )
        return "\n".join(lines), bool(run.failures)

    text, failed = asyncio.run(_with_leash(work, existing=dry_run))
    click.echo(text)
    if failed:
        sys.exit(FINDINGS)
