"""Run least-privilege commands: each is one call into the lifecycle, answered with a Reply."""

from __future__ import annotations

from bot.commands import render
from bot.commands.grammar.posture import (
    DigestCommand,
    DisownCommand,
    GuardrailCommand,
    KeepCommand,
    LeastPrivilegeCommand,
    QuarantineCommand,
    ReleaseCommand,
    RestrictCommand,
    ScanCommand,
    UnrestrictCommand,
    UnusedCommand,
)
from bot.domain.actors import Actor
from bot.domain.messages import Reply
from bot.lifecycle.service import Lifecycle


async def run(lc: Lifecycle, command: LeastPrivilegeCommand, *, actor: Actor) -> Reply:
    """Run one least-privilege command as `actor`; LeashErrors propagate to the caller."""
    lp = lc.least_privilege
    match command:
        case ScanCommand():
            return render.scan(await lp.scan_now(command.identity, actor=actor))
        case UnusedCommand():
            return render.findings(await lp.unused(command.identity))
        case RestrictCommand(confirm=None):
            return render.restriction_preview(
                await lp.preview_restriction(command.identity, actor=actor)
            )
        case RestrictCommand():
            assert command.confirm is not None
            return render.restriction(
                await lp.restrict(command.identity, command.confirm, actor=actor)
            )
        case UnrestrictCommand():
            return render.restriction_lifted(await lp.unrestrict(command.identity, actor=actor))
        case QuarantineCommand():
            return render.quarantine(
                await lp.quarantine(command.identity, actor=actor, reason=command.reason)
            )
        case ReleaseCommand():
            return render.release(await lp.release(command.identity, actor=actor))
        case KeepCommand():
            return render.kept(await lp.keep(command.identity, actor=actor))
        case DisownCommand():
            return render.disowned(await lp.disown(command.identity, actor=actor))
        case GuardrailCommand(action="show"):
            assert command.identity is not None
            return render.guardrail(await lp.show_guardrail(command.identity))
        case GuardrailCommand():
            return await _apply_guardrail(lc, command, actor=actor)
        case DigestCommand():
            return await _digest(lc, command.team, actor=actor)


async def _apply_guardrail(lc: Lifecycle, command: GuardrailCommand, *, actor: Actor) -> Reply:
    run_, mode = await lc.least_privilege.apply_guardrails(
        command.identity, actor=actor, dry_run=command.dry_run
    )
    return render.guardrail_run(run_, mode=mode, dry_run=command.dry_run)


async def _digest(lc: Lifecycle, team: str, *, actor: Actor) -> Reply:
    channel = await lc.least_privilege.send_digest(team, actor=actor)
    return render.digest_posted(team, channel)
