"""`leash` exit statuses (0 ok, 1 findings or failures, 2 usage), read-only commands that never
create a database, `--version`, `-h`, help that never cuts a sentence, and quiet progress."""

from __future__ import annotations

import importlib.metadata
import os
import pty
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Leash
from bot.cli import exit_codes
from bot.cli.main import main
from bot.domain.states import Classification
from bot.inventory.registry import identity_id_for
from bot.store.tables import Identity
from cloud.sandbox import Sandbox
from tests.bot.cli.cli_run import cli, json_rows, sandbox_env

READ_ONLY = [
    ["audit", "verify"],
    ["audit", "export"],
    ["grants"],
    ["grants", "--all", "--format", "json"],
    ["identities", "--format", "csv"],
    ["requests", "--all"],
    ["guardrail", "apply", "--dry-run"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_a_missing_database(
    tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "leash.db"
    result = CliRunner().invoke(
        main, args, env={"LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"}
    )
    assert result.exit_code == exit_codes.USAGE == 2, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"no Leash database at {missing}; run `leash serve` first or set LEASH_DATABASE_URL"
    )
    assert list(tmp_path.iterdir()) == []  # no database, no -wal, no -shm, no audit key


def test_a_database_without_leash_schema_is_not_given_one(tmp_path: Path) -> None:
    empty = tmp_path / "other.db"
    empty.touch()
    result = CliRunner().invoke(
        main, ["grants"], env={"LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{empty}"}
    )
    assert result.exit_code == 2, result.output
    assert "no Leash schema" in result.stderr
    with sqlite3.connect(empty) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # no schema given, nothing migrated


@pytest.mark.parametrize(
    "args",
    [["grants", "--format", "xml"], ["no-such-command"], ["scan", "--identity"]],
    ids=" ".join,
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    database = tmp_path / "leash.db"
    result = CliRunner().invoke(
        main,
        args,
        env={"LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
        prog_name="leash",
    )
    assert result.exit_code == 2, result.output
    assert "Error: " in result.stderr
    assert not database.exists()


async def test_a_listing_that_worked_exits_0(leash: Leash, database_url: str) -> None:
    result = await cli(database_url, "identities", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json_rows(result.stdout)


async def _remember_unscannable(leash: Leash) -> str:
    """An identity in a cloud this Leash has no provider for: its scan fails."""
    arn = "cli-exit-agent@leash-nowhere.iam.gserviceaccount.com"
    async with AsyncSession(leash.engine) as session:
        session.add(
            Identity(
                id=identity_id_for(arn),
                provider="gcp",
                account="leash-nowhere",
                native_id=arn,
                name="cli-exit-agent",
                kind="service_account",
                classification=Classification.AI_AGENT,
                discovered_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return arn


async def test_scan_exits_1_on_findings_or_failures_and_0_when_all_is_well(
    leash: Leash, database_url: str, fresh_sandbox: Sandbox
) -> None:
    env = sandbox_env(fresh_sandbox)
    everything = await cli(database_url, "scan", "--format", "json", env=env)
    rows = json_rows(everything.stdout)
    needing = [row for row in rows if row["needs_action"]]
    assert needing, rows  # the demo organisation has unused permissions and idle agents
    assert everything.exit_code == exit_codes.FINDINGS, everything.output

    clean = next(row for row in rows if not row["needs_action"] and row["status"] == "complete")
    one = await cli(database_url, "scan", "--identity", clean["arn"], "--format", "json", env=env)
    assert one.exit_code == exit_codes.OK, one.output
    assert [row["arn"] for row in json_rows(one.stdout)] == [clean["arn"]]

    flagged = await cli(database_url, "scan", "--identity", needing[0]["arn"], env=env)
    assert flagged.exit_code == exit_codes.FINDINGS, flagged.output

    unscannable = await _remember_unscannable(leash)
    failed = await cli(database_url, "scan", "--identity", unscannable, env=env)
    assert failed.exit_code == exit_codes.FINDINGS, failed.output
    assert [line for line in failed.stdout.splitlines() if line.startswith("failed: ")]


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"leash {importlib.metadata.version('leash')}"


@pytest.mark.parametrize(
    "args", [["-h"], ["audit", "verify", "-h"], ["scan", "-h"], ["guardrail", "apply", "-h"]]
)
def test_h_is_help_on_every_command(args: list[str]) -> None:
    result = CliRunner().invoke(main, args, prog_name="leash")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: leash {' '.join(args[:-1])}".rstrip())
    assert "-h, --help" in result.output


def _commands_section(output: str) -> list[str]:
    section = output.split("Commands:\n", 1)[1]
    return section.split("\n\n", 1)[0].splitlines()


@pytest.mark.parametrize(
    "group", [[], ["audit"], ["guardrail"]], ids=lambda g: " ".join(g) or "leash"
)
def test_help_lists_whole_sentences_and_the_exit_codes(group: list[str]) -> None:
    result = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
    assert result.exit_code == 0
    lines = _commands_section(result.output)
    assert lines
    assert max(len(line) for line in lines) <= 80
    entries = " ".join(lines).replace("  ", " ")
    assert "..." not in entries
    # Each command's summary is a sentence, whole: it ends with its full stop.
    starts = [i for i, line in enumerate(lines) if not line.startswith(" " * 4)]
    ends = [*starts[1:], len(lines)]
    assert all(lines[end - 1].rstrip().endswith(".") for end in ends), lines
    if not group:
        for code, meaning in exit_codes.EXIT_CODES:
            assert f"  {code}  {meaning.split()[0]}" in result.output


def _scan_process(database: Path, sandbox: Sandbox, *, stderr: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **{k: v for k, v in sandbox_env(sandbox).items() if v is not None},
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "scan", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )


def test_progress_shows_on_a_terminal_and_is_quiet_when_piped(
    tmp_path: Path, fresh_sandbox: Sandbox
) -> None:
    piped = _scan_process(tmp_path / "piped.db", fresh_sandbox, stderr=subprocess.PIPE)
    _, said = piped.communicate(timeout=300)
    assert b"Discovering" not in said
    assert b"Scanning" not in said

    controller, terminal = pty.openpty()
    shown = _scan_process(tmp_path / "terminal.db", fresh_sandbox, stderr=terminal)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = shown.communicate(timeout=300)
    os.close(controller)
    assert b"Discovering identities" in drawn
    assert b"Scanning usage" in drawn
    assert json_rows(out.decode())  # stdout (a pipe) got only the JSON
