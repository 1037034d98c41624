"""The console surface against a real Leash: completion from the inventory, buttons pressed by
number as whoever is speaking, and the start-up summary of unowned alerts."""

from __future__ import annotations

import asyncio
import io
import re

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import Choice, Notice, NoticeKind, Reply
from bot.domain.states import ActorKind
from bot.surfaces.console import ConsoleSurface
from bot.surfaces.console.inventory import inventory_counts

REQUEST = "request support-triage-agent s3-read for 10m because triage"


def _surface(leash: Leash, out: io.StringIO, *, starting: bool = False) -> ConsoleSurface:
    surface = ConsoleSurface(leash.handler, out=out, lifecycle=leash.lifecycle, starting=starting)
    leash.notifier.add(surface)
    return surface


async def test_completion_offers_the_inventory_and_the_open_requests(leash: Leash) -> None:
    out = io.StringIO()
    surface = _surface(leash, out)
    await surface.refresh()
    assert surface.completer.matches("owner show ", "support-triage-a") == ["support-triage-agent"]
    assert surface.completer.matches("approve ", "") == []

    await surface.handle_line(REQUEST)
    request_id = re.search(r"Request (r-\w+) is waiting", out.getvalue())
    assert request_id, out.getvalue()
    await surface.handle_line("as owner-a")
    await surface.refresh()
    assert surface.completer.matches("approve ", "r-") == [request_id[1]]


async def test_the_owner_presses_approve_by_number_and_the_grant_is_live(leash: Leash) -> None:
    out = io.StringIO()
    surface = _surface(leash, out)
    await surface.refresh()
    await surface.handle_line(REQUEST)
    card = out.getvalue()
    request_id = re.search(r"Request (r-\w+) is waiting", card)
    assert request_id, card
    assert f"[1] Approve: approve {request_id[1]}   [2] Deny: deny {request_id[1]}" in card

    await surface.handle_line("as owner-a")
    await surface.handle_line("1")

    said = out.getvalue()[len(card) :]
    assert f"(owner-a presses: approve {request_id[1]})" in said
    assert re.search(rf"Approved {request_id[1]}: grant g-\w+ is active", said), said
    live = await leash.lifecycle.queries.live_grants()
    assert [grant.request_id for grant, _ in live] == [request_id[1]]


async def test_a_button_number_out_of_range_changes_nothing(leash: Leash) -> None:
    out = io.StringIO()
    surface = _surface(leash, out)
    await surface.handle_line(REQUEST)
    await surface.handle_line("as owner-a")
    await surface.handle_line("3")
    assert "✗ There is no button 3: the last card has 2 (1-2)." in out.getvalue()
    assert await leash.lifecycle.queries.live_grants() == []


def _unowned(name: str) -> Notice:
    return Notice(
        kind=NoticeKind.UNOWNED,
        recipients=("secops",),
        reply=Reply(
            text=f"{name} has no owner.",
            choices=(Choice("Claim", f"owner claim arn:aws:iam::1:role/{name}"),),
            ok=False,
        ),
    )


async def test_start_up_notices_wait_for_the_banner_and_unowned_ones_are_summarised(
    leash: Leash,
) -> None:
    out = io.StringIO()
    surface = _surface(leash, out, starting=True)
    await leash.notifier.notify(_unowned("forecast-agent"))
    await leash.notifier.notify(_unowned("etl-runner"))
    other = Notice(kind=NoticeKind.REMINDER, recipients=("owner-a",), reply=Reply(text="Ping"))
    await leash.notifier.notify(other)
    assert out.getvalue() == ""  # nothing before the banner

    reader = asyncio.StreamReader()
    reader.feed_eof()
    await surface.run(reader)

    printed = out.getvalue()
    counts = await inventory_counts(leash.lifecycle)
    assert printed.startswith("Leash console. You are dev.")
    assert "has no owner." not in printed  # no card per identity
    summary = f"{counts.unowned} identities have no owner, {len(counts.unowned_agents)} of them"
    assert summary in printed
    assert "secops got one alert for each" in printed
    assert printed.index(summary) < printed.index("→ to owner-a [reminder]\nPing")
    # Once started, notices are shown as they come.
    await leash.notifier.notify(_unowned("late-agent"))
    assert "late-agent has no owner." in out.getvalue()


async def test_the_banner_counts_are_what_identities_lists(leash: Leash) -> None:
    counts = await inventory_counts(leash.lifecycle)
    actor = Actor(name="dev", kind=ActorKind.USER, origin="console")
    listed = await leash.handler.handle_text("identities", actor=actor)
    present = [line for line in listed.lines if not line.endswith("(deleted)")]
    assert listed.text == f"Identities ({len(listed.lines)}):"
    assert counts.identities == len(present) > 0
    assert counts.agents == sum(1 for line in present if "  ai_agent  " in line)
    assert counts.unowned == sum(1 for line in present if "  owner NONE  " in line)
    assert counts.line().startswith(f"Inventory: {counts.identities} identities, ")
