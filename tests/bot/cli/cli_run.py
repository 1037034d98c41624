"""Running the real `leash` CLI in tests: in a thread (it starts its own event loop), with
the environment that points it at a test database and, for discovery and scans, the sandbox."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from typing import Any

from click.testing import CliRunner, Result

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.cli.main import main
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.store.tables import AccessRequest
from cloud.sandbox import Sandbox

DEV = Actor("dev", ActorKind.USER, "console")
OWNER = Actor("owner-a", ActorKind.USER, "console")


async def ask(leash: Leash, *, minutes: int, reason: str) -> AccessRequest:
    """dev asks for s3-read on support-triage-agent (its owner is owner-a)."""
    return await leash.lifecycle.requests.submit(
        RequestInput(
            identity="support-triage-agent",
            permission_set="s3-read",
            duration=timedelta(minutes=minutes),
            reason=reason,
        ),
        actor=DEV,
    )


def sandbox_env(sandbox: Sandbox) -> dict[str, str | None]:
    """As `leash sandbox` prints it: the AWS SDK pointed at the running emulator."""
    return {**sandbox.env, "LEASH_CLOUD": "aws", "LEASH_AWS_LOOKUP_RATE": "200"}


async def cli(database_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke,
        main,
        list(args),
        env={"LEASH_DATABASE_URL": database_url, "COLUMNS": None, **(env or {})},
    )


def table_header(output: str) -> list[str]:
    """The field names of a table's header line (the first line)."""
    return output.splitlines()[0].split()


def csv_rows(output: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(output))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def json_rows(output: str) -> list[dict[str, Any]]:
    rows = json.loads(output)
    assert isinstance(rows, list)
    return rows
