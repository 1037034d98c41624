"""One way to talk to Leash on the console, Slack and Teams, each through its real entry point."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.inventory.ownership import OwnerChange
from bot.surfaces.console import ConsoleSurface
from cloud.sandbox import Sandbox
from tests.bot.surfaces import conftest as slack_world
from tests.bot.surfaces import teams_world
from tests.bot.surfaces.conftest import SlackClient
from tests.bot.surfaces.teams_world import TeamsClient, actions_of
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi, SlackCall
from tests.fakes.slack_signing import block_actions, slash_command
from tests.fakes.teams_activities import TeamsUser, card_action

WAIT = 20.0  # seconds a message may take to arrive before a test fails (a loaded machine)
_tags = itertools.count(1)


class Role(StrEnum):
    """Who takes part, whatever the surface calls them."""

    DEV = "requester"
    OWNER = "owner of support-triage-agent"
    BACKUP = "backup owner"
    ADMIN = "admin"
    STRANGER = "stranger"


class Chat(Protocol):
    """What a person can do in a chat with Leash, on any surface."""

    name: str
    leash: Leash
    sandbox: Sandbox

    async def start(self) -> None:
        """Make every role reachable (e.g. install the app) before the test talks."""

    async def say(self, who: Role, text: str) -> str:
        """Type a command as `who`; return the text of Leash's answer."""

    async def inbox(self, who: Role, containing: str) -> str:
        """Wait until Leash sends `who` a message containing the text; return its text."""

    async def card(self, who: Role, *, on: str, showing: str) -> Shown:
        """Wait until a message to `who` about `on` shows `showing`, as posted or as redrawn in
        place (Slack and Teams update a card; the console prints it again); return it."""

    async def buttons(self, who: Role, *, on: str) -> list[str]:
        """Return the button labels of the latest message to `who` that mentions `on`."""

    async def press(self, who: Role, label: str, *, on: str, card_of: Role | None = None) -> str:
        """Press `label` on the last message about `on` to `card_of` or `who`; return the answer."""


@dataclass(frozen=True, slots=True)
class Shown:
    """A message as a person sees it: its text, and its buttons by label."""

    text: str
    buttons: Mapping[str, Any]


async def _until(find: Callable[[], Shown | None], what: str) -> Shown:
    """Poll `find` until it finds something, or fail after WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (found := find()) is None:
        if loop.time() >= deadline:
            raise AssertionError(f"no message {what} within {WAIT}s")
        await asyncio.sleep(0.01)
    return found


def _showing(messages: Iterable[Shown], on: str, showing: str) -> Shown | None:
    """Return the last message about `on` that shows `showing`."""
    hits = [m for m in messages if on in m.text and showing in m.text]
    return hits[-1] if hits else None


def _latest(messages: Iterable[Shown], on: str, label: str | None = None) -> Shown | None:
    """Return the last message mentioning `on` (with a button `label`, if given)."""
    hits = [m for m in messages if on in m.text and (label is None or label in m.buttons)]
    return hits[-1] if hits else None


async def _register_owner(leash: Leash, owner: str, backup: str, admin: str) -> None:
    """Make `owner` the owner of support-triage-agent, as the Slack and Teams fixtures do."""
    await leash.lifecycle.owners.set(
        "support-triage-agent",
        OwnerChange(owner, backup, "support-bots"),
        actor=Actor(admin, ActorKind.USER, "test"),
    )


# Console: typed lines, `as <user>`, and every notice printed for everyone.

CONSOLE_NAMES = {
    Role.DEV: "dev",
    Role.OWNER: slack_world.OWNER_EMAIL,  # the owner is registered by e-mail
    Role.BACKUP: "bob@example.com",
    Role.ADMIN: "secops",  # the bundled policy's admin
    Role.STRANGER: "mallory",
}
_NOTICE = re.compile(r"(?m)^(?=→ to )")
_NOTICE_HEAD = re.compile(r"→ to (?P<to>.*) \[(?P<kind>\w+)\]\n")
# `[1] Approve: approve r-…   [2] Deny: deny r-…` (the command shown may use a short name).
_CONSOLE_BUTTON = re.compile(r"\[\d+\] ([^:\n]+): (.+?)(?=   \[\d+\] |\n|$)")


class ConsoleChat:
    """Drives `ConsoleSurface.handle_line` and reads what it prints."""

    name = "console"

    def __init__(self, leash: Leash, sandbox: Sandbox, attachments: Path) -> None:
        self.leash = leash
        self.sandbox = sandbox
        self._out = io.StringIO()
        self._surface = ConsoleSurface(leash.handler, out=self._out, attachments_dir=attachments)
        self._read = 0
        self._seen: list[tuple[tuple[str, ...], Shown]] = []  # (recipients, message)

    async def start(self) -> None:
        self.leash.notifier.add(self._surface)
        names = CONSOLE_NAMES
        await _register_owner(self.leash, names[Role.OWNER], names[Role.BACKUP], names[Role.ADMIN])

    @staticmethod
    def _shown(text: str) -> Shown:
        return Shown(text.strip(), {m[1]: m[2] for m in _CONSOLE_BUTTON.finditer(text)})

    def _take(self) -> str:
        """Return what was printed since the last look."""
        printed = self._out.getvalue()
        new, self._read = printed[self._read :], len(printed)
        return new

    def _absorb(self, printed: str) -> str:
        """Record the notices in `printed`; return the text before the first one."""
        before, *notices = _NOTICE.split(printed)
        for block in notices:
            head = _NOTICE_HEAD.match(block)
            assert head, block
            recipients = tuple(head["to"].split(", "))
            self._seen.append((recipients, self._shown(block[head.end() :])))
        return before

    async def say(self, who: Role, text: str) -> str:
        name = CONSOLE_NAMES[who]
        await self._surface.handle_line(f"as {name}")
        self._absorb(self._take())
        await self._surface.handle_line(text)
        reply = self._absorb(self._take())
        self._seen.append(((name,), self._shown(reply)))
        return reply.strip()

    def _to(self, who: Role) -> list[Shown]:
        self._absorb(self._take())
        return [shown for to, shown in self._seen if CONSOLE_NAMES[who] in to]

    async def inbox(self, who: Role, containing: str) -> str:
        found = await _until(
            lambda: _latest(self._to(who), containing), f"to {who} containing {containing!r}"
        )
        return found.text

    async def card(self, who: Role, *, on: str, showing: str) -> Shown:
        return await _until(
            lambda: _showing(self._to(who), on, showing), f"to {who} about {on}: {showing!r}"
        )

    async def buttons(self, who: Role, *, on: str) -> list[str]:
        found = await _until(lambda: _latest(self._to(who), on), f"to {who} mentioning {on}")
        return list(found.buttons)

    async def press(self, who: Role, label: str, *, on: str, card_of: Role | None = None) -> str:
        target = card_of or who
        card = await _until(
            lambda: _latest(self._to(target), on, label), f"to {target} with [{label}] for {on}"
        )
        return await self.say(who, str(card.buttons[label]))  # a console button is its command


# Slack: signed slash commands and clicks; answers on the response_url, notices as DMs.

SLACK_IDS = {
    Role.DEV: slack_world.DEV,
    Role.OWNER: slack_world.OWNER,
    Role.BACKUP: slack_world.BACKUP,
    Role.ADMIN: slack_world.ADMIN,
    Role.STRANGER: slack_world.STRANGER,
}


def slack_text(args: Mapping[str, Any]) -> str:
    """Return the visible text of a Slack message: its sections and context, unescaped."""
    parts: list[str] = []
    for block in args.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts.extend(element["text"] for element in block["elements"])
        elif block.get("type") == "rich_text":
            parts.append(rich_text(block))
    text = "\n".join(parts) or str(args.get("text", ""))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def rich_text(block: Mapping[str, Any]) -> str:
    """Return what a rich_text block shows: its text elements, in order, without styles."""
    return "".join(
        str(element.get("text", ""))
        for section in block.get("elements") or []
        for element in section.get("elements") or []
    )


def _slack_shown(call: SlackCall) -> Shown:
    buttons = {
        element["text"]["text"]: element
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }
    return Shown(slack_text(call.args), buttons)


class SlackChat:
    """Drives `/slack/events` with signed requests; reads the fake Slack API's calls."""

    name = "slack"

    def __init__(
        self, leash: Leash, sandbox: Sandbox, client: SlackClient, api: FakeSlackApi
    ) -> None:
        self.leash = leash
        self.sandbox = sandbox
        self._client = client
        self._api = api

    async def start(self) -> None:
        """Nothing to do: the fixture registered the owner, and Slack DMs anyone."""

    def _response_url(self, who: Role) -> tuple[str, str]:
        tag = f"{SLACK_IDS[who]}-{next(_tags)}"
        return tag, f"{self._api.response_url_base}{tag}"

    async def _answer(self, tag: str) -> str:
        answered = await self._api.wait_for(
            "response_url", where=lambda c: c.args["_path"] == tag, timeout=WAIT
        )
        return slack_text(answered[0].args)

    async def say(self, who: Role, text: str) -> str:
        tag, url = self._response_url(who)
        built = slash_command(text, user_id=SLACK_IDS[who], response_url=url)
        response = await slack_world.post(self._client, built)
        assert response.status == 200, await response.text()
        return await self._answer(tag)

    def _to(self, who: Role) -> list[Shown]:
        """Return the messages posted to `who`'s DM and the private answers `who` was given."""
        user = SLACK_IDS[who]
        return [
            _slack_shown(call)
            for call in self._api.calls
            if (call.method == "chat.postMessage" and call.args.get("channel") == user)
            or (call.method == "response_url" and call.args["_path"].startswith(f"{user}-"))
        ]

    async def inbox(self, who: Role, containing: str) -> str:
        found = await _until(
            lambda: _latest(self._to(who), containing), f"to {who} containing {containing!r}"
        )
        return found.text

    async def card(self, who: Role, *, on: str, showing: str) -> Shown:
        def posted_or_updated() -> list[Shown]:
            dm = "D" + SLACK_IDS[who][1:]
            updated = [
                _slack_shown(call)
                for call in self._api.calls
                if call.method == "chat.update" and call.args.get("channel") == dm
            ]
            return self._to(who) + updated

        return await _until(
            lambda: _showing(posted_or_updated(), on, showing), f"to {who} about {on}: {showing!r}"
        )

    async def buttons(self, who: Role, *, on: str) -> list[str]:
        found = await _until(lambda: _latest(self._to(who), on), f"to {who} mentioning {on}")
        return list(found.buttons)

    async def press(self, who: Role, label: str, *, on: str, card_of: Role | None = None) -> str:
        target = card_of or who
        card = await _until(
            lambda: _latest(self._to(target), on, label), f"to {target} with [{label}] for {on}"
        )
        button = card.buttons[label]
        tag, url = self._response_url(who)
        built = block_actions(
            user_id=SLACK_IDS[who],
            action_id=button["action_id"],
            value=button["value"],
            channel_id="D" + SLACK_IDS[target][1:],
            message_ts="1700000000.000001",
            response_url=url,
        )
        response = await slack_world.post(self._client, built)
        assert response.status == 200, await response.text()
        return await self._answer(tag)


# Teams: activities posted to `/api/messages`; replies and notices through the Bot Connector.

TEAMS_USERS = {
    Role.DEV: teams_world.DEV,
    Role.OWNER: teams_world.OWNER,
    Role.BACKUP: teams_world.BACKUP,
    Role.ADMIN: teams_world.ADMIN,
    Role.STRANGER: teams_world.STRANGER,
}
_CARD_ESCAPE = re.compile(r"\\(.)")


def card_words(card: Mapping[str, Any]) -> str:
    """Return the visible text of an Adaptive Card: text blocks and facts, markdown undone."""
    parts: list[str] = []

    def walk(elements: Iterable[Mapping[str, Any]]) -> None:
        for element in elements:
            kind = element.get("type")
            if kind == "TextBlock":
                parts.append(str(element["text"]))
            elif kind == "FactSet":
                parts.extend(f"{fact['title']}: {fact['value']}" for fact in element["facts"])
            elif kind == "Container":
                walk(element.get("items") or [])

    walk(card.get("body") or [])
    return _CARD_ESCAPE.sub(r"\1", "\n".join(parts).replace("**", ""))


def _card_shown(card: Mapping[str, Any]) -> Shown:
    return Shown(card_words(card), {action["title"]: action for action in actions_of(card)})


class TeamsChat:
    """Drives `/api/messages` with Teams activities; reads the fake Bot Connector's calls."""

    name = "teams"

    def __init__(
        self, leash: Leash, sandbox: Sandbox, client: TeamsClient, connector: FakeBotConnector
    ) -> None:
        self.leash = leash
        self.sandbox = sandbox
        self._client = client
        self._connector = connector

    async def start(self) -> None:
        """Install the app for everyone (Leash can DM only those who did)."""
        assert self.leash.teams is not None
        await self.leash.teams.drain()  # what start-up sent is not the installs' welcome
        self._connector.reset()
        await teams_world.install(self._client, self._connector, *TEAMS_USERS.values())

    def _user(self, who: Role) -> TeamsUser:
        return TEAMS_USERS[who]

    async def say(self, who: Role, text: str) -> str:
        reply = await teams_world.say(self._client, self._connector, self._user(who), text)
        cards = FakeBotConnector.cards(reply)
        assert cards, reply.body
        return card_words(cards[0])

    def _to(self, who: Role) -> list[Shown]:
        """Return the cards sent to `who`'s personal chat (replies and notices), oldest first."""
        conversation = self._user(who).personal_conversation_id
        return [
            _card_shown(card)
            for call in self._connector.activities()
            if call.conversation_id == conversation
            for card in FakeBotConnector.cards(call)
        ]

    async def inbox(self, who: Role, containing: str) -> str:
        found = await _until(
            lambda: _latest(self._to(who), containing), f"to {who} containing {containing!r}"
        )
        return found.text

    async def card(self, who: Role, *, on: str, showing: str) -> Shown:
        def posted_or_updated() -> list[Shown]:
            conversation = self._user(who).personal_conversation_id
            updated = [
                _card_shown(card)
                for call in self._connector.calls_to("update")
                if call.ok and call.conversation_id == conversation
                for card in FakeBotConnector.cards(call)
            ]
            return self._to(who) + updated

        return await _until(
            lambda: _showing(posted_or_updated(), on, showing), f"to {who} about {on}: {showing!r}"
        )

    async def buttons(self, who: Role, *, on: str) -> list[str]:
        found = await _until(lambda: _latest(self._to(who), on), f"to {who} mentioning {on}")
        return list(found.buttons)

    async def press(self, who: Role, label: str, *, on: str, card_of: Role | None = None) -> str:
        target = card_of or who
        card = await _until(
            lambda: _latest(self._to(target), on, label), f"to {target} with [{label}] for {on}"
        )
        action = card.buttons[label]
        assert action["type"] == "Action.Execute", f"{label} needs a form: {action}"
        presser = self._user(who)
        invoke = card_action(
            action["verb"],
            action["data"],
            user=presser,
            service_url=self._connector.service_url,
            conversation_id=presser.personal_conversation_id,
        )
        response = await teams_world.post(self._client, invoke)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["statusCode"] == 200, body
        if body["type"] == "application/vnd.microsoft.card.adaptive":
            return card_words(body["value"])
        assert body["type"] == "application/vnd.microsoft.activity.message", body
        return str(body["value"])
