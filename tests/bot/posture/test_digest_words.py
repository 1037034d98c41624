"""The digest and the owners' scan message say what they counted, and draw only real data."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind, Reply
from bot.domain.states import ActorKind
from bot.posture.charts import TrendCharts
from bot.posture.owner_findings import findings_headline
from bot.store.tables import Identity, Ownership, UsageScan
from tests.fakes.notifier import RecordingNotifier

ADMIN = Actor("secops", ActorKind.USER, "console")
WEEKS = ("10-01", "10-08", "10-15", "10-22")


def line(reply: Reply, start: str) -> str:
    (found,) = [text for text in reply.lines if text.startswith(start)]
    return found


def scan(unused: int = 0, *, inactive: bool = False) -> UsageScan:
    actions = [f"s3:Action{n}" for n in range(unused)]
    return UsageScan(
        identity_id="i",
        scanned_at=datetime.now(UTC),
        status="complete",
        unused=actions,
        unused_count=unused,
        inactive=inactive,
    )


def test_the_headline_counts_agree_with_their_nouns() -> None:
    # The old text: "1 of your agents can do more than they use (0 unused permissions, 1 inactive)".
    assert findings_headline("Nightly scan", [scan(inactive=True)]) == (
        "Nightly scan: 1 agent is inactive (no recent activity)."
    )
    assert findings_headline("Nightly scan", [scan(1)]) == (
        "Nightly scan: 1 of your agents can do more than it uses (1 unused permission)."
    )
    assert findings_headline(
        "Scan now", [scan(3), scan(2, inactive=True), scan(inactive=True)]
    ) == (
        "Scan now: 2 of your agents can do more than they use (5 unused permissions); "
        "2 agents are inactive (no recent activity)."
    )


async def test_a_scan_now_is_titled_by_what_ran_it(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    done = await leash.handler.handle_text("scan now", actor=ADMIN)
    assert done.ok, done.text
    assert re.fullmatch(
        r"Scanned \d+ identities: \d+ unused permissions, \d+ inactive, "
        r"usage unknown for \d+; 2 owners told\.",
        done.text,
    ), done.text
    messages = notifier.of_kind(NoticeKind.SCAN_FINDINGS)
    assert messages
    for message in messages:
        assert message.reply.text.startswith("Scan now (asked for in chat): ")
        assert "Nightly" not in message.reply.text
    to_a = next(m for m in messages if m.recipients == ("owner-a",)).reply
    inactive = sum(1 for s in to_a.sections if any(x.startswith("Inactive") for x in s.lines))
    noun = "agent is" if inactive == 1 else "agents are"
    assert f"{inactive} {noun} inactive" in to_a.text


async def test_a_team_with_no_scans_yet_gets_words_and_no_chart(leash: Leash) -> None:
    digests = leash.lifecycle.least_privilege.digests
    reply = digests.render(await digests.build("ml-platform"))
    assert reply.attachments == ()
    assert line(reply, "Unused permissions:") == (
        "Unused permissions: no scans yet (the nightly scan fills this in)"
    )
    assert line(reply, "Inactive agents:") == "Inactive agents: no scans yet"


async def test_after_a_scan_the_digest_has_its_chart_and_no_week_of_false_zeros(
    leash: Leash,
) -> None:
    await leash.lifecycle.least_privilege.nightly()
    digests = leash.lifecycle.least_privilege.digests
    digest = await digests.build("ml-platform")
    # Only this week was scanned: the seven weeks before are gaps, not zeros.
    assert digest.unused_trend[:-1] == (None,) * 7
    assert digest.unused_trend[-1] == digest.unused_total
    reply = digests.render(digest)
    (chart,) = reply.attachments
    assert chart.content.startswith(b"\x89PNG")
    assert "(no scan the week before)" in line(reply, "Unused permissions:")


async def test_identities_of_one_name_in_two_accounts_are_named_once_each(leash: Leash) -> None:
    await leash.lifecycle.least_privilege.nightly()
    async with leash.context.transaction() as session:
        (original,) = (
            await session.exec(
                select(Identity).where(col(Identity.name) == "notebook-helper-agent")
            )
        ).all()
        ownership = await session.get(Ownership, original.id)
        latest = (
            await session.exec(
                select(UsageScan)
                .where(col(UsageScan.identity_id) == original.id)
                .order_by(col(UsageScan.id).desc())
            )
        ).first()
        assert ownership is not None
        assert latest is not None
        assert latest.inactive
        twin = Identity.model_validate(
            original.model_dump()
            | {"id": "twin", "account": "999999999999", "native_id": original.native_id + "-2"}
        )
        session.add(twin)
        await session.flush()
        session.add(Ownership.model_validate(ownership.model_dump() | {"identity_id": "twin"}))
        session.add(
            UsageScan.model_validate(latest.model_dump() | {"id": None, "identity_id": "twin"})
        )
    digests = leash.lifecycle.least_privilege.digests
    reply = digests.render(await digests.build("ml-platform"))
    inactive = line(reply, "Inactive agents:").removeprefix("Inactive agents: ").split(", ")
    assert len(inactive) == len(set(inactive))
    assert f"notebook-helper-agent ({original.account})" in inactive
    assert "notebook-helper-agent (999999999999)" in inactive
    assert "notebook-helper-agent" not in inactive


def test_the_chart_has_labelled_axes_gaps_and_whole_number_ticks() -> None:
    figure = TrendCharts().trend_figure(
        "ml-platform: the last 4 weeks",
        WEEKS,
        {
            "Unused permissions": [math.nan, math.nan, 45.0, 40.0],
            "Inactive agents": [math.nan, 1.0, math.nan, 2.0],
        },
    )
    unused, inactive = figure.axes  # one measure per axis
    assert unused.get_ylabel() == "Unused permissions"
    assert inactive.get_ylabel() == "Inactive agents"
    assert inactive.get_xlabel() == "Week ending"
    (line_unused,) = unused.get_lines()
    ys = [float(y) for y in np.asarray(line_unused.get_ydata(), dtype=float)]
    assert [math.isnan(y) for y in ys] == [True, True, False, False]  # gaps, not zeros
    for axes in figure.axes:
        ticks = [t for t in axes.get_yticks() if axes.get_ylim()[0] <= t <= axes.get_ylim()[1]]
        assert ticks
        assert all(float(t).is_integer() for t in ticks)


def test_a_chart_of_tiny_counts_still_ticks_whole_numbers() -> None:
    figure = TrendCharts().trend_figure("t", WEEKS, {"Inactive agents": [0.0, 0.0, 0.0, 0.0]})
    (axes,) = figure.axes
    low, high = axes.get_ylim()
    ticks = [t for t in axes.get_yticks() if low <= t <= high]
    assert ticks == [float(int(t)) for t in ticks]
    assert high >= 1


async def test_top_requesters_on_slack_are_mentions_of_their_ids(leash: Leash) -> None:
    digests = leash.lifecycle.least_privilege.digests
    digest = replace(
        await digests.build("ml-platform"),
        grants=3,
        top_requesters=(("UDEV00001", 2), ("alice@example.com", 1)),
    )
    reply = digests.render(digest)
    grants = reply.lines[1]
    assert grants == (
        "Grants this week: 3 (0 privileged) · top requesters: UDEV00001 (2), alice@example.com (1)"
    )
    (mention,) = reply.mentions
    assert (mention.handle, mention.line) == ("slack:UDEV00001", 1)
    assert grants[mention.start : mention.end] == "UDEV00001"
