"""Run least-privilege commands: each is one call into the lifecycle, answered with a Reply."""

from __future__ import annotations

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
from bot.domain.rules import GuardrailMode
from bot.lifecycle.service import Lifecycle


async def run(lc: Lifecycle, command: LeastPrivilegeCommand, *, actor: Actor) -> Reply:
    """Run one least-privilege command as `actor`; LeashErrors propagate to the caller."""
    lp = lc.least_privilege
    match command:
        case ScanCommand():
            return await lp.scan_now(command.identity, actor=actor)
        case UnusedCommand():
            return await lp.unused(command.identity)
        case RestrictCommand(confirm=None):
            return await lp.preview_restriction(command.identity, actor=actor)
        case RestrictCommand():
            assert command.confirm is not None
            return await lp.restrict(command.identity, command.confirm, actor=actor)
        case UnrestrictCommand():
            return await lp.unrestrict(command.identity, actor=actor)
        case QuarantineCommand():
            return await lp.quarantine(command.identity, actor=actor, reason=command.reason)
        case ReleaseCommand():
            return await lp.release(command.identity, actor=actor)
        case KeepCommand():
            return await lp.keep(command.identity, actor=actor)
        case DisownCommand():
            return await lp.disown(command.identity, actor=actor)
        case GuardrailCommand(action="show"):
            assert command.identity is not None
            return await lp.show_guardrail(command.identity)
        case GuardrailCommand():
            return await _apply_guardrail(lc, command, actor=actor)
        case DigestCommand():
            return await _digest(lc, command.team, actor=actor)


async def _apply_guardrail(lc: Lifecycle, command: GuardrailCommand, *, actor: Actor) -> Reply:
    run_, mode = await lc.least_privilege.apply_guardrails(
        command.identity, actor=actor, dry_run=command.dry_run
    )
    verb = "would change" if command.dry_run or mode is not GuardrailMode.ENFORCE else "written"
    lines = [
        *(f"{verb}: {name}" for name in (*run_.written, *run_.reported)),
        *(f"failed: {failure}" for failure in run_.failures),
    ]
    return Reply(
        text=f"Guardrails ({'dry run' if command.dry_run else mode}): "
        f"{len(run_.written) + len(run_.reported)} {verb}, {run_.unchanged} unchanged, "
        f"{len(run_.failures)} failed.",
        lines=tuple(lines[:50]),
        ok=not run_.failures,
    )


async def _digest(lc: Lifecycle, team: str, *, actor: Actor) -> Reply:
    channel = await lc.least_privilege.send_digest(team, actor=actor)
    return Reply(text=f"Posted the weekly digest of {team} to {channel}.")
