"""Attacks on the audit trail by someone who can write the database, with and without the key.

Each test forges the way an attacker would: from the exported form of an event (the canonical
JSON is the export line without its `hash`), re-hashing with plain SHA-256 or, as an insider,
with HMAC-SHA256 and the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path

from sqlmodel import col, select

from bot.app import Leash
from bot.store import audit
from bot.store.tables import AuditEvent
from tests.bot.cli.test_audit_cli import broken, cli, history, verify

Signer = Callable[[bytes], str]


def plain(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def with_key(canonical: bytes) -> str:
    key = os.environ["LEASH_AUDIT_KEY"].encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def canonical(event: AuditEvent) -> bytes:
    record = json.loads(audit.to_json_line(event))
    record.pop("hash")
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


async def rewrite(
    leash: Leash,
    *,
    sign: Signer,
    first: int = 1,
    last: int | None = None,
    actor: str | None = None,
) -> None:
    """Re-hash events `first`..`last` (default: to the end) with `sign`, changing `first`'s
    actor if given: what someone who can write the database does to cover a change."""
    query = select(AuditEvent).where(col(AuditEvent.seq) >= first)
    if last is not None:
        query = query.where(col(AuditEvent.seq) <= last)
    async with leash.context.transaction() as session:
        rows = (await session.exec(query.order_by(col(AuditEvent.seq)))).all()
        previous = rows[0].prev_hash
        for row in rows:
            if row.seq == first and actor is not None:
                row.actor = actor
            row.prev_hash = previous
            row.hash = previous = sign(canonical(row))
            session.add(row)


async def approval_seq(leash: Leash) -> int:
    async with leash.context.sessions() as session:
        approval = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "request.approved")
            )
        ).one()
    assert approval.seq is not None
    return approval.seq


async def export(database_url: str, path: Path) -> str:
    """Ship an export to `path`; return the head it printed."""
    result = await cli(database_url, "audit", "export")
    assert result.exit_code == 0, result.output
    await asyncio.to_thread(path.write_text, result.stdout, encoding="utf-8")
    return result.stderr.strip().removeprefix("audit head: ")


async def test_deleting_the_newest_events_is_named_against_a_published_head(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    count = await history(leash)
    head = await export(database_url, tmp_path / "audit.jsonl")
    async with leash.context.transaction() as session:
        newest = select(AuditEvent).where(col(AuditEvent.seq) > count - 2)
        for row in (await session.exec(newest)).all():
            await session.delete(row)
    # What is left is a perfect chain: only the head published earlier shows the cut.
    code, output = await verify(database_url)
    assert code == 0, output
    output = await broken(database_url, "--head", head)
    assert f"BROKEN at event {count - 1}: events {count - 1} to {count} are missing" in output
    assert f"the chain ends at event {count - 2}" in output


async def test_a_rewrite_re_hashed_without_the_key_is_named(
    leash: Leash, database_url: str
) -> None:
    await history(leash)
    target = await approval_seq(leash)
    await rewrite(leash, sign=plain, first=target, actor="mallory")
    output = await broken(database_url)
    assert f"BROKEN at event {target}: it was hashed without the audit key" in output


async def test_a_whole_chain_re_hashed_without_the_key_is_named(
    leash: Leash, database_url: str
) -> None:
    await history(leash)
    await rewrite(leash, sign=plain, actor="mallory")
    output = await broken(database_url)
    assert "Audit chain BROKEN: no event is keyed" in output


async def test_a_rewrite_re_hashed_with_the_key_is_named_against_an_earlier_export(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    count = await history(leash)
    head = await export(database_url, tmp_path / "audit.jsonl")
    target = await approval_seq(leash)
    await rewrite(leash, sign=with_key, first=target, actor="mallory")
    # An insider with the key makes a chain that verifies on its own ...
    code, output = await verify(database_url)
    assert code == 0, output
    # ... but not against the head shipped before the rewrite.
    for option in (["--head", head], ["--since-export", str(tmp_path / "audit.jsonl")]):
        output = await broken(database_url, *option)
        assert f"BROKEN at event {count}: its hash is" in output
        assert f"the chain was rewritten at or before event {count}" in output


async def test_an_intact_chain_matches_its_earlier_export(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    count = await history(leash)
    head = await export(database_url, tmp_path / "audit.jsonl")
    last = json.loads((tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert head == f"{count}:{last['hash']}"
    await history(leash)  # the chain grows after the export: still fine
    code, output = await verify(database_url, "--since-export", str(tmp_path / "audit.jsonl"))
    assert code == 0, output
    assert f"events verified (head {head} matches)" in output
    code, output = await verify(database_url, "--head", head)
    assert code == 0, output


async def test_a_malformed_head_or_export_cannot_be_checked(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    await history(leash)
    code, output = await verify(database_url, "--head", "12:not-a-hash")
    assert code == 2, output
    assert "--head" in output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    code, output = await verify(database_url, "--since-export", str(bad))
    assert code == 2, output
    assert "its last line is not an exported audit event" in output


async def test_a_chain_checked_with_another_key_is_broken_at_its_first_event(
    leash: Leash, database_url: str
) -> None:
    await history(leash)
    result = await cli(database_url, "audit", "verify", env={"LEASH_AUDIT_KEY": "x" * 40})
    assert result.exit_code == 1, result.output
    assert "BROKEN at event 1: its content was changed (or it was hashed with another key)" in (
        result.output
    )
