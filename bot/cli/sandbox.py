"""`leash sandbox`: run the demo AWS on its own, so Leash can be stopped, killed and restarted;
`leash sandbox --reset`: delete the demo's local database, so the demo starts over.

`leash serve --sandbox` embeds the emulator in its own process, so the emulated cloud dies
with Leash. Failure drills (LEASH_CRASH_AT, a kill -9, a restart) need the cloud to outlive it.
Every sandbox seeds the same organisation (fixed account ids), so a database kept from an
earlier run finds the same inventory; `--reset` is for starting the demo's story afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click
from sqlalchemy.engine import make_url

from bot.config import ConfigError, load_settings
from bot.sandbox_extra import SandboxMissingError, sandbox_class
from bot.store import audit_keys
from bot.store.audit_keys import sandbox_key_path

# What SQLite keeps beside a database file (and Leash beside it: its scheduler lock).
_COMPANIONS = ("-wal", "-shm", "-journal", ".scheduler.lock")


@click.command(name="sandbox")
@click.option(
    "--reset",
    is_flag=True,
    help="Delete the local SQLite database Leash uses (LEASH_DATABASE_URL, by default "
    "./leash.db) and the audit key generated beside it, then exit: the demo starts over. "
    "Never deletes a PostgreSQL database.",
)
@click.option("--yes", "-y", is_flag=True, help="With --reset: delete without asking.")
def sandbox(reset: bool, yes: bool) -> None:
    """Run the seeded demo AWS (moto) until Ctrl-C, for `leash serve` with LEASH_CLOUD=aws."""
    if yes and not reset:
        raise click.UsageError("--yes goes with --reset")
    if reset:
        _reset(ask=not yes)
        return
    try:
        sandbox_type = sandbox_class()  # moto is heavy (and optional): only this command loads it
    except SandboxMissingError as error:
        raise click.ClickException(str(error)) from None

    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with sandbox_type.start() as running:
        accounts = ", ".join(f"{a.name} {a.id}" for a in running.accounts)
        exports = " ".join(
            f"{name}={shlex.quote(value)}"
            # An emulator need not be paced as CloudTrail is (2 lookups a second).
            for name, value in {
                **running.env,
                "LEASH_CLOUD": "aws",
                "LEASH_AWS_LOOKUP_RATE": "200",
            }.items()
        )
        exports += _audit_key_export()
        click.echo(f"Sandbox AWS on {running.endpoint_url}: the demo organisation ({accounts}).")
        click.echo("Point Leash at it from another terminal (its database outlives restarts):")
        click.echo(f"\n  export {exports}\n  leash serve\n")
        click.echo("Ctrl-C stops the sandbox; what it holds is lost.", err=True)
        while not stopped.wait(timeout=1):
            pass
    click.echo("Sandbox stopped.")


def _audit_key_export() -> str:
    """` LEASH_AUDIT_KEY=…` read from the key kept beside the SQLite database (made on first
    use, as `leash serve --sandbox` does): with LEASH_CLOUD=aws Leash requires the variable,
    and every restart of the drill must chain with the same key. Empty for PostgreSQL, and when
    LEASH_AUDIT_KEY is set already."""
    try:
        settings = load_settings()
        path = audit_keys.sandbox_key_path(settings.database_url)
        if path is None or settings.audit_key is not None:
            return ""  # PostgreSQL, or this shell already sets LEASH_AUDIT_KEY
        audit_keys.for_leash(settings, real_cloud=False)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    return f' LEASH_AUDIT_KEY="$(cat {shlex.quote(str(path.resolve()))})"'


def _reset(*, ask: bool) -> None:
    """Delete the SQLite database Leash would use, its companions and its generated key."""
    try:
        url = make_url(load_settings().database_url)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise click.ClickException(
            f"LEASH_DATABASE_URL names a {url.get_backend_name()} database, not a SQLite file: "
            "--reset deletes only a local SQLite database; drop that one yourself if you mean to"
        )
    database = Path(str(url.database))
    key = sandbox_key_path(str(url))
    files = [database, *(database.with_name(database.name + end) for end in _COMPANIONS)]
    present = [path for path in (*files, *((key,) if key else ())) if path.exists()]
    if not present:
        click.echo(f"Nothing to reset: {database} does not exist.")
        return
    with _unused(database):
        if ask:
            click.confirm(
                f"Delete {', '.join(map(str, present))}? Every request, grant, scan and audit "
                "event of the demo is lost",
                abort=True,
            )
        for path in present:
            path.unlink(missing_ok=True)
    click.echo(
        f"Deleted {database}: `make run` (or `leash serve --sandbox`) starts the demo afresh."
    )


@contextlib.contextmanager
def _unused(database: Path) -> Iterator[None]:
    """Hold the database's scheduler lock while deleting it: refuse while a Leash runs on it."""
    lock = database.with_name(database.name + ".scheduler.lock")
    if not lock.exists():
        yield
        return
    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise click.ClickException(
                f"a Leash process (pid {holder}) is using {database}: stop it first"
            ) from None
        yield
