"""What the console reads from the lifecycle: the inventory's counts, and the names and ids
completion offers. Everything comes through the Lifecycle facade's queries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.domain.actors import Actor
from bot.domain.states import RequestState
from bot.lifecycle.service import Lifecycle
from bot.surfaces.console.completion import Vocabulary

AGENT = "ai_agent"
EVERYTHING = 1_000_000  # the inventory as `identities` lists it, unbounded


@dataclass(frozen=True, slots=True)
class InventoryCounts:
    """The inventory as `identities` lists it: identities, agents, and those with no owner."""

    identities: int
    agents: int
    unowned: int
    unowned_agents: tuple[str, ...]  # the names of the AI agents with no owner

    def line(self) -> str:
        agents = len(self.unowned_agents)
        return (
            f"Inventory: {self.identities} identities, {self.agents} of them AI agents; "
            f"{self.unowned} without an owner ({agents} agent{'' if agents == 1 else 's'})."
        )


def _unowned(ownership: Any) -> bool:
    return ownership is None or not ownership.primary_owner


def counts_of(rows: Sequence[tuple[Any, Any]]) -> InventoryCounts:
    """Counts over the rows `identities` shows (present identities only)."""
    present = [(i, o) for i, o in rows if i.present]
    return InventoryCounts(
        identities=len(present),
        agents=sum(1 for i, _ in present if i.classification == AGENT),
        unowned=sum(1 for _, o in present if _unowned(o)),
        unowned_agents=tuple(
            i.name for i, o in present if i.classification == AGENT and _unowned(o)
        ),
    )


async def inventory_counts(lifecycle: Lifecycle) -> InventoryCounts:
    """The true counts: the same query the `identities` command runs."""
    return counts_of(await lifecycle.queries.search(None, limit=EVERYTHING))


async def vocabulary(
    lifecycle: Lifecycle, actor: Actor, *, known: Vocabulary | None = None
) -> Vocabulary:
    """Identity names, open requests, live grants and people, for completion; with `known`,
    its names and people are kept and only the open ids are read again."""
    reads = lifecycle.queries
    if known is None:
        known = _names(await reads.search(None, limit=EVERYTHING), lifecycle.rules.admins)
    pending = await reads.pending_for(actor)
    mine = await reads.requests_by(actor)
    requests = [r.id for r, _ in pending] + [
        r.id for r, _ in mine if r.state == RequestState.PENDING
    ]
    grants = [g.id for g, _ in await reads.live_grants()]
    return replace(
        known, requests=tuple(dict.fromkeys(requests)), grants=tuple(dict.fromkeys(grants))
    )


def _names(rows: Sequence[tuple[Any, Any]], admins: frozenset[str]) -> Vocabulary:
    """Each identity by its short name where unique (else its full id), and the people."""
    seen = Counter(identity.name for identity, _ in rows)
    names = {
        identity.name if seen[identity.name] == 1 else identity.native_id
        for identity, _ in rows
        if identity.present
    }
    short = {i.native_id: i.name for i, _ in rows if seen[i.name] == 1 and i.name != i.native_id}
    people = {p for _, o in rows for p in _owners(o)} | admins
    return Vocabulary(
        identities=tuple(sorted(names)), users=tuple(sorted(people)), short_names=short
    )


def _owners(ownership: Any) -> frozenset[str]:
    if ownership is None:
        return frozenset()
    return frozenset(p for p in (ownership.primary_owner, ownership.backup_owner) if p)
