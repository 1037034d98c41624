"""The audit head leaves the database: an hourly log line from the leader, and a metric."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from bot import logs
from bot.app import Leash
from bot.http.instruments import Instruments
from bot.http.metrics import render
from bot.store import audit
from scheduler import jobs
from scheduler.runner import AUDIT_HEAD_EVERY_SECONDS, AUDIT_HEAD_JOB
from tests.bot.cli.test_audit_cli import history


async def newest(leash: Leash) -> audit.Head:
    async with leash.context.sessions() as session:
        head = await audit.head(session=session)
    assert head is not None
    return head


async def test_the_head_job_logs_one_structured_line(
    leash: Leash, caplog: pytest.LogCaptureFixture
) -> None:
    count = await history(leash)
    head = await newest(leash)
    assert head.seq == count
    with caplog.at_level(logging.INFO, logger="leash.audit"):
        await jobs.publish_audit_head(leash.lifecycle)
    (record,) = [r for r in caplog.records if r.name == "leash.audit"]
    assert record.getMessage() == f"audit head: {count}:{head.hash} (scheduler)"
    line = json.loads(logs.json_formatter().format(record))
    assert line["audit_head_seq"] == count
    assert line["audit_head_hash"] == head.hash
    assert line["audit_head_via"] == "scheduler"


async def test_the_leader_publishes_the_head_at_once_and_hourly(leash: Leash) -> None:
    assert AUDIT_HEAD_EVERY_SECONDS <= 3600
    await leash.runner.start(leash.lifecycle)
    try:
        assert AUDIT_HEAD_JOB in leash.runner.job_ids()
    finally:
        await leash.runner.stop()


async def test_the_head_sequence_is_a_metric(leash: Leash) -> None:
    count = await history(leash)
    text = await render(
        sessions=leash.context.sessions,
        now=datetime.now(UTC),
        instruments=Instruments(),
        leader=lambda: True,
    )
    assert f"leash_audit_head_seq {float(count)}" in text.decode().splitlines()
