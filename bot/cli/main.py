"""The `leash` command line: serve, identities, grants, scan, digest, guardrail, audit, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click
from aiohttp import web

from bot import crash_drill, logs
from bot.app import Leash, build, settle_heap
from bot.cli import audit as cli_audit
from bot.cli import banner, exit_codes
from bot.cli import lists as cli_lists
from bot.cli import mcp as cli_mcp
from bot.cli import posture as cli_least_privilege
from bot.cli import sandbox as cli_sandbox
from bot.cli import teams as cli_teams
from bot.cli.help import CONTEXT_SETTINGS, LeashGroup
from bot.config import ConfigError, Settings, load_settings
from bot.http.server import build_web_app
from bot.store.engine import create_engine, migrate
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


@click.group(cls=LeashGroup, context_settings=CONTEXT_SETTINGS, epilog=exit_codes.epilog())
@click.version_option(package_name="leash", prog_name="leash", message="%(prog)s %(version)s")
def main() -> None:
    """Leash: just-in-time, owner-approved, self-expiring cloud permissions for AI agents.

    Listings (grants, identities, requests, scan) take --format table|json|csv, with the same
    fields in all three. Read-only commands never create a database.
    """
    # gRPC's C core (Google Cloud's clients) prints its own INFO lines to the terminal, past
    # Leash's logging (e.g. "Got goaway" as the GCP sandbox stops); it reads this before its
    # first channel is made. An operator's own setting wins.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


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
        libraries=settings.log_libraries_level,
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
    plain = banner.plain_text(settings.log_format, console=console)
    progress = banner.StartupProgress(enabled=console and plain)
    progress.phase("Starting Leash and its clouds")
    leash: Leash = build(settings, sandbox=sandbox)
    progress.done()
    if console:
        # Notices sent while Leash starts wait for the banner; unowned alerts are summarised.
        surface = ConsoleSurface(leash.handler, lifecycle=leash.lifecycle, starting=True)
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
        progress.phase("Opening the database, the audit chain and the scheduler")
        await leash.start(discover=False)
        settle_heap()
        await runner.setup()
        await _listen(runner, host, port)
        progress.done()
        progress.phase(f"Discovering identities in {banner.clouds_of(leash)}")
        if not await _unless_stopped(leash.discover(), stop):
            return
        progress.done(await banner.discovered(leash))
        await banner.announce(leash, runner, plain=plain)
        if surface is not None:
            console_task = asyncio.create_task(_console(surface, stop))
            await stop.wait()
            console_task.cancel()
        else:
            await stop.wait()
    finally:
        await runner.cleanup()
        await leash.close()


async def _listen(runner: web.AppRunner, host: str, port: int) -> None:
    """Open the HTTP port, or stop with one line saying which setting to change."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({error.strerror or error}): another program is "
            "using it. Choose another port with --port or LEASH_PORT (e.g. LEASH_PORT=8081)."
        ) from None


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


main.add_command(cli_lists.grants)
main.add_command(cli_lists.identities)
main.add_command(cli_lists.requests)
main.add_command(cli_audit.audit_group)
main.add_command(cli_least_privilege.scan)
main.add_command(cli_least_privilege.digest)
main.add_command(cli_least_privilege.guardrail)
main.add_command(cli_teams.teams_package)
main.add_command(cli_sandbox.sandbox)
main.add_command(cli_mcp.mcp_command)
