"""The `leash` command line: serve, identities, grants, scan, digest, guardrail, audit, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from aiohttp import web
from sqlalchemy.engine import make_url

from bot import crash_drill, logs
from bot.access import queries
from bot.app import Leash, build, settle_heap
from bot.cli import audit as cli_audit
from bot.cli import posture as cli_least_privilege
from bot.cli import sandbox as cli_sandbox
from bot.cli import teams as cli_teams
from bot.config import ConfigError, Settings, load_settings
from bot.domain.states import shown_state
from bot.http.server import build_web_app
from bot.inventory import registry
from bot.inventory import report as inventory_report
from bot.store import audit_keys
from bot.store.engine import create_engine, migrate, session_factory
from bot.surfaces.console import ConsoleSurface

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """Leash: just-in-time, owner-approved, self-expiring cloud permissions for AI agents."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (LEASH_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (LEASH_PORT).")
@click.option(
    "--console/--no-console",
    default=None,
    help="Attach the terminal chat (default: when stdin is a terminal).",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=None,
    help="Use the embedded AWS emulator (default: LEASH_CLOUD).",
)
def serve(host: str | None, port: int | None, console: bool | None, sandbox: bool | None) -> None:
    """Run Leash: HTTP API, scheduler, and the console chat."""
    settings = _settings()
    try:
        crash_drill.armed_step()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    with_console = sys.stdin.isatty() if console is None else console
    # With the console chat on the terminal, only warnings: logs must not bury the chat.
    logs.configure(
        level=logging.WARNING if with_console else settings.log_level,
        fmt=settings.log_format,
    )
    _run(
        lambda: _serve(
            settings,
            host=host or settings.host,
            port=settings.port if port is None else port,
            console=with_console,
            sandbox=sandbox,
        )
    )


async def _serve(
    settings: Settings, *, host: str, port: int, console: bool, sandbox: bool | None
) -> None:
    surface: ConsoleSurface | None = None
    leash: Leash = build(settings, sandbox=sandbox)
    if console:
        surface = ConsoleSurface(leash.handler)
        leash.notifier.add(surface)
    runner = web.AppRunner(
        build_web_app(
            leash.lifecycle,
            max_body_bytes=settings.max_body_bytes,
            slack=leash.slack,
            teams=leash.teams,
            leader=leash.leadership.describe,
        )
    )
    # Signals are heard from the start: a SIGTERM while Leash starts stops it cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Revocations due while Leash was down come first; HTTP answers while discovery runs.
        await leash.start(discover=False)
        settle_heap()
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        if not await _unless_stopped(leash.discover(), stop):
            return
        _announce(leash, runner)
        if surface is not None:
            console_task = asyncio.create_task(_console(surface, stop))
            await stop.wait()
            console_task.cancel()
        else:
            await stop.wait()
    finally:
        await runner.cleanup()
        await leash.close()


async def _unless_stopped(work: Coroutine[Any, Any, object], stop: asyncio.Event) -> bool:
    """Run `work` unless a signal comes first, which cancels it; True when it finished."""
    task = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


async def _console(surface: ConsoleSurface, stop: asyncio.Event) -> None:
    quit_typed = await _run_console(surface)
    if quit_typed:
        stop.set()


async def _run_console(surface: ConsoleSurface) -> bool:
    """Run the console; True when the user typed quit (end of input keeps the server up)."""
    finished = asyncio.Event()
    original = surface.handle_line

    async def tracking(line: str) -> bool:
        keep_going = await original(line)
        if not keep_going:
            finished.set()
        return keep_going

    surface.handle_line = tracking  # type: ignore[method-assign]
    await surface.run()
    return finished.is_set()


def _announce(leash: Leash, runner: web.AppRunner) -> None:
    addresses = ", ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses if len(a) >= 2)
    click.echo(f"Leash is serving on {addresses} (agent API at /api/v1, health at /healthz).")
    # Never the password: this line ends up in terminals and container logs.
    database = make_url(leash.settings.database_url).render_as_string(hide_password=True)
    click.echo(f"Database: {database}")
    audit_key = audit_keys.sandbox_key_path(leash.settings.database_url)
    if leash.settings.audit_key is None and audit_key is not None:
        click.echo(
            f"Audit key: generated for the sandbox in {audit_key} (mode 0600); keep it with the "
            "database, `leash audit verify` needs it (LEASH_AUDIT_KEY in production)."
        )
    if leash.inventory is not None:
        report = leash.inventory
        click.echo(
            f"Inventory: {report.found} identities, {report.agents} AI agents, "
            f"{report.unowned_agents} agent(s) without an owner."
        )
        for scope, why in report.failures.items():
            click.echo(f"  could not read {scope}: {why}")
    drill = crash_drill.armed_step()
    if drill is not None:
        click.echo(
            f"Failure drill: {crash_drill.ENVIRONMENT_VARIABLE}={drill}: Leash kills itself "
            "(SIGKILL) when the next grant reaches that step; start it again without the variable."
        )
    if leash.slack is not None:
        click.echo("Slack: enabled; point the app's request URLs at <this server>/slack/events.")
    if leash.teams is not None:
        auth = "on" if leash.teams.auth.enabled else "OFF (sandbox only)"
        click.echo(f"Teams: enabled at <this server>/api/messages; authentication {auth}.")
    if leash.sandbox is not None:
        click.echo(
            f"Sandbox AWS (moto) at {leash.sandbox.endpoint_url} with "
            f"{len(leash.sandbox.accounts)} accounts (AWS_ENDPOINT_URL for the aws CLI / boto3)."
        )
        if leash.sandbox.gcp is not None:
            gcp = leash.sandbox.gcp
            click.echo(
                f"Sandbox GCP at {gcp.rest_endpoint} (REST) and {gcp.grpc_target} (gRPC) with "
                f"{len(gcp.project_ids)} projects."
            )
        if leash.sandbox.azure is not None:
            azure = leash.sandbox.azure
            click.echo(
                f"Sandbox Azure at {azure.endpoint} (https, self-signed) with "
                f"{len(azure.subscription_ids)} subscriptions."
            )
        click.echo(
            "Try:  as dev  →  request support-triage-agent s3-read for 2m because checking tickets"
        )
        click.echo("      as owner-a  →  approve <request-id>  ·  grants all  ·  identities")
    sys.stdout.flush()


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Include ended grants.")
def grants(show_all: bool) -> None:
    """List grants from the database."""
    settings = _settings()

    async def work() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            async with session_factory(engine)() as session:
                rows = await queries.grants(session=session, live_only=not show_all)
        finally:
            await engine.dispose()
        now = datetime.now(UTC)
        if not rows:
            click.echo("No grants.")
        for grant, identity in rows:
            click.echo(
                f"{grant.id}\t{shown_state(grant, now=now)}\t{identity.name}\t"
                f"{grant.expires_at.isoformat()}\t"
                f"{','.join(grant.actions)}\t{grant.requester}"
            )

    _run(work)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--unowned", is_flag=True, help="Only identities without an owner.")
@click.option("--agents", is_flag=True, help="Only AI agents.")
@click.option("--refresh", is_flag=True, help="Run discovery first (LEASH_CLOUD decides where).")
def identities(fmt: str, unowned: bool, agents: bool, refresh: bool) -> None:
    """List the inventory of non-human identities."""
    settings = _settings()

    async def work() -> str:
        if refresh:
            await _refresh_with_progress(settings)
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
            async with session_factory(engine)() as session:
                rows = await registry.search(None, session=session, limit=100_000)
        finally:
            await engine.dispose()
        selected = [
            (identity, ownership)
            for identity, ownership in rows
            if (not unowned or ownership is None or ownership.primary_owner is None)
            and (not agents or identity.classification == "ai_agent")
        ]
        return inventory_report.render(selected, fmt)

    click.echo(_run(work))


async def _refresh_with_progress(settings: Settings) -> None:
    """Discover with a live elapsed-time line on stderr (discovery has no fixed length)."""
    leash = build(settings)
    try:
        await migrate(leash.engine)
        task = asyncio.create_task(leash.discover())
        started = asyncio.get_running_loop().time()
        while not task.done():
            elapsed = asyncio.get_running_loop().time() - started
            click.echo(f"\rDiscovering identities… {elapsed:5.1f} s", nl=False, err=True)
            await asyncio.wait({task}, timeout=0.2)
        report = task.result()
        click.echo(
            f"\rDiscovered {report.found} identities ({report.agents} AI agents, "
            f"{report.unowned_agents} without an owner).",
            err=True,
        )
        for scope, why in report.failures.items():
            click.echo(f"  could not read {scope}: {why}", err=True)
    finally:
        await leash.close()


@main.command(name="migrate")
def migrate_command() -> None:
    """Apply database migrations and exit."""
    settings = _settings()

    async def work() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    _run(work)
    click.echo("Database is up to date.")


main.add_command(cli_audit.audit_group)
main.add_command(cli_least_privilege.scan)
main.add_command(cli_least_privilege.digest)
main.add_command(cli_least_privilege.guardrail)
main.add_command(cli_teams.teams_package)
main.add_command(cli_sandbox.sandbox)
