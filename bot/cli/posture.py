"""`leash scan`, `leash digest` and `leash guardrail`: least privilege from the command line."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from bot.app import Leash, build
from bot.config import ConfigError, Settings, load_settings
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.domain.rules import GuardrailMode
from bot.domain.states import ActorKind
from bot.store.engine import migrate
from bot.surfaces.console import format_reply

T = TypeVar("T")
CLI_ACTOR = Actor(name="cli", kind=ActorKind.SYSTEM, origin="cli")


async def _with_leash(work: Callable[[Leash], Awaitable[T]]) -> T:
    try:
        settings: Settings = load_settings()
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


@click.command()
@click.option("--identity", "reference", default=None, help="Scan one identity (ARN or name).")
@click.option("--notify/--no-notify", default=False, help="Send the owners' nightly messages.")
def scan(reference: str | None, notify: bool) -> None:
    """Discover, then compare granted with used permissions (the nightly scan, now)."""

    async def work(leash: Leash) -> str:
        lp = leash.lifecycle.least_privilege
        click.echo("Discovering identities…", err=True)
        await leash.discover()
        ids: list[str] | None = None
        if reference is not None:
            ids = [(await leash.lifecycle.queries.resolve(reference)).id]
        click.echo("Scanning usage…", err=True)
        summary = await lp.scan(ids)
        if notify:
            told = await lp.notify_owners()
            click.echo(f"{told} owner message(s) sent.", err=True)
        table = await leash.lifecycle.queries.scan_table(ids)
        scans, names = table.scans, table.identities
        lines = [f"{'identity':40} {'risk':6} {'unused':>6} {'unknown':>7}  inactive  status"]
        for identity_id, row in sorted(
            scans.items(), key=lambda item: (-item[1].unused_count, item[0])
        ):
            identity = names[identity_id]
            name = identity.name if identity else identity_id
            lines.append(
                f"{name[:40]:40} {row.risk:6} {row.unused_count:>6} {len(row.unknown):>7}  "
                f"{'yes' if row.inactive else 'no':8}  {row.status}"
            )
        lines.append(
            f"{summary.scanned} scanned, {summary.unused_total} unused permissions, "
            f"{summary.inactive} inactive, usage unknown for {summary.unknown}."
        )
        lines += [f"failed: {name}: {why}" for name, why in summary.failures.items()]
        return "\n".join(lines)

    click.echo(asyncio.run(_with_leash(work)))


@click.command()
@click.option("--team", required=True, help="The team (as in the policy file's [teams]).")
@click.option("--dry-run", is_flag=True, help="Print the digest instead of posting it.")
def digest(team: str, dry_run: bool) -> None:
    """Build a team's weekly digest; post it to the team's channel unless --dry-run."""

    async def work(leash: Leash) -> Reply:
        return await leash.lifecycle.least_privilege.digest(team, post=not dry_run)

    reply = asyncio.run(_with_leash(work))
    click.echo(format_reply(reply))
    for attachment in reply.attachments:
        path = Path(tempfile.gettempdir()) / attachment.filename
        path.write_bytes(attachment.content)
        click.echo(f"chart: {path}")


@click.group()
def guardrail() -> None:
    """The default-deny of privileged actions on agents."""


@guardrail.command()
@click.option("--identity", "reference", default=None, help="One identity (default: all agents).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def apply(reference: str | None, dry_run: bool) -> None:
    """Write each agent's guardrail (as the policy file's mode says), or show the changes."""

    async def work(leash: Leash) -> str:
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
        return "\n".join(lines)

    click.echo(asyncio.run(_with_leash(work)))
