"""The whole path against the moto server: request, approve, grant in IAM, expiry, revoke."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from pathlib import Path

from bot.app import Leash
from bot.domain.messages import Attachment, Choice, Notice, NoticeKind, Reply, Section
from bot.domain.states import GrantState
from bot.posture.charts import TrendCharts
from bot.store import audit
from bot.surfaces.console import ConsoleSurface
from cloud.sandbox import Sandbox
from tests.e2e.helpers import (
    GRANT_ID,
    REQUEST_ID,
    audit_types,
    eventually,
    grant,
    inline_policy,
)
from tests.fakes.notifier import RecordingNotifier


async def _console(leash: Leash, lines: list[str]) -> str:
    out = io.StringIO()
    surface = ConsoleSurface(leash.handler, out=out)
    leash.notifier.add(surface)
    reader = asyncio.StreamReader()
    reader.feed_data("".join(f"{line}\n" for line in lines).encode())
    reader.feed_eof()
    await surface.run(reader)
    return out.getvalue()


async def test_console_request_approve_grant_expire_revoke(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    await leash.runner.start(leash.lifecycle)
    said = await _console(
        leash,
        [
            "as dev",
            "request support-triage-agent s3-read on arn:aws:s3:::tickets/* for 3s because triage",
        ],
    )
    request_match = REQUEST_ID.search(said)
    assert request_match, said
    request_id = request_match.group(1)
    # The requester's reply comes first, then what Leash sent to the owner.
    assert said.index("is waiting for approval") < said.index("→ to owner-a [approval_needed]")
    card = notifier.of_kind(NoticeKind.APPROVAL_NEEDED)
    assert card
    assert card[0].recipients == ("owner-a",)
    assert f"approve {request_id}" in [c.command for c in card[0].reply.choices]

    said = await _console(leash, ["as owner-a", f"approve {request_id} looks fine"])
    grant_match = GRANT_ID.search(said)
    assert grant_match, said
    grant_id = grant_match.group(1)

    document = inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant_id}")
    assert document is not None
    allow = next(s for s in document["Statement"] if s["Effect"] == "Allow")
    assert sorted(allow["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    assert allow["Resource"] in (["arn:aws:s3:::tickets/*"], "arn:aws:s3:::tickets/*")
    expiry = datetime.fromisoformat(allow["Condition"]["DateLessThan"]["aws:CurrentTime"])
    record = await grant(leash, grant_id)
    # The cloud's own expiry is the grant's, truncated to the second (never later).
    assert expiry == record.expires_at.replace(microsecond=0)
    deny = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    assert deny
    assert "iam:CreateAccessKey" in deny[0]["Action"]

    async def revoked() -> bool:
        return (await grant(leash, grant_id)).state == GrantState.REVOKED

    assert await eventually(revoked, within=15)
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant_id}") is None
    assert await audit_types(leash, grant_id=grant_id) == [
        "request.approved",
        "grant.applied",
        "grant.revoked",
    ]
    told = [(n.kind, n.recipients) for n in notifier.notices if n.grant_id == grant_id]
    assert told[0] == (NoticeKind.GRANT_ACTIVE, ("dev", "owner-a"))
    assert told[-1] == (NoticeKind.REVOKED, ("dev", "owner-a"))
    revoked_notice = notifier.of_kind(NoticeKind.REVOKED)[-1]
    assert revoked_notice.reply.text == (
        f"Grant {grant_id} on support-triage-agent expired and was revoked."
    )
    async with leash.context.sessions() as session:
        assert (await audit.verify(session=session)).ok


def _grouped_notice(*attachments: Attachment) -> Notice:
    """The nightly owner message's shape: one section per agent, each with its own buttons."""
    reply = Reply(
        text="2 of your agents need a look",
        lines=("Found by last night's scan.",),
        sections=(
            Section(
                "support-triage-agent",
                ("12 of 14 granted actions unused for 90 days",),
                (
                    Choice("Restrict unused", "restrict support-triage-agent"),
                    Choice("Not mine", "disown support-triage-agent"),
                ),
            ),
            Section("knowledge-base-agent", ("inactive for 120 days",)),
        ),
        choices=(Choice("Open inventory", "identities mine"),),
        attachments=attachments,
    )
    return Notice(kind=NoticeKind.SCAN_FINDINGS, recipients=("owner-a",), reply=reply)


async def test_console_shows_sections_and_saves_attachments(leash: Leash, tmp_path: Path) -> None:
    out = io.StringIO()
    folder = tmp_path / "attached"
    leash.notifier.add(ConsoleSurface(leash.handler, out=out, attachments_dir=folder))
    chart = TrendCharts().render_trend("Agents", ["w1", "w2"], {"inactive": [3, 1]})

    await leash.notifier.notify(
        _grouped_notice(
            Attachment("trend.png", chart, "Agents per week"),
            Attachment("../../outside.txt", b"kept inside", "Escaping name"),
        )
    )

    said = out.getvalue().splitlines()
    saved = sorted(folder.iterdir())
    assert len(saved) == 2
    png = next(path for path in saved if path.suffix == ".png")
    text = next(path for path in saved if path.suffix == ".txt")
    assert (png.read_bytes(), text.read_bytes()) == (chart, b"kept inside")
    assert not (tmp_path / "outside.txt").exists()
    assert said == [
        "→ to owner-a [scan_findings]",
        "2 of your agents need a look",
        "    Found by last night's scan.",
        "    support-triage-agent",
        "        12 of 14 granted actions unused for 90 days",
        "        [1] Restrict unused: restrict support-triage-agent",
        "        [2] Not mine: disown support-triage-agent",  # two would not fit in 100 columns
        "    knowledge-base-agent",
        "        inactive for 120 days",
        f"    📎 Agents per week: {png}",
        f"    📎 Escaping name: {text}",
        "    [3] Open inventory: identities mine",
    ]


async def test_console_says_when_an_attachment_cannot_be_saved(
    leash: Leash, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the folder should be")
    out = io.StringIO()
    leash.notifier.add(ConsoleSurface(leash.handler, out=out, attachments_dir=blocker))

    await leash.notifier.notify(_grouped_notice(Attachment("trend.png", b"png", "Trend")))

    assert "    📎 Trend: trend.png (not saved: " in out.getvalue()
    assert "[3] Open inventory: identities mine" in out.getvalue()  # the rest is still shown
