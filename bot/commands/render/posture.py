"""Replies about least privilege: scans, restrictions, quarantines, guardrails, digests."""

from __future__ import annotations

from bot.core import notices
from bot.domain.messages import Choice, ChoiceStyle, Reply
from bot.domain.rules import GuardrailMode
from bot.posture.guardrails import GuardrailRun, GuardrailView
from bot.posture.least_privilege import ScanReport
from bot.posture.owner_findings import Disowned, Findings, Kept, counted, finding_section
from bot.posture.quarantine import Quarantined, Released
from bot.posture.restriction import (
    FINGERPRINT_CHARS,
    Lifted,
    Restricted,
    RestrictionChanged,
    RestrictionPreview,
    RestrictionReported,
    listed,
)
from bot.posture.usage_scan import ScanSummary


def guardrail_run(run: GuardrailRun, *, mode: GuardrailMode, dry_run: bool) -> Reply:
    verb = "would change" if dry_run or mode is not GuardrailMode.ENFORCE else "written"
    lines = [
        *(f"{verb}: {name}" for name in (*run.written, *run.reported)),
        *(f"failed: {failure}" for failure in run.failures),
    ]
    return Reply(
        text=f"Guardrails ({'dry run' if dry_run else mode}): "
        f"{len(run.written) + len(run.reported)} {verb}, {run.unchanged} unchanged, "
        f"{len(run.failures)} failed.",
        lines=tuple(lines[:50]),
        ok=not run.failures,
    )


def digest_posted(team: str, channel: str) -> Reply:
    return Reply(text=f"Posted the weekly digest of {team} to {channel}.")


# How each cloud restricts, in words (the mechanism names are Leash's own; GCP joins two by +).
RESTRICTION_MECHANISMS = {
    "inline": "inline policy",
    "managed": "customer-managed policy",
    "gcp-remove-bindings": "role bindings removed",
    "gcp-deny-policy": "IAM deny policy",
    "azure-remove-role-assignments": "role assignments removed",
}


def _restricted_by(mechanism: str) -> str:
    return " and ".join(RESTRICTION_MECHANISMS.get(m, m) for m in mechanism.split("+"))


def restriction_preview(preview: RestrictionPreview) -> Reply:
    """What `restrict` would deny, with a button that confirms this very plan."""
    identity, scan, plan = preview.identity, preview.scan, preview.plan
    lines = [
        f"Deny ({len(plan.deny)}, {_restricted_by(plan.mechanism)}): {listed(plan.deny)}",
        f"Still allowed — used: {listed(scan.used) or 'none'}",
        f"Still allowed — not tracked by the cloud: {listed(scan.unknown) or 'none'}",
    ]
    if scan.recent:
        lines.append(f"Still allowed — granted recently: {listed(scan.recent)}")
    if plan.coarsened:
        lines.append("Actions were grouped into wildcards to fit the cloud's size limit.")
    if preview.report_only:
        lines.append("Report-only mode: confirming records this, nothing is written.")
    confirm = f"restrict {identity.native_id} confirm {plan.fingerprint[:FINGERPRINT_CHARS]}"
    return Reply(
        text=f"Restrict {identity.name}: deny {scan.unused_count} unused permission(s)?",
        lines=tuple(lines),
        choices=(Choice("Confirm restrict", confirm, ChoiceStyle.DANGER),),
    )


def restriction(outcome: Restricted | RestrictionReported | RestrictionChanged) -> Reply:
    """The answer to `restrict … confirm …`."""
    match outcome:
        case RestrictionChanged():
            fresh = restriction_preview(outcome.preview)
            return Reply(text=outcome.message, ok=False, lines=fresh.lines, choices=fresh.choices)
        case RestrictionReported(identity=identity, plan=plan):
            return Reply(
                text=f"Report-only: {identity.name} would lose {len(plan.deny)} "
                "unused permission(s). Nothing was written.",
                lines=(f"Would deny: {listed(plan.deny)}",),
            )
        case Restricted(identity=identity, plan=plan, passing=passing):
            return Reply(
                text=f"Restricted {identity.name}: {len(plan.deny)} unused permission(s) denied.",
                lines=(
                    *((passing,) if passing else ()),
                    f"Undo with `unrestrict {identity.name}`.",
                ),
                choices=(Choice("Undo", f"unrestrict {identity.native_id}"),),
            )


def restriction_lifted(lifted: Lifted) -> Reply:
    name = lifted.identity.name
    if not lifted.released:
        return Reply(text=f"The restriction of {name} was already lifted.")
    return Reply(text=f"Lifted the restriction of {name}; its policies are as before.")


def quarantine(done: Quarantined) -> Reply:
    if done.reported:
        return Reply(
            text=f"Report-only: {done.identity.name} would be quarantined. Nothing was written."
        )
    return notices.quarantined(done.identity, done.reason)


def release(done: Released) -> Reply:
    if not done.released:
        return Reply(text=f"{done.identity.name} was already released.")
    return notices.released(done.identity)


def scan(done: ScanReport | Findings) -> Reply:
    """The answer to `scan now`: everything scanned, or one identity's findings."""
    if isinstance(done, Findings):
        return findings(done)
    summary = done.summary
    return Reply(
        text=f"Scanned {counted(summary.scanned, 'identity', 'identities')}: "
        f"{counted(summary.unused_total, 'unused permission')}, "
        f"{summary.inactive} inactive, usage unknown for {summary.unknown}; "
        f"{counted(done.owners_told, 'owner')} told.",
        lines=scan_failures(summary),
    )


def scan_failures(summary: ScanSummary, *, at_most: int = 10) -> tuple[str, ...]:
    """One line per account that could not be read, then each other identity that could not."""
    lines = [
        f"Could not read {account.scope} ({account.provider}, {len(account.identities)} "
        f"identities): {account.reason}."
        for account in summary.unreadable
    ]
    lines += [
        f"Could not read the usage of {name}: {why}."
        for name, why in summary.failed_elsewhere.items()
    ]
    if len(lines) <= at_most:
        return tuple(lines)
    return (*lines[: at_most - 1], f"… and {len(lines) - at_most + 1} more (see the logs).")


def findings(found: Findings) -> Reply:
    identity, scan = found.identity, found.scan
    if scan is None:
        return Reply(
            text=f"{identity.name} has not been scanned yet. Try `scan now {identity.name}`."
        )
    section = finding_section(scan, identity, quarantined=False)
    return Reply(
        text=f"{identity.name}: {counted(scan.unused_count, 'unused permission')}, "
        f"{len(scan.used)} used, {len(scan.unknown)} not tracked by the cloud",
        lines=section.lines,
        choices=section.choices,
    )


def kept(done: Kept) -> Reply:
    return Reply(
        text=f"Kept {done.identity.name} as it is until {done.until:%Y-%m-%d}; "
        "no reminders until then."
    )


def disowned(done: Disowned) -> Reply:
    if done.owner:
        return Reply(text=f"Noted: {done.identity.name} is now owned by {done.owner}.")
    return Reply(
        text=f"Noted: {done.identity.name} has no owner now; the security team has been asked "
        "to find one."
    )


# How each cloud holds a guardrail, in words (the mechanism names are Leash's own).
GUARDRAIL_MECHANISMS = {
    "inline": "held as the inline deny policy leash-guardrail",
    "gcp-deny-policy": "held as an IAM deny policy",
    "azure-remove-role-assignments": "held by removing the role assignments that confer them",
}


def _held(mechanism: str) -> str:
    """How a guardrail is held, in words (AWS: `managed:<n>` is n customer-managed policies)."""
    kind, _, count = mechanism.partition(":")
    if kind == "managed":
        noun = "policy" if count in ("", "1") else "policies"
        policies = f"{count or 1} customer-managed deny {noun}"
        return f"held as {policies} (too large for an inline policy)"
    return GUARDRAIL_MECHANISMS.get(mechanism, f"held by {mechanism}")


def guardrail(view: GuardrailView) -> Reply:
    """The answer to `guardrail show`: its state in words, and what to do when it is missing."""
    state = "enforced" if view.enforced else "not applied"
    how = _held(view.mechanism) if view.held else f"to be {_held(view.mechanism)}"
    lines = [
        f"Guardrail: {state} (nightly mode: {view.mode}) · "
        f"{view.denied} privileged actions denied · {how}",
        *(
            f"Exempt until {e.expires_at:%Y-%m-%d %H:%M} UTC: {e.action} (grant {e.grant_id})"
            for e in view.exemptions
        ),
    ]
    if view.changed:
        lines.extend(_guardrail_hint(view))
    return Reply(text=f"Guardrail of {view.identity.name}", lines=tuple(lines))


def _guardrail_hint(view: GuardrailView) -> list[str]:
    """What the cloud lacks, and the command (or policy setting) that writes it."""
    command = f"guardrail apply {view.identity.name}"
    missing = (
        "The cloud holds an older version of this guardrail."
        if view.held
        else "The cloud does not hold this guardrail yet."
    )
    if view.mode is GuardrailMode.ENFORCE:
        return [missing, f"To write it now: `{command}` (admins); the nightly run writes it too."]
    return [
        missing,
        f'The policy file\'s least_privilege.guardrail is "{view.mode}", so Leash writes no '
        f'guardrail: set it to "enforce", then `{command}` (admins), or wait for the '
        "nightly run.",
    ]
