"""`leash grants`, `leash identities` and `leash requests`: read-only listings.

They read the database that is there and never create or migrate one (`bot.cli.database`);
every row is listed (no page limit), in `--format table|json|csv` (`bot.cli.listing`).
"""

from __future__ import annotations

import asyncio

import click
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import build
from bot.cli import columns, database, progress
from bot.cli.listing import format_option, output_width, render
from bot.config import ConfigError, Settings, load_settings
from bot.domain.states import LIVE_GRANT_STATES, RequestState
from bot.inventory import registry
from bot.store.engine import migrate
from bot.store.tables import AccessRequest, Grant, Identity


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include ended grants.")
@format_option()
def grants(show_all: bool, fmt: str) -> None:
    """List live grants (with --all, ended ones too), newest first."""

    async def work(session: AsyncSession) -> list[columns.GrantRow]:
        query = (
            select(Grant, Identity)
            .join(Identity, col(Identity.id) == col(Grant.identity_id))
            .order_by(col(Grant.created_at).desc(), col(Grant.id))
        )
        if not show_all:
            query = query.where(col(Grant.state).in_(LIVE_GRANT_STATES))
        return [(grant, identity) for grant, identity in (await session.exec(query)).all()]

    rows = database.read(_settings(), work)
    click.echo(render(columns.GRANTS, rows, fmt, width=output_width()))


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include decided requests.")
@format_option()
def requests(show_all: bool, fmt: str) -> None:
    """List pending access requests (with --all, decided ones too), newest first."""

    async def work(session: AsyncSession) -> list[columns.RequestRow]:
        query = (
            select(AccessRequest, Identity)
            .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
            .order_by(col(AccessRequest.created_at).desc(), col(AccessRequest.id))
        )
        if not show_all:
            query = query.where(col(AccessRequest.state) == RequestState.PENDING)
        return [(request, identity) for request, identity in (await session.exec(query)).all()]

    rows = database.read(_settings(), work)
    click.echo(render(columns.REQUESTS, rows, fmt, width=output_width()))


@click.command()
@format_option()
@click.option("--unowned", is_flag=True, help="Only identities without an owner.")
@click.option("--agents", is_flag=True, help="Only AI agents.")
@click.option("--refresh", is_flag=True, help="Run discovery first (LEASH_CLOUD decides where).")
def identities(fmt: str, unowned: bool, agents: bool, refresh: bool) -> None:
    """List the inventory of non-human identities."""
    settings = _settings()
    if refresh:  # discovery writes: it may create and migrate the database
        asyncio.run(_refresh(settings))

    async def work(session: AsyncSession) -> list[columns.IdentityRow]:
        return await registry.search(None, session=session, limit=100_000)

    selected = [
        (identity, ownership)
        for identity, ownership in database.read(settings, work)
        if (not unowned or ownership is None or ownership.primary_owner is None)
        and (not agents or identity.classification == "ai_agent")
    ]
    click.echo(render(columns.IDENTITIES, selected, fmt, width=output_width()))


async def _refresh(settings: Settings) -> None:
    try:
        leash = build(settings)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    try:
        await migrate(leash.engine)
        with progress.failures_said_once():
            report = await progress.discover(leash)
        for scope, why in report.failures.items():
            click.echo(f"could not read {scope}: {why}", err=True)
    finally:
        await leash.close()
