"""Grouped messages and attached charts on Slack: blocks posted, files shared in the thread."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot.app import Leash
from bot.domain.messages import Attachment, Choice, ChoiceStyle, Notice, NoticeKind, Reply, Section
from bot.posture.charts import TrendCharts
from bot.surfaces.literal import WORD_JOINER
from bot.surfaces.slack.render import MAX_BLOCKS, reply_blocks
from tests.bot.surfaces.chat_drivers import rich_text
from tests.bot.surfaces.conftest import OWNER, buttons
from tests.fakes.slack_api import FakeSlackApi, SlackCall, SlackUpload

AGENTS = ("support-triage-agent", "knowledge-base-agent", "forecast-agent")
HEADLINE = "3 of your agents need a look"


def agent_section(agent: str, *lines: str) -> Section:
    """One agent of the nightly owner message, with the four buttons owners get."""
    return Section(
        agent,
        lines or (f"{agent}: 12 of 14 granted actions unused for 90 days",),
        (
            Choice("Restrict unused", f"restrict {agent}", ChoiceStyle.PRIMARY),
            Choice("Quarantine", f"quarantine {agent}", ChoiceStyle.DANGER),
            Choice("Keep for 30 days", f"keep {agent} 30d"),
            Choice("Not mine", f"disown {agent}"),
        ),
    )


def grouped(*sections: Section, attachments: tuple[Attachment, ...] = ()) -> Notice:
    reply = Reply(
        text=HEADLINE,
        lines=("Found by last night's scan.",),
        sections=sections,
        attachments=attachments,
    )
    return Notice(kind=NoticeKind.SCAN_FINDINGS, recipients=(OWNER,), reply=reply)


async def deliver(leash: Leash, fake: FakeSlackApi, notice: Notice) -> SlackCall:
    """Send a notice through Leash's notifiers; return the message Slack got for it."""
    assert leash.slack is not None
    await leash.notifier.notify(notice)
    await leash.slack.drain()
    [posted] = [
        call
        for call in fake.calls_to("chat.postMessage")
        if call.args.get("text") == notice.reply.text
    ]
    return posted


def sections_of(blocks: list[dict[str, Any]]) -> list[str]:
    """The text of each block that shows text: plain sections, and rich-text agent sections."""
    return [
        b["text"]["text"] if b["type"] == "section" else rich_text(b)
        for b in blocks
        if b["type"] in ("section", "rich_text")
    ]


async def test_grouped_message_has_a_section_and_buttons_per_agent_and_the_chart_in_its_thread(
    slack_leash: Leash, slack_api: FakeSlackApi
) -> None:
    chart = TrendCharts().render_trend("Agents", ["w1", "w2", "w3"], {"inactive": [4, 3, 1]})
    notice = grouped(
        *(agent_section(agent) for agent in AGENTS),
        attachments=(Attachment("agents-trend.png", chart, "Agents per week"),),
    )

    posted = await deliver(slack_leash, slack_api, notice)

    blocks: list[dict[str, Any]] = posted.args["blocks"]
    assert posted.args["channel"] == OWNER
    assert [b["type"] for b in blocks] == ["section", "section"] + ["rich_text", "actions"] * 3
    for agent, block in zip(AGENTS, blocks[2::2], strict=True):
        title, lines = block["elements"][0]["elements"]
        assert title == {"type": "text", "text": agent, "style": {"bold": True}}
        assert lines["text"].startswith(f"\n{agent}: 12 of 14")
    for agent, block in zip(AGENTS, blocks[3::2], strict=True):
        assert [e["value"] for e in block["elements"]] == [
            f"restrict {agent}",
            f"quarantine {agent}",
            f"keep {agent} 30d",
            f"disown {agent}",
        ]
    ids = [element["action_id"] for element in buttons(posted.args)]
    assert len(ids) == len(set(ids)) == 12
    assert all(action_id.startswith("leash:") for action_id in ids)

    [upload] = slack_api.uploads
    [message] = [m for m in slack_api.messages if m["text"] == HEADLINE]
    # The file went to the channel Slack answered with (the DM), in the message's thread.
    assert (message["channel"], message["ts"]) == ("DOWNERA", upload.thread_ts)
    assert upload == SlackUpload(
        message["channel"], message["ts"], "agents-trend.png", "Agents per week", chart
    )


async def test_thirty_agents_stay_within_the_block_limit(
    slack_leash: Leash, slack_api: FakeSlackApi
) -> None:
    agents = [f"agent-{n:02d}" for n in range(30)]

    posted = await deliver(slack_leash, slack_api, grouped(*map(agent_section, agents)))

    blocks: list[dict[str, Any]] = posted.args["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    shown = [text.split("\n")[0] for text in sections_of(blocks)[2:]]
    assert shown == agents[: len(shown)]
    assert len(shown) >= 20  # the room is used, not left empty
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"…and {30 - len(shown)} more"}],
    }
    ids = [element["action_id"] for element in buttons(posted.args)]
    assert len(ids) == len(set(ids)) == 4 * len(shown)


async def test_section_text_is_shown_literally(slack_leash: Leash, slack_api: FakeSlackApi) -> None:
    title, line = "<!channel> & *co*", "tag owner=<@U999|eve> & <https://x> _y_"
    posted = await deliver(slack_leash, slack_api, grouped(agent_section(title, line)))

    [section] = [b for b in posted.args["blocks"] if b["type"] == "rich_text"]
    shown, details = section["elements"][0]["elements"]
    # Rich-text elements are shown as given: Leash's bold is a style, not asterisks.
    assert shown == {"type": "text", "text": title, "style": {"bold": True}}
    assert details["text"].replace(WORD_JOINER, "") == f"\n{line}"
    assert "https://" not in details["text"]  # the URL reads as typed but cannot link
    assert "mrkdwn" not in json.dumps(posted.args["blocks"])


@pytest.mark.parametrize(
    ("method", "status"),
    [
        pytest.param("files.completeUploadExternal", 200, id="Slack API error"),
        pytest.param("upload", 500, id="upload URL answers 500"),
    ],
)
async def test_a_failed_upload_is_logged_and_the_message_stands(
    slack_leash: Leash,
    slack_api: FakeSlackApi,
    caplog: pytest.LogCaptureFixture,
    method: str,
    status: int,
) -> None:
    slack_api.fail_next(method, status=status, error="not_in_channel")
    notice = grouped(
        agent_section(AGENTS[0]),
        attachments=(
            Attachment("first.png", b"\x89PNG first", "First"),
            Attachment("second.png", b"\x89PNG second", "Second"),
        ),
    )

    with caplog.at_level(logging.WARNING, logger="leash.slack"):
        posted = await deliver(slack_leash, slack_api, notice)

    assert posted.args["blocks"][0]["text"]["text"] == HEADLINE
    assert any("upload of first.png" in record.getMessage() for record in caplog.records)
    # The next file still goes out.
    assert [(u.filename, u.content) for u in slack_api.uploads] == [
        ("second.png", b"\x89PNG second")
    ]


# -- rendering alone -------------------------------------------------------------------------


def test_overflow_note_names_the_hint_escaped_and_reply_buttons_stay_last() -> None:
    reply = Reply(
        text="Agents",
        sections=tuple(agent_section(f"agent-{n}") for n in range(40)),
        choices=(Choice("Restrict all", "restrict all"),),
    )

    blocks = reply_blocks(reply, more_hint="agents mine <all>")

    # A section with its buttons takes two blocks, so at most one block of room is left over.
    assert MAX_BLOCKS - 1 <= len(blocks) <= MAX_BLOCKS
    hidden = 40 - len(sections_of(blocks)[1:])
    assert blocks[-2]["elements"][0]["text"] == (
        f"…and {hidden} more — type `agents mine &lt;all&gt;`"
    )
    assert [e["value"] for e in blocks[-1]["elements"]] == ["restrict all"]
    ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(ids) == len(set(ids))


def test_sections_that_fit_get_no_note_and_no_buttons_when_closed() -> None:
    reply = Reply(text="Agents", sections=tuple(agent_section(f"a{n}") for n in range(24)))

    assert len(reply_blocks(reply)) == 1 + 24 * 2 == 49
    closed = reply_blocks(reply, with_buttons=False)
    assert [b["type"] for b in closed] == ["section"] + ["rich_text"] * 24
