"""Run a parsed command as a given actor and turn the outcome into a Reply."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from bot.access.drafting import RequestInput
from bot.commands import posture_handler as least_privilege_handler
from bot.commands import render
from bot.commands.grammar.access import (
    ApproveCommand,
    CancelCommand,
    Command,
    DenyCommand,
    ExtendCommand,
    HelpCommand,
    IdentitiesCommand,
    ListGrantsCommand,
    ListRequestsCommand,
    OwnerActionCommand,
    OwnerSetCommand,
    OwnerShowCommand,
    OwnsCommand,
    RequestCommand,
    RevokeCommand,
    TokenCommand,
    WhoAmICommand,
    parse,
)
from bot.commands.grammar.posture import LEAST_PRIVILEGE_COMMANDS
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.inventory.ownership import OwnerChange
from bot.lifecycle.service import Lifecycle
from bot.store.errors import database_unreachable

log = logging.getLogger("leash.commands")


class CommandHandler:
    """The one place where chat text becomes lifecycle calls."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle

    async def handle_text(self, text: str, *, actor: Actor) -> Reply:
        """Parse and run a command line; never raises."""
        try:
            command = parse(text)
        except LeashError as error:
            try:
                await self._lifecycle.refuse(
                    error, actor=actor, event_type="command.refused", detail={"command": text[:200]}
                )
            except Exception as failure:
                if not database_unreachable(failure):
                    raise
                # The user still learns what was wrong with the command; the audit misses it.
                log.warning("could not audit a refused command, database unreachable: %s", failure)
            return render.refused(error)
        try:
            # One person whatever surface they typed on: link their handles before any rule.
            actor = await self._lifecycle.resolve(actor)
            return await self.run(command, actor=actor)
        except LeashError as error:
            return render.refused(error)
        except Exception as error:
            correlation = secrets.token_hex(4)
            if database_unreachable(error):
                log.warning(
                    "command not run, database unreachable [%s]: %r by %s: %s",
                    correlation,
                    text[:200],
                    actor.name,
                    error,
                )
                return render.unreachable(correlation)
            log.exception("command failed [%s]: %r by %s", correlation, text[:200], actor.name)
            return render.went_wrong(correlation)

    async def run(self, command: Command, *, actor: Actor) -> Reply:
        lc = self._lifecycle
        if isinstance(command, LEAST_PRIVILEGE_COMMANDS):
            return await least_privilege_handler.run(lc, command, actor=actor)
        match command:
            case RequestCommand():
                request = await lc.requests.submit(
                    RequestInput(
                        identity=command.identity,
                        duration=command.duration,
                        reason=command.reason,
                        permission_set=command.permission_set,
                        actions=() if command.permission_set else command.items,
                        resources=command.resources,
                    ),
                    actor=actor,
                )
                return render.submitted(request)
            case ApproveCommand():
                result = await lc.approve(command.request_id, actor=actor, note=command.note)
                return render.approved(result)
            case DenyCommand():
                request = await lc.requests.deny(
                    command.request_id, actor=actor, reason=command.reason
                )
                return render.denied(request)
            case CancelCommand():
                request = await lc.requests.cancel(command.request_id, actor=actor)
                return render.cancelled(request)
            case RevokeCommand():
                grant = await lc.grants.revoke(
                    command.grant_id, actor=actor, reason="revoked by hand"
                )
                return render.grant_state(grant)
            case ExtendCommand():
                request = await lc.requests.extend(
                    command.grant_id, duration=command.duration, reason=command.reason, actor=actor
                )
                return render.submitted(request)
            case OwnerSetCommand() | OwnerActionCommand() | TokenCommand():
                return await self._owners(command, actor=actor)
            case WhoAmICommand():
                return render.whoami(actor, admin=lc.is_admin(actor))
            case HelpCommand():
                return render.usage(command.topic)
            case _:
                return await self._read(command, actor=actor)

    async def _owners(
        self, command: OwnerSetCommand | OwnerActionCommand | TokenCommand, *, actor: Actor
    ) -> Reply:
        """Ownership and agent tokens: the owners' commands."""
        lc = self._lifecycle
        match command:
            case OwnerSetCommand():
                identity, ownership = await lc.owners.set(
                    command.identity,
                    OwnerChange(command.primary, command.backup, command.team),
                    actor=actor,
                )
                return render.ownership_changed(identity, ownership)
            case OwnerActionCommand(action="claim"):
                identity, ownership = await lc.owners.claim(command.identity, actor=actor)
                return render.ownership_changed(identity, ownership)
            case OwnerActionCommand(action="confirm"):
                return render.owner_confirmed(
                    *await lc.owners.confirm(command.identity, actor=actor)
                )
            case OwnerActionCommand():
                return render.who_should_own(command.identity)
            case TokenCommand(action="issue" | "rotate"):
                issued = await lc.tokens.issue(command.identity, actor=actor)
                return render.token_issued(issued)
            case TokenCommand(action="list"):
                identity, tokens = await lc.tokens.list(command.identity, actor=actor)
                return render.tokens(identity, tokens)
            case TokenCommand():
                count = await lc.tokens.revoke(command.identity, actor=actor)
                return render.tokens_revoked(command.identity, count)

    async def _read(self, command: Command, *, actor: Actor) -> Reply:
        reads = self._lifecycle.queries
        match command:
            case ListGrantsCommand(scope="mine"):
                return render.grants(
                    await reads.grants_of(actor),
                    "your live grants",
                    empty="You have no live grants.",
                    now=self._lifecycle.now(),
                )
            case ListGrantsCommand(scope="all"):
                return render.grants(
                    await reads.live_grants(),
                    "live grants",
                    empty="No live grants.",
                    now=self._lifecycle.now(),
                )
            case ListGrantsCommand():
                identity, on_identity = await reads.grants_on(command.scope)
                return render.grants(
                    on_identity,
                    f"live grants on {identity.name}",
                    empty=f"No live grants on {identity.name}.",
                    now=self._lifecycle.now(),
                )
            case ListRequestsCommand(scope="pending"):
                return render.requests(
                    await reads.pending_for(actor),
                    "requests waiting for your decision",
                    empty="No requests are waiting for your decision.",
                    now=datetime.now(UTC),
                )
            case ListRequestsCommand():
                return render.requests(
                    await reads.requests_by(actor),
                    "your requests",
                    empty="You have no requests.",
                    now=datetime.now(UTC),
                )
            case OwnerShowCommand():
                return render.ownership(*await reads.owners(command.identity))
            case OwnsCommand():
                user = command.user or actor.name
                return render.owned(user, await reads.owned_by(user))
            case IdentitiesCommand():
                return render.identities(await reads.search(command.filter))
        return render.usage(None)
