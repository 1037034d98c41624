"""Every listing command (`grants`, `identities`, `requests`, `scan`) gives the same fields as
a table, JSON and CSV; tables fit the width they are given; `scan` has no duplicate rows."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from bot.app import Leash
from bot.cli import columns
from bot.cli.listing import Listing
from cloud.sandbox import Sandbox
from tests.bot.cli.cli_run import OWNER, ask, cli, csv_rows, json_rows, sandbox_env, table_header

LISTINGS: dict[str, tuple[list[str], Listing[Any]]] = {
    "grants": (["grants", "--all"], columns.GRANTS),
    "identities": (["identities"], columns.IDENTITIES),
    "requests": (["requests", "--all"], columns.REQUESTS),
}


async def _history(leash: Leash) -> tuple[str, str]:
    """One approved request (a grant) and one still pending; their ids."""
    approved = await ask(leash, minutes=5, reason="formats drill, with a comma")
    await leash.lifecycle.approve(approved.id, actor=OWNER)
    pending = await ask(leash, minutes=10, reason="still waiting")
    return approved.id, pending.id


@pytest.mark.parametrize("listing", list(LISTINGS))
async def test_table_json_and_csv_carry_the_same_fields(
    leash: Leash, database_url: str, listing: str
) -> None:
    await _history(leash)
    args, shape = LISTINGS[listing]
    fields = shape.fields
    table = await cli(database_url, *args)
    as_json = await cli(database_url, *args, "--format", "json")
    as_csv = await cli(database_url, *args, "--format", "csv")
    for result in (table, as_json, as_csv):
        assert result.exit_code == 0, result.output

    records = json_rows(as_json.stdout)
    header, rows = csv_rows(as_csv.stdout)
    assert records, as_json.stdout
    assert table_header(table.stdout) == fields
    assert header == fields
    assert all(list(record) == fields for record in records)
    # The same rows in each: JSON and CSV agree value by value, the table counts them.
    assert len(rows) == len(records)
    assert table.stdout.strip().endswith(f"\n{shape.count(len(records))}")
    assert [row[fields[0]] for row in rows] == [str(record[fields[0]]) for record in records]


async def test_grants_and_requests_list_what_happened(leash: Leash, database_url: str) -> None:
    approved, pending = await _history(leash)
    grants = json_rows((await cli(database_url, "grants", "--format", "json")).stdout)
    assert [(g["identity"], g["state"], g["requester"]) for g in grants] == [
        ("support-triage-agent", "active", "dev")
    ]
    live = json_rows((await cli(database_url, "requests", "--format", "json")).stdout)
    assert [r["id"] for r in live] == [pending]
    every = json_rows((await cli(database_url, "requests", "--all", "--format", "json")).stdout)
    assert {r["id"]: r["state"] for r in every} == {pending: "pending", approved: "approved"}
    # A value with a comma stays one CSV field.
    _, rows = csv_rows((await cli(database_url, "requests", "--all", "--format", "csv")).stdout)
    assert "formats drill, with a comma" in [row["reason"] for row in rows]


async def test_an_empty_listing_says_so_and_stays_parseable(
    leash: Leash, database_url: str
) -> None:
    table = await cli(database_url, "grants")
    assert (table.exit_code, table.stdout.strip()) == (0, "No grants.")
    assert json_rows((await cli(database_url, "grants", "--format", "json")).stdout) == []
    header, rows = csv_rows((await cli(database_url, "grants", "--format", "csv")).stdout)
    assert (header, rows) == (columns.GRANTS.fields, [])


@pytest.mark.parametrize("width", [60, 100, 160])
async def test_tables_fit_the_width_they_are_given(
    leash: Leash, database_url: str, width: int
) -> None:
    await _history(leash)
    for args, shape in LISTINGS.values():
        result = await cli(database_url, *args, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= width, result.stdout
        assert re.fullmatch(rf"\d+ ({shape.one}|{shape.noun})", lines[-1])  # the count


async def test_too_narrow_for_columns_each_row_is_a_block_with_nothing_cut(
    leash: Leash, database_url: str
) -> None:
    identities = await cli(database_url, "identities", "--format", "json")
    arns = [record["arn"] for record in json_rows(identities.stdout)]
    shown = await cli(database_url, "identities", env={"COLUMNS": "60"})
    assert max(len(line) for line in shown.stdout.splitlines()) <= 60
    blocks = shown.stdout.split("\n\n")
    assert len(blocks) == len(arns)
    # A long value wraps onto the next lines, whole: put back together, every ARN is there.
    assert all(arn in "".join(block.split()) for arn, block in zip(arns, blocks, strict=True))


async def test_a_table_not_on_a_terminal_keeps_one_line_per_row(
    leash: Leash, database_url: str
) -> None:
    result = await cli(database_url, "identities")
    records = json_rows((await cli(database_url, "identities", "--format", "json")).stdout)
    lines = result.stdout.splitlines()
    # header, rule, one line per identity, the count
    assert len(lines) == len(records) + 3, result.stdout


async def test_scan_lists_each_identity_once_with_its_account(
    fresh_sandbox: Sandbox, database_url: str
) -> None:
    env = sandbox_env(fresh_sandbox)
    scanned = await cli(database_url, "scan", "--format", "json", env=env)
    assert scanned.exit_code in (0, 1), scanned.output
    rows = json_rows(scanned.stdout)
    assert all(list(row) == columns.SCAN.fields for row in rows)
    assert rows, scanned.output
    arns = Counter(row["arn"] for row in rows)
    assert [arn for arn, count in arns.items() if count > 1] == []
    named = Counter((row["identity"], row["account"]) for row in rows)
    assert [key for key, count in named.items() if count > 1] == []
    # The role every member account has: one row per account, each naming its account.
    org_roles = [r["account"] for r in rows if r["identity"] == "OrganizationAccountAccessRole"]
    assert len(org_roles) >= 2, rows
    assert set(org_roles) <= set(fresh_sandbox.account_ids)
    # The summary goes to stderr, so stdout stays JSON.
    assert "scanned," in scanned.stderr

    as_csv = await cli(database_url, "scan", "--format", "csv", env=env)
    header, csv_listed = csv_rows(as_csv.stdout)
    assert header == columns.SCAN.fields
    assert sorted(row["arn"] for row in csv_listed) == sorted(arns)
    table = await cli(database_url, "scan", env=env)
    assert table_header(table.stdout) == columns.SCAN.fields
    assert f"\n{columns.SCAN.count(len(rows))}\n" in table.stdout
