"""`leash sandbox`: run the demo AWS on its own, so Leash can be stopped, killed and restarted.

`leash serve --sandbox` embeds the emulator in its own process, so the emulated cloud dies
with Leash. Failure drills (LEASH_CRASH_AT, a kill -9, a restart) need the cloud to outlive it.
"""

from __future__ import annotations

import shlex
import signal
import threading
from types import FrameType

import click

from bot.sandbox_extra import SandboxMissingError, sandbox_class


@click.command(name="sandbox")
def sandbox() -> None:
    """Run the seeded demo AWS (moto) until Ctrl-C, for `leash serve` with LEASH_CLOUD=aws."""
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
        click.echo(f"Sandbox AWS on {running.endpoint_url}: the demo organisation ({accounts}).")
        click.echo("Point Leash at it from another terminal (its database outlives restarts):")
        click.echo(f"\n  export {exports}\n  leash serve\n")
        click.echo("Ctrl-C stops the sandbox; what it holds is lost.", err=True)
        while not stopped.wait(timeout=1):
            pass
    click.echo("Sandbox stopped.")
