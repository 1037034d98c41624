"""What every chat surface is: it turns platform events into commands and replies into messages."""

from __future__ import annotations

from typing import Protocol

from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply

__all__ = ["ChatSurface", "Choice", "ChoiceStyle", "Notice", "NoticeKind", "Reply"]


class ChatSurface(Protocol):
    """A chat platform attached to Leash; it is also the Notifier for its users."""

    name: str

    async def notify(self, notice: Notice) -> None:
        """Deliver a notice to its recipients on this platform.

        Args:
            notice: the recipients and the message.
        """
        ...
