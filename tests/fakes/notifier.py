"""A Notifier that records what Leash would have said (implements the domain port)."""

from __future__ import annotations

from bot.domain.messages import Notice, NoticeKind


class RecordingNotifier:
    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def notify(self, notice: Notice) -> None:
        self.notices.append(notice)

    def of_kind(self, kind: NoticeKind) -> list[Notice]:
        return [n for n in self.notices if n.kind is kind]

    def to(self, person: str) -> list[Notice]:
        return [n for n in self.notices if person in n.recipients]
