"""Who did something: a person (by every handle Leash knows), an agent, or Leash itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from bot.domain import handles
from bot.domain.handles import HandleKind
from bot.domain.states import ActorKind


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, and through which door.

    `name` is how they are shown and recorded; `aliases` are other names a surface reported
    (the e-mail behind a Slack id); `handles` are the canonical keys of every handle of the
    same person Leash has linked (see bot.domain.handles). `resolved` is False when the
    surface could not tie the person to an e-mail or directory id: such an actor cannot be
    told apart from someone on another surface, so it never counts as a distinct approver.
    """

    name: str
    kind: ActorKind
    origin: str
    aliases: tuple[str, ...] = ()
    handles: frozenset[str] = field(default=frozenset())
    resolved: bool = True
    person_id: str | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset((self.name, *self.aliases))

    @property
    def keys(self) -> frozenset[str]:
        """Every canonical key this actor goes by."""
        if self.kind is ActorKind.AGENT:
            return frozenset({handles.key(HandleKind.AGENT, self.name)}) | self.handles
        if self.kind is ActorKind.SYSTEM:
            return frozenset({handles.key(HandleKind.SYSTEM, self.name)})
        return handles.keys_for(self.names) | self.handles

    def is_one_of(self, people: Iterable[str | None]) -> bool:
        """Say whether this actor is any of `people` (names compared as canonical handles)."""
        return not self.keys.isdisjoint(handles.keys_for(people))

    def with_person(self, person_id: str, keys: frozenset[str]) -> Actor:
        """The same actor, knowing every handle of the person it resolved to."""
        return replace(self, person_id=person_id, handles=self.handles | keys)


SYSTEM = Actor(name="leash", kind=ActorKind.SYSTEM, origin="scheduler")
