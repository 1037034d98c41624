"""`leash teams-package`: build the Microsoft Teams app package to upload in Teams."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.teams_package import build_package


@click.command(name="teams-package")
@click.option(
    "--app-id",
    envvar="MICROSOFT_APP_ID",
    required=True,
    help="The bot's Microsoft app id, a GUID (default: $MICROSOFT_APP_ID).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("dist/leash-teams.zip"),
    show_default=True,
    help="Where to write the zip.",
)
def teams_package(app_id: str, out: Path) -> None:
    """Build the Teams app package (manifest.json and icons) with the bot's app id.

    The app's version is Leash's; Teams asks for a higher one on every update.
    """
    try:
        written = build_package(app_id=app_id, out=out)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Wrote {written}. Upload it in Teams: Apps → Manage your apps → Upload an app.")
