"""`leash audit verify` detects any tampering with the audit trail; export writes JSON lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from bot.app import Leash
from bot.cli.main import main
from tests.bot.cli.cli_run import OWNER, ask

TAMPERING = {
    "actor": "UPDATE auditevent SET actor = 'mallory' WHERE seq = {seq}",
    "event_type": "UPDATE auditevent SET event_type = 'request.denied' WHERE seq = {seq}",
    "outcome": "UPDATE auditevent SET outcome = 'failure' WHERE seq = {seq}",
    "time": "UPDATE auditevent SET at = '2020-01-01 00:00:00.000000' WHERE seq = {seq}",
    "detail": 'UPDATE auditevent SET detail = \'{{"reason": "nothing to see"}}\' WHERE seq = {seq}',
    "identity": "UPDATE auditevent SET identity_id = 'i-other' WHERE seq = {seq}",
    "own hash": "UPDATE auditevent SET hash = '{fake}' WHERE seq = {seq}",
    "deleted row": "DELETE FROM auditevent WHERE seq = {seq}",
}


async def history(leash: Leash) -> int:
    """Create a small, real history: a request, an approval, a grant; return the event count."""
    request = await ask(leash, minutes=5, reason="audit drill")
    await leash.lifecycle.approve(request.id, actor=OWNER)
    async with leash.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM auditevent"))).scalar_one())


async def cli(database_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run the real `leash` CLI (in a thread: it starts its own event loop)."""
    return await asyncio.to_thread(
        CliRunner().invoke,
        main,
        list(args),
        env={"LEASH_DATABASE_URL": database_url, **(env or {})},
    )


async def verify(database_url: str, *args: str) -> tuple[int, str]:
    result = await cli(database_url, "audit", "verify", *args)
    return result.exit_code, result.output


async def broken(database_url: str, *args: str) -> str:
    """Run `leash audit verify`, expect exit 1 (tampering found) and return what it said."""
    code, output = await verify(database_url, *args)
    assert code == 1, output
    return output


async def test_untouched_chain_verifies(leash: Leash, database_url: str) -> None:
    count = await history(leash)
    code, output = await verify(database_url)
    assert code == 0, output
    assert f"{count} events verified" in output


@pytest.mark.parametrize("change", list(TAMPERING), ids=list(TAMPERING))
async def test_tampering_is_detected_and_named(
    leash: Leash, database_url: str, change: str
) -> None:
    count = await history(leash)
    target = count - 1  # an event in the middle of the chain, not the head
    async with leash.engine.begin() as connection:
        await connection.execute(text(TAMPERING[change].format(seq=target, fake="f" * 64)))
    output = await broken(database_url)
    assert f"BROKEN at event {target}:" in output


async def test_export_writes_one_json_line_per_event(leash: Leash, database_url: str) -> None:
    count = await history(leash)
    result = await cli(database_url, "audit", "export", "--format", "jsonl")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == count
    assert [line["seq"] for line in lines] == list(range(1, count + 1))
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert {"actor", "event_type", "at", "outcome", "origin", "identity_id", "resource"} <= set(
        lines[0]
    )
    # The head goes to stderr, so stdout stays JSON lines.
    assert result.stderr.strip() == f"audit head: {count}:{lines[-1]['hash']}"


async def test_an_incremental_export_continues_the_chain(leash: Leash, database_url: str) -> None:
    count = await history(leash)
    whole = await cli(database_url, "audit", "export")
    first = [json.loads(line) for line in whole.stdout.splitlines()]
    cut = first[count // 2]["seq"]
    rest = await cli(database_url, "audit", "export", "--after-seq", str(cut))
    assert rest.exit_code == 0, rest.output
    later = [json.loads(line) for line in rest.stdout.splitlines()]
    assert [line["seq"] for line in later] == list(range(cut + 1, count + 1))
    assert later[0]["prev_hash"] == first[cut - 1]["hash"]
    bad = await cli(database_url, "audit", "export", "--after-seq", "-1")
    assert bad.exit_code == 2
    assert "--after-seq" in bad.output


async def test_an_export_with_nothing_new_still_names_the_head(
    leash: Leash, database_url: str
) -> None:
    count = await history(leash)
    result = await cli(database_url, "audit", "export", "--after-seq", str(count))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"audit head: {count}:")


@pytest.mark.parametrize("command", ["verify", "export"])
async def test_audit_commands_never_create_a_missing_database(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nowhere.db"
    result = await cli(f"sqlite+aiosqlite:///{missing}", "audit", command)
    assert result.exit_code == 2, result.output
    assert f"no Leash database at {missing}; run `leash serve` first" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
async def test_identities_cli_lists_the_inventory(
    leash: Leash, database_url: str, fmt: str
) -> None:
    result = await cli(database_url, "identities", "--format", fmt, "--agents", "--unowned")
    assert result.exit_code == 0, result.output
    if fmt == "json":
        records = json.loads(result.output)
        assert [r["name"] for r in records] == ["forecast-agent"]
        assert records[0]["classification"] == "ai_agent"
        assert records[0]["owner"] is None
    elif fmt == "csv":
        lines = result.output.strip().splitlines()
        assert lines[0].startswith("name,account,kind,classification,owner")
        assert [line.split(",")[0] for line in lines[1:]] == ["forecast-agent"]
    else:
        assert "forecast-agent" in result.output
        assert result.output.strip().endswith("1 identity")
